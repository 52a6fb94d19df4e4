//! Where to connect: merges the inventory's [`ConnectionSpec`] with
//! `~/.ssh/config` (parsed by `ssh2-config`). Only `HostName`, `Port`,
//! `User`, `IdentityFile` and a single `ProxyJump` hop are honoured; the
//! inventory wins over the config file, as in Ansible.

use crate::connection::ConnectionSpec;
use ssh2_config::{ParseRule, SshConfig};
use std::path::{Path, PathBuf};

/// One SSH server to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Name as written (inventory address or ProxyJump word).
    pub alias: String,
    /// Name or address to connect to (`HostName`, else the alias).
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Explicit identity files (inventory, then config), `~` expanded.
    pub identity_files: Vec<PathBuf>,
}

/// The target host and, with `ProxyJump`, the bastion in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub endpoint: Endpoint,
    pub jump: Option<Endpoint>,
}

pub(crate) fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

pub(crate) fn expand_tilde(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), home()) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if p == "~" => home().unwrap_or_else(|| PathBuf::from(p)),
        _ => PathBuf::from(p),
    }
}

/// The user drover runs as (the default login user, as for `ssh`).
pub(crate) fn local_user() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return "root".into();
    }
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

/// Parse an ssh config text.
pub(crate) fn parse(text: &str) -> Result<SshConfig, String> {
    let mut cfg = SshConfig::default();
    if let Some(h) = home() {
        cfg = cfg.home_dir(h);
    }
    cfg.parse(
        &mut text.as_bytes(),
        ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
    )
    .map_err(|e| format!("bad ssh config: {e}"))
}

/// Read an ssh config file; a missing file is no config.
pub(crate) fn load(path: &Path) -> Result<Option<SshConfig>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse(&t)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read ssh config {}: {e}", path.display())),
    }
}

/// Split `[ssh://][user@]host[:port]` (IPv6 in brackets).
fn split_jump(word: &str) -> Result<(Option<String>, String, Option<u16>), String> {
    let w = word.strip_prefix("ssh://").unwrap_or(word);
    let (user, rest) = match w.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, w),
    };
    let bad = || format!("bad ProxyJump port in `{word}`");
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, tail) = v6.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| bad())?),
            None => None,
        };
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse().map_err(|_| bad())?)),
            None => (rest.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("bad ProxyJump host in `{word}`"));
    }
    Ok((user, host, port))
}

fn endpoint(
    alias: &str,
    cfg: Option<&SshConfig>,
    user: Option<String>,
    port: Option<u16>,
    key: Option<&str>,
) -> Endpoint {
    let params = cfg.map(|c| c.query(alias));
    let p = params.as_ref();
    let host = p
        .and_then(|p| p.host_name.clone())
        .map(|h| h.replace("%h", alias))
        .unwrap_or_else(|| alias.to_string());
    let mut identity_files: Vec<PathBuf> = key.map(expand_tilde).into_iter().collect();
    identity_files.extend(p.and_then(|p| p.identity_file.clone()).unwrap_or_default());
    Endpoint {
        alias: alias.to_string(),
        host,
        port: port.or(p.and_then(|p| p.port)).unwrap_or(22),
        user: user
            .or_else(|| p.and_then(|p| p.user.clone()))
            .unwrap_or_else(local_user),
        identity_files,
    }
}

/// Resolve the spec against the ssh config.
pub(crate) fn resolve(spec: &ConnectionSpec, cfg: Option<&SshConfig>) -> Result<Target, String> {
    let alias = if spec.address.is_empty() {
        spec.name.as_str()
    } else {
        spec.address.as_str()
    };
    let target = endpoint(
        alias,
        cfg,
        spec.user.clone(),
        spec.port,
        spec.private_key_file.as_deref(),
    );
    let hops = cfg
        .and_then(|c| c.query(alias).proxy_jump)
        .unwrap_or_default();
    let hops: Vec<&String> = hops
        .iter()
        .filter(|h| !h.is_empty() && !h.eq_ignore_ascii_case("none"))
        .collect();
    let jump = match hops.as_slice() {
        [] => None,
        [one] => {
            let (user, host, port) = split_jump(one)?;
            Some(endpoint(&host, cfg, user, port, None))
        }
        many => {
            return Err(format!(
                "ProxyJump for {alias} has {} hops ({}); only one is supported",
                many.len(),
                hops.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ))
        }
    };
    Ok(Target {
        endpoint: target,
        jump,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "Host web\n  HostName 10.1.2.3\n  Port 2200\n  User deploy\n  IdentityFile /k/web\n  ProxyJump ops@bastion:2222\n\nHost bastion\n  HostName 10.0.0.1\n  IdentityFile /k/bastion\n\nHost two\n  ProxyJump a,b\n\nHost *\n  User fallback\n  SendEnv LANG\n";

    fn spec(addr: &str) -> ConnectionSpec {
        ConnectionSpec {
            name: addr.into(),
            address: addr.into(),
            ..Default::default()
        }
    }

    #[test]
    fn config_fills_what_the_inventory_leaves_open() {
        let cfg = parse(CFG).unwrap();
        let t = resolve(&spec("web"), Some(&cfg)).unwrap();
        assert_eq!(t.endpoint.host, "10.1.2.3");
        assert_eq!(t.endpoint.port, 2200);
        assert_eq!(t.endpoint.user, "deploy");
        assert_eq!(t.endpoint.identity_files, vec![PathBuf::from("/k/web")]);
        let j = t.jump.unwrap();
        assert_eq!(
            (j.host.as_str(), j.port, j.user.as_str()),
            ("10.0.0.1", 2222, "ops")
        );
        assert_eq!(j.identity_files, vec![PathBuf::from("/k/bastion")]);
    }

    #[test]
    fn inventory_wins() {
        let cfg = parse(CFG).unwrap();
        let mut s = spec("web");
        s.port = Some(22);
        s.user = Some("admin".into());
        s.private_key_file = Some("/k/inv".into());
        let t = resolve(&s, Some(&cfg)).unwrap();
        assert_eq!((t.endpoint.port, t.endpoint.user.as_str()), (22, "admin"));
        assert_eq!(t.endpoint.identity_files[0], PathBuf::from("/k/inv"));
        let other = resolve(&spec("db1"), Some(&cfg)).unwrap();
        assert_eq!(other.endpoint.user, "fallback");
        assert_eq!(other.endpoint.host, "db1");
        assert!(other.jump.is_none());
        assert!(resolve(&spec("two"), Some(&cfg))
            .unwrap_err()
            .contains("only one"));
    }

    #[test]
    fn jump_words() {
        assert_eq!(
            split_jump("ssh://u@[::1]:22").unwrap(),
            (Some("u".into()), "::1".into(), Some(22))
        );
        assert_eq!(split_jump("b").unwrap(), (None, "b".into(), None));
        assert!(split_jump("b:x").is_err());
    }
}
