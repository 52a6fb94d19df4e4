//! Shared helpers of the account modules (`user`, `group`, `authorized_key`,
//! `cron`): reading exec probe results, parsing `getent` lines and checking
//! account names before they reach an argv.

pub use crate::observed::exec_at;
use drover_engine::module::{ExecOutput, ModuleError};

/// A `getent passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub comment: String,
    pub home: String,
    pub shell: String,
}

/// `getent passwd NAME`: `Ok(None)` when the user does not exist (rc 2).
pub fn passwd_of(out: &ExecOutput, name: &str) -> Result<Option<Passwd>, ModuleError> {
    if out.status == Some(2) {
        return Ok(None);
    }
    if !out.success() {
        return Err(ModuleError::Probe(format!(
            "getent passwd {name} failed: {}",
            out.stderr_str().trim()
        )));
    }
    let text = out.stdout_str();
    let line = text.lines().next().unwrap_or_default();
    let f: Vec<&str> = line.split(':').collect();
    let num = |s: &str| s.parse::<u32>().ok();
    match f.as_slice() {
        [n, _, uid, gid, gecos, home, shell] => match (num(uid), num(gid)) {
            (Some(uid), Some(gid)) => Ok(Some(Passwd {
                name: n.to_string(),
                uid,
                gid,
                comment: gecos.to_string(),
                home: home.to_string(),
                shell: shell.to_string(),
            })),
            _ => Err(ModuleError::Probe(format!("bad passwd entry `{line}`"))),
        },
        _ => Err(ModuleError::Probe(format!("bad passwd entry `{line}`"))),
    }
}

/// Refuse names that could be read as options or break `/etc/passwd`.
pub fn check_name(param: &str, name: &str) -> Result<(), ModuleError> {
    let bad = name.is_empty()
        || name.starts_with('-')
        || name
            .chars()
            .any(|c| c == ':' || c == ',' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(ModuleError::BadArg {
            name: param.into(),
            value: name.into(),
            message: "not a valid user or group name".into(),
        });
    }
    Ok(())
}

/// A non-negative id argument (uid/gid).
pub fn get_id(args: &drover_engine::module::Args, name: &str) -> Result<Option<u32>, ModuleError> {
    match drover_engine::args::get_int(args, name)? {
        None => Ok(None),
        Some(v) => u32::try_from(v).map(Some).map_err(|_| ModuleError::BadArg {
            name: name.into(),
            value: v.to_string(),
            message: "must be a non-negative id".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(rc: i32, s: &str) -> ExecOutput {
        ExecOutput {
            status: Some(rc),
            stdout: s.as_bytes().to_vec(),
            stderr: vec![],
        }
    }

    #[test]
    fn passwd_parsing() {
        let p = passwd_of(&out(0, "al:x:1001:1002:Al B:/home/al:/bin/sh\n"), "al")
            .unwrap()
            .unwrap();
        assert_eq!((p.uid, p.gid, p.home.as_str()), (1001, 1002, "/home/al"));
        assert_eq!(passwd_of(&out(2, ""), "al").unwrap(), None);
        assert!(passwd_of(&out(0, "garbage"), "al").is_err());
        assert!(passwd_of(&out(1, ""), "al").is_err());
    }

    #[test]
    fn names() {
        assert!(check_name("name", "alice").is_ok());
        assert!(check_name("name", "-x").is_err());
        assert!(check_name("name", "a:b").is_err());
        assert!(check_name("name", "").is_err());
    }
}
