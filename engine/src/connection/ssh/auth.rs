//! User authentication on a fresh russh session: the ssh-agent
//! (`SSH_AUTH_SOCK`), then key files (explicit ones, else `~/.ssh/id_ed25519`,
//! `id_ecdsa`, `id_rsa`; encrypted keys are opened with the passphrase in
//! `DROVER_SSH_PASSPHRASE`), then the password. Each method is tried once;
//! the caller bounds the whole phase with a deadline.

use super::config::home;
use super::session::ClientHandler;
use russh::client::Handle;
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Environment variable holding the passphrase for encrypted key files.
pub const PASSPHRASE_ENV: &str = "DROVER_SSH_PASSPHRASE";

/// sshd's `MaxAuthTries` is 6: leave room for key files and the password.
const MAX_AGENT_KEYS: usize = 3;

/// The key files tried when none is configured.
pub(crate) fn default_identity_files() -> Vec<PathBuf> {
    let Some(h) = home() else {
        return Vec::new();
    };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|f| h.join(".ssh").join(f))
        .filter(|p| p.exists())
        .collect()
}

/// Load a private key, decrypting it with the passphrase from the
/// environment when it is encrypted.
pub(crate) fn load_key(path: &Path) -> Result<PrivateKey, String> {
    match russh::keys::load_secret_key(path, None) {
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let Ok(pass) = std::env::var(PASSPHRASE_ENV) else {
                return Err(format!(
                    "{} is encrypted and {PASSPHRASE_ENV} is not set",
                    path.display()
                ));
            };
            russh::keys::load_secret_key(path, Some(&pass)).map_err(|e| {
                format!(
                    "{} could not be decrypted with {PASSPHRASE_ENV}: {e}",
                    path.display()
                )
            })
        }
        Err(e) => Err(format!("cannot load key {}: {e}", path.display())),
    }
}

async fn rsa_hash(handle: &Handle<ClientHandler>, rsa: bool) -> Option<HashAlg> {
    if !rsa {
        return None;
    }
    handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}

async fn try_agent(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    notes: &mut Vec<String>,
) -> bool {
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return false;
    }
    let mut agent = match AgentClient::connect_env().await {
        Ok(a) => a,
        Err(e) => {
            notes.push(format!("ssh-agent unavailable ({e})"));
            return false;
        }
    };
    let ids = match agent.request_identities().await {
        Ok(ids) => ids,
        Err(e) => {
            notes.push(format!("ssh-agent failed to list keys ({e})"));
            return false;
        }
    };
    let keys: Vec<_> = ids
        .into_iter()
        .filter_map(|id| match id {
            AgentIdentity::PublicKey { key, .. } => Some(key),
            AgentIdentity::Certificate { .. } => None,
        })
        .take(MAX_AGENT_KEYS)
        .collect();
    if keys.is_empty() {
        notes.push("ssh-agent holds no keys".into());
    }
    for key in keys {
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        let fp = key.fingerprint(HashAlg::Sha256);
        match handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(r) if r.success() => return true,
            Ok(_) => notes.push(format!("agent key {fp} refused")),
            Err(e) => notes.push(format!("agent key {fp} failed ({e})")),
        }
    }
    false
}

/// Authenticate `user`; on failure the text lists what was tried and why
/// each method failed (never a password or passphrase).
pub(crate) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    identity_files: &[PathBuf],
    password: Option<&str>,
) -> Result<(), String> {
    let mut notes = Vec::new();
    if try_agent(handle, user, &mut notes).await {
        return Ok(());
    }
    let files = if identity_files.is_empty() {
        default_identity_files()
    } else {
        identity_files.to_vec()
    };
    for path in &files {
        let key = match load_key(path) {
            Ok(k) => k,
            Err(e) => {
                notes.push(e);
                continue;
            }
        };
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        match handle.authenticate_publickey(user, key).await {
            Ok(r) if r.success() => return Ok(()),
            Ok(_) => notes.push(format!("key {} refused", path.display())),
            Err(e) => notes.push(format!("key {} failed ({e})", path.display())),
        }
    }
    if files.is_empty() {
        notes.push("no key file found".into());
    }
    match password {
        Some(p) => match handle.authenticate_password(user, p).await {
            Ok(r) if r.success() => return Ok(()),
            Ok(_) => notes.push("password refused".into()),
            Err(e) => notes.push(format!("password failed ({e})")),
        },
        None => notes.push("no password given".into()),
    }
    Err(notes.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_key_file_is_reported_by_path() {
        let e = load_key(Path::new("/nonexistent/drover_key")).unwrap_err();
        assert!(e.contains("/nonexistent/drover_key"), "{e}");
    }
}
