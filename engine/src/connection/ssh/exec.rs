//! One command on one exec channel: rendering the request into a command
//! line (`cd`, `env`, sudo for `become`), streaming stdin, collecting stdout
//! and stderr until the channel closes, and the sudo dialogue (a unique
//! prompt answered once over stdin, a unique marker that proves the command
//! started; both are stripped from the output).

use crate::connection::script::{quote, quote_argv};
use crate::connection::{ExecOutput, ExecRequest};
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

/// The sudo dialogue of one command.
#[derive(Debug, Clone)]
pub(crate) struct Sudo {
    pub prompt: String,
    pub marker: String,
    pub password: Option<String>,
}

/// A rendered command line.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub command: String,
    pub sudo: Option<Sudo>,
}

fn env_argv(req: &ExecRequest) -> Vec<String> {
    let mut argv = Vec::new();
    if !req.env.is_empty() {
        argv.push("env".to_string());
        argv.extend(req.env.iter().map(|(k, v)| format!("{k}={v}")));
    }
    argv.extend(req.argv.iter().cloned());
    argv
}

/// Render a request for a login as `login_user`.
pub(crate) fn render(req: &ExecRequest, login_user: &str) -> Plan {
    let argv = env_argv(req);
    match &req.become_ {
        Some(b) if b.user != login_user => {
            let tag = format!("{:016x}", rand::random::<u64>());
            let sudo = Sudo {
                prompt: format!("[drover-sudo-prompt-{tag}]"),
                marker: format!("DROVER-BECOME-OK-{tag}"),
                password: b.password.clone(),
            };
            let mut script = format!("echo {}; ", sudo.marker);
            if let Some(cwd) = &req.cwd {
                script.push_str(&format!("cd {} && ", quote(cwd)));
            }
            script.push_str("exec \"$@\"");
            let mut v: Vec<String> = vec!["sudo".into(), "-H".into()];
            if sudo.password.is_some() {
                v.extend(["-S".into(), "-p".into(), sudo.prompt.clone()]);
            } else {
                v.push("-n".into());
            }
            v.extend(["-u".into(), b.user.clone()]);
            v.extend(b.flags.iter().cloned());
            v.extend(["--".into(), "sh".into(), "-c".into(), script, "sh".into()]);
            v.extend(argv);
            Plan {
                command: quote_argv(&v),
                sudo: Some(sudo),
            }
        }
        _ => {
            let mut command = String::new();
            if let Some(cwd) = &req.cwd {
                command.push_str(&format!("cd {} && ", quote(cwd)));
            }
            command.push_str(&quote_argv(&argv));
            Plan {
                command,
                sudo: None,
            }
        }
    }
}

/// Why a started command has no result.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The channel vanished without a close: the connection is gone.
    Lost,
    /// The server refused the exec request: nothing ran.
    Refused,
    /// sudo did not start the command.
    Become(String),
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    let mut n = 0;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if &hay[i..i + needle.len()] == needle {
            n += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    n
}

fn strip_all(hay: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if !needle.is_empty() && hay[i..].starts_with(needle) {
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Remove everything up to and including the marker line; None if absent.
fn after_marker(out: &[u8], marker: &str) -> Option<Vec<u8>> {
    let line = format!("{marker}\n");
    let pos = (0..=out.len().saturating_sub(line.len()))
        .find(|&i| out[i..].starts_with(line.as_bytes()))?;
    Some(out[pos + line.len()..].to_vec())
}

/// Text of sudo's complaint, with the prompt removed and the password masked.
pub(crate) fn sudo_complaint(stderr: &[u8], sudo: &Sudo) -> String {
    let text = String::from_utf8_lossy(&strip_all(stderr, sudo.prompt.as_bytes())).into_owned();
    let text = match &sudo.password {
        Some(p) if !p.is_empty() => text.replace(p.as_str(), "********"),
        _ => text,
    };
    text.trim().to_string()
}

/// Run a plan on an exec channel whose `exec` request was already sent.
/// Returns when the server closes the channel.
pub(crate) async fn collect(
    rd: &mut ChannelReadHalf,
    wr: &ChannelWriteHalf<Msg>,
    sudo: Option<&Sudo>,
    stdin: Option<&[u8]>,
) -> Result<ExecOutput, RunError> {
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<Option<String>>();
    // sudo -S reads the password first, so stdin waits for the prompt (or
    // the marker, when sudo needs no password).
    let gated = sudo.is_some_and(|s| s.password.is_some());
    let writer = async move {
        let password = if gated {
            match go_rx.await {
                Ok(p) => p,
                Err(_) => return std::future::pending().await,
            }
        } else {
            None
        };
        if let Some(p) = password {
            let _ = wr.data_bytes(format!("{p}\n").into_bytes()).await;
        }
        if let Some(data) = stdin {
            let _ = wr.data(data).await;
        }
        let _ = wr.eof().await;
        std::future::pending::<()>().await
    };
    let reader = async {
        let mut go = Some(go_tx);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut status = None;
        let mut started = sudo.is_none();
        let mut password_sent = false;
        loop {
            match rd.wait().await {
                Some(ChannelMsg::Data { data }) => out.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => err.extend_from_slice(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    status = Some(i32::try_from(exit_status).unwrap_or(i32::MAX))
                }
                Some(ChannelMsg::Failure) => return Err(RunError::Refused),
                Some(ChannelMsg::Close) => break,
                Some(_) => {}
                None => return Err(RunError::Lost),
            }
            let Some(s) = sudo.filter(|_| !started) else {
                continue;
            };
            if after_marker(&out, &s.marker).is_some() {
                started = true;
                if let Some(tx) = go.take() {
                    let _ = tx.send(None);
                }
                continue;
            }
            match (count(&err, s.prompt.as_bytes()), &s.password) {
                (0, _) => {}
                (1, Some(p)) if !password_sent => {
                    password_sent = true;
                    if let Some(tx) = go.take() {
                        let _ = tx.send(Some(p.clone()));
                    }
                }
                (1, Some(_)) => {}
                (1, None) => {
                    return Err(RunError::Become(
                        "sudo asks for a password but none was given (become_password)".into(),
                    ))
                }
                _ => return Err(RunError::Become("incorrect sudo password".into())),
            }
        }
        match sudo {
            Some(s) => match after_marker(&out, &s.marker) {
                Some(rest) => Ok(ExecOutput {
                    status,
                    stdout: rest,
                    stderr: strip_all(&err, s.prompt.as_bytes()),
                }),
                None => Err(RunError::Become(format!(
                    "sudo did not run the command (exit status {}): {}",
                    status.map_or("unknown".to_string(), |c| c.to_string()),
                    sudo_complaint(&err, s)
                ))),
            },
            None => Ok(ExecOutput {
                status,
                stdout: out,
                stderr: err,
            }),
        }
    };
    tokio::select! {
        r = reader => r,
        () = writer => Err(RunError::Lost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Become;

    #[test]
    fn plain_command_with_cwd_and_env() {
        let mut req = ExecRequest::new(["ls", "-l", "a b"]);
        req.cwd = Some("/tmp/x y".into());
        req.env.insert("LANG".into(), "C".into());
        let p = render(&req, "root");
        assert_eq!(p.command, "cd '/tmp/x y' && env LANG=C ls -l 'a b'");
        assert!(p.sudo.is_none());
    }

    #[test]
    fn become_same_user_is_plain() {
        let mut req = ExecRequest::new(["id"]);
        req.become_ = Some(Become {
            user: "root".into(),
            ..Default::default()
        });
        assert_eq!(render(&req, "root").command, "id");
    }

    #[test]
    fn become_wraps_in_sudo_without_the_password() {
        let mut req = ExecRequest::new(["id", "-u"]);
        req.become_ = Some(Become {
            user: "postgres".into(),
            flags: vec!["-E".into()],
            password: Some("s3cret".into()),
        });
        let p = render(&req, "deploy");
        let s = p.sudo.clone().unwrap();
        assert!(!p.command.contains("s3cret"));
        let words = shell_words::split(&p.command).unwrap();
        assert_eq!(&words[..3], ["sudo", "-H", "-S"]);
        assert_eq!(words[4], s.prompt);
        assert_eq!(&words[5..9], ["-u", "postgres", "-E", "--"]);
        assert_eq!(words[11], format!("echo {}; exec \"$@\"", s.marker));
        assert_eq!(&words[12..], ["sh", "id", "-u"]);
        req.become_.as_mut().unwrap().password = None;
        let p = render(&req, "deploy");
        assert!(p.command.starts_with("sudo -H -n -u postgres"));
    }

    #[test]
    fn marker_and_prompt_are_stripped() {
        assert_eq!(after_marker(b"M\nout\n", "M").unwrap(), b"out\n");
        assert!(after_marker(b"out\n", "M").is_none());
        assert_eq!(count(b"[p]Sorry\n[p]", b"[p]"), 2);
        let s = Sudo {
            prompt: "[p]".into(),
            marker: "M".into(),
            password: Some("pw".into()),
        };
        assert_eq!(sudo_complaint(b"[p]bad pw here", &s), "bad ******** here");
    }
}
