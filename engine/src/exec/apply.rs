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
    write_body(mode, owner, group, validate, backup, Input::ToEof)
}

/// Where a write's content comes from on the channel's stdin.
#[derive(Clone, Copy)]
pub(super) enum Input {
    /// All of it (a write alone in its exec).
    ToEof,
    /// Exactly this many bytes (one write of a batch of steps).
    Exact(usize),
}

/// [`write_script`] reading the content as `input` says.
pub(super) fn write_body(
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
    validate: Option<&str>,
    backup: bool,
    input: Input,
) -> Result<String, String> {
    // Every external command here is a process on the host, per write, so
    // there are few: the directory is cut from the path by the shell (not
    // `dirname`); a mode without execute or special bits comes from the
    // umask the temp file is created under (no `chmod`); one `dd` reads
    // the content, writes it and fsyncs it (no `head` + `sync`); the kept
    // mode and owner of a file replaced are copied by one `cp`.
    let mut s =
        String::from("set -e\np=$1\ncase $p in */*) d=${p%/*}; d=${d:-/} ;; *) d=. ;; esac\n");
    // The temp file is private while it is written, unless the final mode
    // is known and no wider than 0666: then the umask gives that mode.
    // Without a mode, a new file is 0644 and a replaced one keeps its own.
    let (umask, fixup) = match mode {
        Some(m) if m & !0o666 == 0 => (format!("umask {:03o}\n", !m & 0o777), Some(m)),
        Some(_) => ("umask 077\n".to_string(), None),
        None => (
            "if [ -e \"$p\" ]; then e=1; umask 077; else e=0; umask 022; fi\n".to_string(),
            None,
        ),
    };
    s.push_str(&umask);
    // mktemp makes its files 0600 whatever the umask.
    let after_mktemp = match (mode, fixup) {
        (_, Some(m)) => format!("; chmod {m:04o} \"$tmp\""),
        (None, _) => "; [ \"$e\" = 1 ] || chmod 0644 \"$tmp\"".to_string(),
        (Some(_), None) => String::new(),
    };
    s.push_str(&format!(
        "# The temp file is created exclusively (noclobber: O_EXCL, never\n\
         # through a symlink) under a name of this shell; mktemp if taken.\n\
         tmp=\"$d/.drover.$$\"\nif ! {{ set -C; true > \"$tmp\"; }} 2>/dev/null; then tmp=$(mktemp \"$d/.drover.XXXXXXXX\"){after_mktemp}; fi\nset +C\n\
         trap 'rm -f -- \"$tmp\"' EXIT\n",
    ));
    match input {
        Input::ToEof => s.push_str("dd bs=64K conv=fsync status=none of=\"$tmp\"\n"),
        Input::Exact(0) => s.push_str("sync -- \"$tmp\" 2>/dev/null || true\n"),
        // Exactly N bytes (count_bytes), however the pipe splits them
        // (fullblock), in blocks of at most 64 KiB; dd never reads more
        // than it asks for, so the next step's bytes stay in the pipe.
        Input::Exact(n) => s.push_str(&format!(
            "dd bs=64K count={n} iflag=fullblock,count_bytes conv=fsync status=none of=\"$tmp\"\n"
        )),
    }
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
        // A new file is 0644 from the umask. A replaced one keeps its mode
        // and owner: one `cp` copies both; where the owner cannot be kept
        // (not root), the mode still is.
        s.push_str("if [ \"$e\" = 1 ]; then cp --attributes-only --preserve=mode,ownership -- \"$p\" \"$tmp\" 2>/dev/null || chmod --reference=\"$p\" \"$tmp\"; fi\n");
    }
    if backup {
        s.push_str(
            "if [ -e \"$p\" ]; then cp -p -- \"$p\" \"$p.$(date +%Y-%m-%d@%H:%M:%S)~\"; fi\n",
        );
    }
    if let (Some(m), None) = (mode, fixup) {
        s.push_str(&format!("chmod {m:04o} \"$tmp\"\n"));
    }
    match (owner, group) {
        (Some(o), Some(g)) => {
            s.push_str(&format!("chown {} \"$tmp\"\n", quote(&format!("{o}:{g}"))))
        }
        (Some(o), None) => s.push_str(&format!("chown {} \"$tmp\"\n", quote(o))),
        (None, Some(g)) => s.push_str(&format!("chgrp {} \"$tmp\"\n", quote(g))),
        (None, None) => {}
    }
    // mv's error is read (a second mv) only when the first one failed.
    s.push_str("# A bind-mounted file (a container's /etc/hosts) cannot be renamed over:\n# then, and only then, its content is replaced in place.\nif ! mv -f -- \"$tmp\" \"$p\" 2>/dev/null; then\n  err=$(mv -f -- \"$tmp\" \"$p\" 2>&1) || case $err in\n    *busy*) cat -- \"$tmp\" > \"$p\" && rm -f -- \"$tmp\" || { echo \"$err\" >&2; exit 1; } ;;\n    *) echo \"$err\" >&2; exit 1 ;;\n  esac\nfi\ntrap - EXIT\n");
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
#[path = "apply_tests.rs"]
mod tests;
