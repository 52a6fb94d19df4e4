//! Running a plan's steps and a task's probes on a host. Writes are atomic:
//! one round trip sends the content on stdin to a script that writes a temp
//! file (0600) in the target's directory, validates it, copies the old
//! file's owner and mode (or applies the given ones), fsyncs and renames it
//! over the target; a failed validation leaves the target untouched.

use crate::connection::forward::with_forwards;
use crate::connection::script::{parse_probe_output, probe_script, probe_stdin, quote, quote_argv};
use crate::connection::{Become, Connection, ConnectionError, ExecRequest};
use crate::module::{ExecOutput, Observed, Probe, Remote, RemoteOutcome, RemoteProbe, Step};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a step failed.
#[derive(Debug)]
pub(super) enum StepError {
    Conn(ConnectionError),
    Failed {
        message: String,
        output: Option<ExecOutput>,
    },
}

impl From<ConnectionError> for StepError {
    fn from(e: ConnectionError) -> Self {
        StepError::Conn(e)
    }
}

/// Per-task settings for commands.
pub(super) struct ExecEnv<'a> {
    pub become_: Option<&'a Become>,
    pub env: &'a BTreeMap<String, String>,
    pub timeout: Option<Duration>,
}

impl ExecEnv<'_> {
    pub(super) fn request(&self, argv: Vec<String>) -> ExecRequest {
        ExecRequest {
            argv,
            env: self.env.clone(),
            become_: self.become_.cloned(),
            timeout: self.timeout,
            ..Default::default()
        }
    }
}

/// Run all probes of a task in one exec.
pub(super) async fn probe(
    conn: &dyn Connection,
    env: &ExecEnv<'_>,
    probes: &[Probe],
) -> Result<Vec<Observed>, StepError> {
    if probes.is_empty() {
        return Ok(vec![]);
    }
    let mut req = env.request(vec!["/bin/sh".into(), "-c".into(), probe_script(probes)]);
    req.stdin = probe_stdin(probes);
    let out = conn.exec(req).await?;
    if out.status != Some(0) {
        return Err(StepError::Failed {
            message: format!(
                "observing the host failed (exit {:?}): {}",
                out.status,
                out.stderr_str().trim()
            ),
            output: None,
        });
    }
    parse_probe_output(probes, &out.stdout).map_err(|message| StepError::Failed {
        message,
        output: None,
    })
}

/// A remote failure, with the tunnels that could not be opened.
fn remote_failed(what: &str, e: String, tunnel_errors: &[String]) -> StepError {
    let mut message = format!("{what}: {e}");
    if !tunnel_errors.is_empty() {
        message.push_str(&format!(" ({})", tunnel_errors.join("; ")));
    }
    StepError::Failed {
        message,
        output: None,
    }
}

/// Run a task's remote probes (read-only, also in check mode), each with
/// its endpoints forwarded through the host's connection.
pub(super) async fn remote_probes(
    conn: &dyn Connection,
    probes: &[std::sync::Arc<dyn RemoteProbe>],
) -> Result<Vec<Observed>, StepError> {
    let mut out = Vec::with_capacity(probes.len());
    for p in probes {
        let f = with_forwards(conn, &p.targets(), |a| async move { p.observe(&a).await }).await?;
        match f.value {
            Ok(v) => out.push(Observed::Remote(v)),
            Err(e) => return Err(remote_failed("observing", e, &f.tunnel_errors)),
        }
    }
    Ok(out)
}

/// Apply one remote step (the caller never does in check mode).
pub(super) async fn run_remote(
    conn: &dyn Connection,
    step: &Remote,
) -> Result<RemoteOutcome, StepError> {
    let r = &step.0;
    let f = with_forwards(conn, &r.targets(), |a| async move { r.apply(&a).await }).await?;
    f.value
        .map_err(|e| remote_failed(&r.describe(), e, &f.tunnel_errors))
}

/// The shell script of an atomic write; `$1` is the target path.
pub(super) fn write_script(
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
    validate: Option<&str>,
    backup: bool,
) -> Result<String, String> {
    write_body(mode, owner, group, validate, backup, "cat")
}

/// [`write_script`] reading the content with `input` (`cat`, or `head -c N`
/// inside a batch of steps).
pub(super) fn write_body(
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
    validate: Option<&str>,
    backup: bool,
    input: &str,
) -> Result<String, String> {
    // Every external command here is a process on the host, per write:
    // the directory is cut from the path by the shell (not `dirname`), and
    // the kept mode is copied only when no mode is given.
    let mut s = String::from(
        "set -e\np=$1\ncase $p in */*) d=${p%/*}; d=${d:-/} ;; *) d=. ;; esac\numask 077\n\
         # The temp file is created exclusively (noclobber: O_EXCL, never\n\
         # through a symlink) under a name of this shell; mktemp if taken.\n\
         tmp=\"$d/.drover.$$\"\nif ! { set -C; : > \"$tmp\"; } 2>/dev/null; then tmp=$(mktemp \"$d/.drover.XXXXXXXX\"); fi\nset +C\n\
         trap 'rm -f -- \"$tmp\"' EXIT\n",
    );
    s.push_str(&format!("{input} > \"$tmp\"\n"));
    if let Some(v) = validate {
        if !v.contains("%s") {
            return Err(format!("validate `{v}` must contain %s"));
        }
        let words = shell_words::split(v).map_err(|e| format!("validate `{v}`: {e}"))?;
        let argv: Vec<String> = words.iter().map(|w| w.replace("%s", "\u{1}")).collect();
        let line = quote_argv(&argv).replace('\u{1}', "'\"$tmp\"'");
        s.push_str(&format!(
            "if ! out=$({line} 2>&1); then echo \"validation failed: $out\" >&2; exit 65; fi\n"
        ));
    }
    if mode.is_some() {
        s.push_str(
            "if [ -e \"$p\" ]; then chown --reference=\"$p\" \"$tmp\" 2>/dev/null || true; fi\n",
        );
    } else {
        s.push_str("if [ -e \"$p\" ]; then chmod --reference=\"$p\" \"$tmp\"; chown --reference=\"$p\" \"$tmp\" 2>/dev/null || true; else chmod 0644 \"$tmp\"; fi\n");
    }
    if backup {
        s.push_str(
            "if [ -e \"$p\" ]; then cp -p -- \"$p\" \"$p.$(date +%Y-%m-%d@%H:%M:%S)~\"; fi\n",
        );
    }
    if let Some(m) = mode {
        s.push_str(&format!("chmod {:04o} \"$tmp\"\n", m));
    }
    match (owner, group) {
        (Some(o), Some(g)) => {
            s.push_str(&format!("chown {} \"$tmp\"\n", quote(&format!("{o}:{g}"))))
        }
        (Some(o), None) => s.push_str(&format!("chown {} \"$tmp\"\n", quote(o))),
        (None, Some(g)) => s.push_str(&format!("chgrp {} \"$tmp\"\n", quote(g))),
        (None, None) => {}
    }
    s.push_str("sync -- \"$tmp\" 2>/dev/null || true\n# A bind-mounted file (a container's /etc/hosts) cannot be renamed over:\n# then, and only then, its content is replaced in place.\nif ! err=$(mv -f -- \"$tmp\" \"$p\" 2>&1); then\n  case $err in\n    *busy*) cat -- \"$tmp\" > \"$p\" && rm -f -- \"$tmp\" || { echo \"$err\" >&2; exit 1; } ;;\n    *) echo \"$err\" >&2; exit 1 ;;\n  esac\nfi\ntrap - EXIT\n");
    Ok(s)
}

/// Run one step. Returns the captured output of a capturing exec.
pub(super) async fn run_step(
    conn: &dyn Connection,
    env: &ExecEnv<'_>,
    step: &Step,
) -> Result<Option<ExecOutput>, StepError> {
    match step {
        Step::Exec {
            argv,
            stdin,
            cwd,
            env: extra,
            capture,
            allow_fail,
        } => {
            let mut req = env.request(argv.clone());
            req.stdin = stdin.clone();
            req.cwd = cwd.clone();
            req.env.extend(extra.clone());
            let out = conn.exec(req).await?;
            if !allow_fail && out.status != Some(0) {
                let msg = match out.status {
                    Some(rc) => format!("non-zero return code {rc}"),
                    None => "command ended without an exit status".to_string(),
                };
                let err = out.stderr_str();
                let message = if *capture || err.trim().is_empty() {
                    msg
                } else {
                    format!("{msg}: `{}`: {}", quote_argv(argv), err.trim())
                };
                return Err(StepError::Failed {
                    message,
                    output: Some(out),
                });
            }
            Ok(capture.then_some(out))
        }
        Step::Write {
            path,
            content,
            mode,
            owner,
            group,
            validate,
            backup,
        } => {
            let script = write_script(
                *mode,
                owner.as_deref(),
                group.as_deref(),
                validate.as_deref(),
                *backup,
            )
            .map_err(|message| StepError::Failed {
                message,
                output: None,
            })?;
            let mut req = env.request(vec![
                "/bin/sh".into(),
                "-c".into(),
                script,
                "drover-write".into(),
                path.clone(),
            ]);
            req.stdin = Some(content.as_ref().clone());
            let out = conn.exec(req).await?;
            if out.status != Some(0) {
                return Err(StepError::Failed {
                    message: format!("writing {path} failed: {}", out.stderr_str().trim()),
                    output: None,
                });
            }
            Ok(None)
        }
        Step::Sleep(d) => {
            tokio::time::sleep(*d).await;
            Ok(None)
        }
        Step::Fetch { src, dest } => {
            let bytes = conn.get(src, env.become_).await?;
            write_local(dest, &bytes).map_err(|e| StepError::Failed {
                message: format!(
                    "fetch: writing {} on the controller failed: {e}",
                    dest.display()
                ),
                output: None,
            })?;
            Ok(None)
        }
        Step::Remote(r) => run_remote(conn, r).await.map(|_| None),
        // Needs the connection pool: the task runner applies it (`reboot`).
        Step::Reboot(_) => Err(StepError::Failed {
            message: "internal error: a reboot step reached run_step".into(),
            output: None,
        }),
    }
}

/// Atomically write a controller-side file (fetch): temp file in the same
/// folder, fsync, rename.
fn write_local(dest: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.drover-{:016x}", rand::random::<u64>()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::local::LocalConnection;
    use std::sync::Arc;

    fn env() -> (BTreeMap<String, String>,) {
        (BTreeMap::new(),)
    }

    #[tokio::test]
    async fn atomic_write_validates_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.conf");
        std::fs::write(&p, "old\n").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        let conn = LocalConnection::new("localhost");
        let e = env();
        let env = ExecEnv {
            become_: None,
            env: &e.0,
            timeout: None,
        };
        let step = |content: &str, validate: Option<&str>| Step::Write {
            path: p.display().to_string(),
            content: Arc::new(content.as_bytes().to_vec()),
            mode: None,
            owner: None,
            group: None,
            validate: validate.map(String::from),
            backup: false,
        };
        // A failing validation leaves the old file in place and no temp file.
        let r = run_step(&conn, &env, &step("bad\n", Some("grep -q good %s"))).await;
        assert!(matches!(r, Err(StepError::Failed { .. })));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        run_step(&conn, &env, &step("good\n", Some("grep -q good %s")))
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "good\n");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).unwrap().permissions());
        assert_eq!(mode & 0o7777, 0o640);
    }

    #[tokio::test]
    async fn fetch_copies_to_the_controller_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("remote.txt");
        std::fs::write(&src, b"from the host\n\x00").unwrap();
        let dest = dir.path().join("fetched/h1/etc/remote.txt");
        let conn = LocalConnection::new("localhost");
        let e = env();
        let env = ExecEnv {
            become_: None,
            env: &e.0,
            timeout: None,
        };
        let step = Step::Fetch {
            src: src.display().to_string(),
            dest: dest.clone(),
        };
        run_step(&conn, &env, &step).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"from the host\n\x00");
        // Only the file itself in its folder: no temp file left behind.
        assert_eq!(
            std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
            1
        );
        // A missing source fails the step and writes nothing.
        let missing = Step::Fetch {
            src: dir.path().join("nope").display().to_string(),
            dest: dir.path().join("other"),
        };
        assert!(run_step(&conn, &env, &missing).await.is_err());
        assert!(!dir.path().join("other").exists());
    }
}
