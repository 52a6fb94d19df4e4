//! known_hosts files: lookup (plain, wildcard, negated, hashed `|1|` and
//! `[host]:port` entries, `@revoked` markers), the verdict for a presented
//! host key, and learning a new key (`accept-new`) without losing lines when
//! many connections learn at once: a process-wide async mutex plus a lock
//! file, and the file is rewritten through a temp file and a rename.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One recorded key that applies to the host.
#[derive(Debug, Clone)]
pub(crate) struct KnownEntry {
    pub path: PathBuf,
    pub line: usize,
    pub key: PublicKey,
    pub revoked: bool,
}

/// What the known_hosts files say about a presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Match,
    Unknown,
    /// Fatal: a changed key, another key type, or a revoked key. The text
    /// names both fingerprints.
    Mismatch(String),
}

/// The name known_hosts uses for a host: `host`, or `[host]:port` off port 22.
pub(crate) fn host_token(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// SHA256 fingerprint with the key type, e.g. `ssh-ed25519 SHA256:…`.
pub(crate) fn describe(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

/// Glob match with `*` and `?` (OpenSSH `match_pattern`).
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s
            .split_first()
            .is_some_and(|(d, srest)| c.eq_ignore_ascii_case(d) && glob(rest, srest)),
    }
}

fn hashed_match(entry: &str, token: &str) -> bool {
    let mut parts = entry.trim_start_matches("|1|").splitn(2, '|');
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Some(Ok(salt)), Some(Ok(hash))) = (
        parts.next().map(|p| b64.decode(p)),
        parts.next().map(|p| b64.decode(p)),
    ) else {
        return false;
    };
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(token.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// Does a comma-separated host field match the token? A negated pattern
/// that matches vetoes the line.
pub(crate) fn field_matches(field: &str, token: &str) -> bool {
    let mut hit = false;
    for pat in field.split(',') {
        if pat.starts_with("|1|") {
            hit |= hashed_match(pat, token);
        } else if let Some(neg) = pat.strip_prefix('!') {
            if glob(neg.as_bytes(), token.as_bytes()) {
                return false;
            }
        } else if glob(pat.as_bytes(), token.as_bytes()) {
            hit = true;
        }
    }
    hit
}

/// Keys recorded for `token` in one file's text. Lines that cannot be parsed
/// (unknown key types, garbage) are skipped, as OpenSSH does.
pub(crate) fn entries_in(text: &str, path: &Path, token: &str) -> Vec<KnownEntry> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let mut first = words.next().unwrap_or_default();
        let mut revoked = false;
        if let Some(marker) = first.strip_prefix('@') {
            match marker {
                "revoked" => revoked = true,
                _ => continue, // @cert-authority: host certificates are not trusted here
            }
            first = words.next().unwrap_or_default();
        }
        let (Some(_kind), Some(b64)) = (words.next(), words.next()) else {
            continue;
        };
        if !revoked && !field_matches(first, token) {
            continue;
        }
        if let Ok(key) = russh::keys::parse_public_key_base64(b64) {
            out.push(KnownEntry {
                path: path.to_path_buf(),
                line: i + 1,
                key,
                revoked,
            });
        }
    }
    out
}

/// Keys recorded for the host in all files (missing files are empty).
pub(crate) fn lookup(files: &[PathBuf], host: &str, port: u16) -> Vec<KnownEntry> {
    let token = host_token(host, port);
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok().map(|t| (p, t)))
        .flat_map(|(p, t)| entries_in(&t, p, &token))
        .collect()
}

/// Judge a presented key against the recorded ones.
pub(crate) fn verdict(entries: &[KnownEntry], host: &str, port: u16, key: &PublicKey) -> Verdict {
    let token = host_token(host, port);
    if let Some(r) = entries.iter().find(|e| e.revoked && e.key == *key) {
        return Verdict::Mismatch(format!(
            "{token} presented {} which is marked @revoked in {}:{}",
            describe(key),
            r.path.display(),
            r.line
        ));
    }
    let recorded: Vec<&KnownEntry> = entries.iter().filter(|e| !e.revoked).collect();
    if recorded.iter().any(|e| e.key == *key) {
        return Verdict::Match;
    }
    if recorded.is_empty() {
        return Verdict::Unknown;
    }
    let same_type = recorded
        .iter()
        .any(|e| e.key.algorithm() == key.algorithm());
    let what = if same_type {
        "REMOTE HOST KEY HAS CHANGED (possible man-in-the-middle attack)"
    } else {
        "host is known with another key type"
    };
    let known = recorded
        .iter()
        .map(|e| format!("{} at {}:{}", describe(&e.key), e.path.display(), e.line))
        .collect::<Vec<_>>()
        .join("; ");
    Verdict::Mismatch(format!(
        "{what}: {token} presented {}, but known_hosts records {known}",
        describe(key)
    ))
}

/// Serialises learning inside this process; the lock file covers other processes.
static WRITE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Record `key` for the host in `path` unless that file already has it.
/// Fails with a mismatch text if another process recorded a different key
/// for this host in the meantime.
pub(crate) async fn learn(
    path: &Path,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<(), String> {
    let _guard = WRITE_LOCK.lock().await;
    let (path, host, key) = (path.to_path_buf(), host.to_string(), key.clone());
    tokio::task::spawn_blocking(move || learn_locked(&path, &host, port, &key))
        .await
        .map_err(|e| format!("known_hosts writer task failed: {e}"))?
}

/// Holds an exclusive `flock` until dropped.
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    fn take(path: &Path) -> Result<Self, String> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; released when the file closes.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(FileLock { _file: f })
    }
}

fn learn_locked(path: &Path, host: &str, port: u16, key: &PublicKey) -> Result<(), String> {
    let ctx = |e: std::io::Error| format!("cannot update {}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(ctx)?;
    }
    let mut lock_name = path.as_os_str().to_owned();
    lock_name.push(".lock");
    let _lock = FileLock::take(Path::new(&lock_name))?;
    let (old, mode) = match std::fs::read_to_string(path) {
        Ok(t) => {
            let mode = std::fs::metadata(path).map_err(ctx)?.permissions().mode();
            (t, mode & 0o7777)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), 0o644),
        Err(e) => return Err(ctx(e)),
    };
    let entries = entries_in(&old, path, &host_token(host, port));
    match verdict(&entries, host, port, key) {
        Verdict::Match => return Ok(()),
        Verdict::Mismatch(m) => return Err(m),
        Verdict::Unknown => {}
    }
    let openssh = key
        .to_openssh()
        .map_err(|e| format!("cannot encode host key of {host}: {e}"))?;
    let mut text = old;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{} {openssh}\n", host_token(host, port)));
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(
        ".tmp{}.{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let tmp = PathBuf::from(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ctx(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const K2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(b: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b).unwrap()
    }

    #[test]
    fn patterns_and_ports() {
        assert!(field_matches("a.example,b.example", "b.example"));
        assert!(field_matches("*.example", "web1.example"));
        assert!(!field_matches("*.example,!db.example", "db.example"));
        assert!(field_matches("[h]:2222", &host_token("h", 2222)));
        assert!(!field_matches("h", &host_token("h", 2222)));
        assert!(field_matches("web?", "web1"));
        assert!(!field_matches("web?", "web12"));
    }

    #[test]
    fn hashed_entry_matches_only_its_host() {
        // Vector from russh's own tests: the entry hashes "example.com".
        let entry = "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak=";
        assert!(field_matches(entry, "example.com"));
        assert!(!field_matches(entry, "example.org"));
        assert!(!field_matches(entry, "[example.com]:2222"));
    }

    #[test]
    fn verdicts() {
        let p = Path::new("/kh");
        let text = format!("# c\n\n[h]:2222 ssh-ed25519 {K1}\nbad line\nh ssh-ed25519 {K2}\n");
        let e = entries_in(&text, p, &host_token("h", 2222));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 3);
        assert_eq!(verdict(&e, "h", 2222, &key(K1)), Verdict::Match);
        let Verdict::Mismatch(m) = verdict(&e, "h", 2222, &key(K2)) else {
            panic!("changed key accepted");
        };
        assert!(m.contains(&describe(&key(K1))) && m.contains(&describe(&key(K2))));
        assert!(m.contains("/kh:3"), "{m}");
        assert_eq!(verdict(&[], "h", 2222, &key(K1)), Verdict::Unknown);
        let rev = entries_in(&format!("@revoked * ssh-ed25519 {K2}\n"), p, "x");
        assert!(matches!(
            verdict(&rev, "x", 22, &key(K2)),
            Verdict::Mismatch(_)
        ));
        assert_eq!(verdict(&rev, "x", 22, &key(K1)), Verdict::Unknown);
    }

    #[tokio::test]
    async fn learn_appends_once_and_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let mut tasks = Vec::new();
        for i in 0..8u16 {
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                learn(&path, "h", 2200 + i % 4, &key(K1)).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        for l in text.lines() {
            assert!(l.starts_with("[h]:22") && l.contains(K1), "{l}");
        }
        assert!(learn(&path, "h", 2200, &key(K2)).await.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
