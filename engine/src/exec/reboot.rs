//! The `reboot` step: read the host's boot id, start the reboot (a
//! connection lost meanwhile is expected), then re-dial (host keys verified
//! as on every dial; a changed key fails at once) until the host answers
//! with a different boot id and the test command succeeds, all within the
//! step's timeout. The new connection replaces the pooled one, so the
//! host's later tasks use it. The controller itself (a `local` host) is
//! never rebooted.

use super::apply::{ExecEnv, StepError};
use super::scheduler::Runtime;
use crate::connection::{Connection, ConnectionError, ExecRequest};
use crate::module::Reboot;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the reboot command may take before the engine stops waiting
/// for its answer (the host may go down before it replies).
const COMMAND_WAIT: Duration = Duration::from_secs(30);
/// Pause between dials while the host is down.
const POLL: Duration = Duration::from_secs(3);
/// Deadline of one command (boot id, test) on the re-dialled host.
const PROBE_WAIT: Duration = Duration::from_secs(60);

fn failed(message: String) -> StepError {
    StepError::Failed {
        message,
        output: None,
    }
}

fn request(env: &ExecEnv<'_>, argv: &[String], limit: Duration) -> ExecRequest {
    let mut r = env.request(argv.to_vec());
    r.timeout = Some(limit);
    r
}

/// The boot id, or why it could not be read.
async fn boot_id(
    conn: &dyn Connection,
    env: &ExecEnv<'_>,
    spec: &Reboot,
) -> Result<String, ConnectionError> {
    let out = conn
        .exec(request(env, &spec.boot_id_command, PROBE_WAIT))
        .await?;
    let id = out.stdout_str().trim().to_string();
    if out.success() && !id.is_empty() {
        Ok(id)
    } else {
        Err(ConnectionError::Other {
            host: conn.host().into(),
            reason: format!(
                "boot id command `{}` failed (exit {:?}): {}",
                spec.boot_id_command.join(" "),
                out.status,
                out.stderr_str().trim()
            ),
        })
    }
}

/// Reboot `host` over `conn`; returns the new connection and the result
/// fields (`rebooted`, `elapsed`, the boot ids).
pub(super) async fn reboot(
    rt: &Runtime,
    host: &str,
    conn: &Arc<dyn Connection>,
    env: &ExecEnv<'_>,
    spec: &Reboot,
) -> Result<(Arc<dyn Connection>, Map<String, Value>), StepError> {
    if rt.connection_kind(host) == "local" {
        return Err(failed(format!(
            "refusing to reboot {host}: it uses the local connection (the controller itself)"
        )));
    }
    let start = Instant::now();
    let deadline = start + spec.timeout;
    let before = boot_id(conn.as_ref(), env, spec).await.map_err(|e| {
        failed(format!(
            "cannot read the boot id before rebooting {host}: {e}"
        ))
    })?;
    let sent = conn.exec(request(env, &spec.command, COMMAND_WAIT)).await;
    match sent {
        Ok(out) if out.status.is_none() || out.success() => {}
        Ok(out) => {
            return Err(failed(format!(
                "reboot command `{}` failed (exit {:?}): {}",
                spec.command.join(" "),
                out.status,
                out.stderr_str().trim()
            )))
        }
        // The host went down under the command: what a reboot looks like.
        Err(ConnectionError::Lost { .. })
        | Err(ConnectionError::Timeout { .. })
        | Err(ConnectionError::Unreachable { .. }) => {}
        Err(e) => return Err(StepError::Conn(e)),
    }
    conn.close().await;
    let mut last = String::from("no answer yet");
    loop {
        tokio::time::sleep(POLL).await;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failed(format!(
                "{host} did not come back with a new boot id within {}s (last: {last})",
                spec.timeout.as_secs()
            )));
        }
        let dial_limit = spec.connect_timeout.map_or(left, |c| c.min(left));
        let new = match rt.dial(host, Some(dial_limit)).await {
            Ok(c) => c,
            // A different host key after a reboot is not "still booting".
            Err(e @ ConnectionError::HostKey { .. }) | Err(e @ ConnectionError::Auth { .. }) => {
                return Err(StepError::Conn(e))
            }
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        match boot_id(new.as_ref(), env, spec).await {
            Ok(id) if id != before => {
                wait_test(new.as_ref(), env, spec, deadline, host).await?;
                tokio::time::sleep(spec.post_delay).await;
                rt.replace_connection(host, new.clone()).await;
                let mut r = Map::new();
                r.insert("rebooted".into(), json!(true));
                r.insert("elapsed".into(), json!(start.elapsed().as_secs()));
                r.insert("boot_id_before".into(), json!(before));
                r.insert("boot_id".into(), json!(id));
                return Ok((new, r));
            }
            Ok(_) => last = "the host still runs the old boot".into(),
            Err(e) => last = e.to_string(),
        }
        new.close().await;
    }
}

/// Run the test command until it succeeds (or the deadline passes).
async fn wait_test(
    conn: &dyn Connection,
    env: &ExecEnv<'_>,
    spec: &Reboot,
    deadline: Instant,
    host: &str,
) -> Result<(), StepError> {
    loop {
        let why = match conn
            .exec(request(env, &spec.test_command, PROBE_WAIT))
            .await
        {
            Ok(o) if o.success() => return Ok(()),
            Ok(o) => format!("exit {:?}: {}", o.status, o.stderr_str().trim()),
            Err(e) if e.is_unreachable() => return Err(StepError::Conn(e)),
            Err(e) => e.to_string(),
        };
        if Instant::now() + POLL >= deadline {
            return Err(failed(format!(
                "{host} rebooted but test command `{}` never succeeded ({why})",
                spec.test_command.join(" ")
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
