//! Batching of probes: every probe of a task (or of several tasks) becomes
//! one POSIX shell script run in one exec, whose output is parsed back into
//! [`Observed`] values. Values are quoted with [`quote`]; command output is
//! base64-encoded so any byte survives.

use crate::module::{ExecOutput, FileKind, FileStat, Observed, Probe};
use base64::Engine;

/// Quote one word for a POSIX shell.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quote an argument vector into a shell command line.
pub fn quote_argv(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

const MARK: &str = "@@DROVER";
const FMT: &str = "%f %a %u %g %s %i %d %h %U %G";
const STAT_L: &str = "@@DROVER-LSTAT";
const STAT_F: &str = "@@DROVER-STAT";
const EXEC_OUT: &str = "base64 -w0 \"$t/o\"; echo; base64 -w0 \"$t/e\"; echo; echo \"$rc\"\n";

/// The distinct paths of the `Stat` probes that follow symlinks or not.
fn stat_paths(probes: &[Probe], follow: bool) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for p in probes {
        if let Probe::Stat { path, follow: f } = p {
            if *f == follow && !out.contains(&path.as_str()) {
                out.push(path);
            }
        }
    }
    out
}

/// The channel's stdin for [`probe_script`]: every `ExecStdin` probe's bytes,
/// in order (None when no probe has any).
pub fn probe_stdin(probes: &[Probe]) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    let mut any = false;
    for p in probes {
        if let Probe::ExecStdin { stdin, .. } = p {
            any = true;
            all.extend_from_slice(stdin);
        }
    }
    any.then_some(all)
}

/// Build one script that runs all probes and prints parseable sections.
/// Only `Exec` probes need a scratch directory (their stdout and stderr
/// are kept apart in files): a script without them spawns no `mktemp` and
/// no `rm`, two of the three processes of a lone `stat` probe.
pub fn probe_script(probes: &[Probe]) -> String {
    let mut s = String::new();
    if probes
        .iter()
        .any(|p| matches!(p, Probe::Exec { .. } | Probe::ExecStdin { .. }))
    {
        s.push_str("t=$(mktemp -d 2>/dev/null || mktemp -d -t drover.XXXXXX) || exit 97\ntrap 'rm -rf \"$t\"' EXIT\n");
    }
    s.push_str("LC_ALL=C; export LC_ALL\n");
    // Every `Stat` probe's stat line comes from one of two `stat` processes
    // (all lstats, all stats), NUL-terminated records with the name last;
    // a section per probe then only reads a symlink's target (a builtin
    // test, and readlink for a link alone).
    for (set, follow) in [(STAT_L, false), (STAT_F, true)] {
        let paths = stat_paths(probes, follow);
        s.push_str(&format!("printf '{set}\\n'\n"));
        if !paths.is_empty() {
            s.push_str(&format!(
                "stat {}--printf '{FMT} %n\\0' --",
                if follow { "-L " } else { "" }
            ));
            for p in &paths {
                s.push(' ');
                s.push_str(&quote(p));
            }
            s.push_str(" 2>/dev/null\n");
        }
        s.push_str("echo\n");
    }
    for (i, p) in probes.iter().enumerate() {
        s.push_str(&format!("echo '{MARK} {i}'\n"));
        match p {
            Probe::Stat { path, .. } => {
                let q = quote(path);
                s.push_str(&format!(
                    "if [ -L {q} ]; then readlink -n -- {q} | base64 -w0; fi; echo\n"
                ));
            }
            Probe::Read { path } => {
                let q = quote(path);
                // On a read error, read again for the message (rare path).
                s.push_str(&format!(
                    "if [ -f {q} ]; then if base64 -w0 -- {q} 2>/dev/null; then echo; else echo '{MARK}-ERR'; base64 -w0 -- {q} 2>&1 >/dev/null | base64 -w0; echo; fi; else echo '{MARK}-ABSENT'; fi\n"
                ));
            }
            Probe::Exec { argv } => {
                s.push_str(&format!(
                    "{} </dev/null >\"$t/o\" 2>\"$t/e\"; rc=$?; {EXEC_OUT}",
                    quote_argv(argv)
                ));
            }
            // Exactly LEN bytes of the channel's stdin (GNU head -c reads no
            // more than it was asked for, even from a pipe), in a subshell
            // that drains what the command leaves unread, so the next
            // probe's input starts where it should.
            Probe::ExecStdin { argv, stdin } => {
                s.push_str(&format!(
                    "head -c {} | ({} >\"$t/o\" 2>\"$t/e\"; r=$?; cat >/dev/null; exit $r); rc=$?; {EXEC_OUT}",
                    stdin.len(),
                    quote_argv(argv)
                ));
            }
        }
    }
    s.push_str(&format!("echo '{MARK} end'\n"));
    s
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("bad base64 in probe output: {e}"))
}

fn parse_stat(line: &str, link: &str) -> Result<FileStat, String> {
    let f: Vec<&str> = line.splitn(10, ' ').collect();
    if f.len() < 10 {
        return Err(format!("bad stat line `{line}`"));
    }
    let raw = u32::from_str_radix(f[0], 16).map_err(|_| format!("bad mode `{}`", f[0]))?;
    let kind = match raw & 0o170000 {
        0o100000 => FileKind::File,
        0o040000 => FileKind::Directory,
        0o120000 => FileKind::Link,
        _ => FileKind::Other,
    };
    let num = |i: usize| {
        f[i].parse::<u64>()
            .map_err(|_| format!("bad stat field `{}`", f[i]))
    };
    Ok(FileStat {
        kind,
        mode: raw & 0o7777,
        uid: num(2)? as u32,
        gid: num(3)? as u32,
        size: num(4)?,
        inode: num(5)?,
        dev: num(6)?,
        nlink: num(7)?,
        owner: f[8].to_string(),
        group: f[9].to_string(),
        link_target: if link.is_empty() {
            None
        } else {
            Some(String::from_utf8_lossy(&b64(link)?).into_owned())
        },
    })
}

/// The stat records after `mark` (name → stat fields) and the text after them.
fn stat_set<'a>(
    text: &'a str,
    mark: &str,
) -> Result<(std::collections::HashMap<&'a str, &'a str>, &'a str), String> {
    let head = format!("{mark}\n");
    let start = text
        .find(&head)
        .ok_or_else(|| format!("probe output lacks {mark}"))?
        + head.len();
    let body = &text[start..];
    // The records end at the first newline not inside one (a record ends
    // with NUL, so the set's closing newline follows a NUL or the mark).
    let end = body
        .match_indices('\n')
        .map(|(i, _)| i)
        .find(|&i| i == 0 || body.as_bytes()[i - 1] == 0)
        .ok_or_else(|| format!("probe output truncated after {mark}"))?;
    let mut map = std::collections::HashMap::new();
    for rec in body[..end].split('\0').filter(|r| !r.is_empty()) {
        // Ten fields, then the name (which may hold spaces).
        let cut = rec
            .match_indices(' ')
            .nth(9)
            .map(|(i, _)| i)
            .ok_or_else(|| format!("bad stat record `{rec}`"))?;
        map.insert(&rec[cut + 1..], &rec[..cut]);
    }
    Ok((map, &body[end + 1..]))
}

/// Parse the output of [`probe_script`] for the same probes.
pub fn parse_probe_output(probes: &[Probe], out: &[u8]) -> Result<Vec<Observed>, String> {
    let text = String::from_utf8_lossy(out);
    let (lstat, rest) = stat_set(&text, STAT_L)?;
    let (fstat, rest) = stat_set(rest, STAT_F)?;
    let mut lines = rest.lines();
    let mut res = Vec::with_capacity(probes.len());
    for (i, p) in probes.iter().enumerate() {
        let head = format!("{MARK} {i}");
        loop {
            match lines.next() {
                Some(l) if l == head => break,
                Some(_) => continue,
                None => return Err(format!("probe {i} produced no output")),
            }
        }
        let mut next = || {
            lines
                .next()
                .ok_or_else(|| format!("probe {i} output truncated"))
        };
        let absent = format!("{MARK}-ABSENT");
        let obs = match p {
            Probe::Stat { path, follow } => {
                let link = next()?;
                let set = if *follow { &fstat } else { &lstat };
                match set.get(path.as_str()) {
                    Some(line) => Observed::Stat(Some(parse_stat(line, link)?)),
                    None => Observed::Stat(None),
                }
            }
            Probe::Read { path } => {
                let l = next()?;
                if l == absent {
                    Observed::Content(None)
                } else if l == format!("{MARK}-ERR") {
                    let e = b64(next()?)?;
                    return Err(format!(
                        "cannot read {path}: {}",
                        String::from_utf8_lossy(&e).trim()
                    ));
                } else {
                    Observed::Content(Some(b64(l)?))
                }
            }
            Probe::Exec { .. } | Probe::ExecStdin { .. } => {
                let o = b64(next()?)?;
                let e = b64(next()?)?;
                let rc = next()?.trim().parse::<i32>().ok();
                Observed::Exec(ExecOutput {
                    status: rc,
                    stdout: o,
                    stderr: e,
                })
            }
        };
        res.push(obs);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoting() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn probes_roundtrip_through_real_sh() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a file");
        std::fs::write(&f, b"hello\n\x00bin").unwrap();
        let l = dir.path().join("lnk");
        std::os::unix::fs::symlink("a file", &l).unwrap();
        let probes = vec![
            Probe::Stat {
                path: f.display().to_string(),
                follow: false,
            },
            Probe::Read {
                path: f.display().to_string(),
            },
            Probe::Stat {
                path: dir.path().join("nope").display().to_string(),
                follow: false,
            },
            Probe::Read {
                path: dir.path().join("nope").display().to_string(),
            },
            Probe::Exec {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo out; echo err >&2; exit 3".into(),
                ],
            },
            Probe::Stat {
                path: l.display().to_string(),
                follow: false,
            },
        ];
        let out = Command::new("sh")
            .arg("-c")
            .arg(probe_script(&probes))
            .output()
            .unwrap();
        let obs = parse_probe_output(&probes, &out.stdout).unwrap();
        match &obs[0] {
            Observed::Stat(Some(s)) => {
                assert_eq!(s.kind, FileKind::File);
                assert_eq!(s.size, 10);
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(obs[1], Observed::Content(Some(b"hello\n\x00bin".to_vec())));
        assert_eq!(obs[2], Observed::Stat(None));
        assert_eq!(obs[3], Observed::Content(None));
        assert_eq!(
            obs[4],
            Observed::Exec(ExecOutput {
                status: Some(3),
                stdout: b"out\n".to_vec(),
                stderr: b"err\n".to_vec()
            })
        );
        match &obs[5] {
            Observed::Stat(Some(s)) => {
                assert_eq!(s.kind, FileKind::Link);
                assert_eq!(s.link_target.as_deref(), Some("a file"));
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn stdin_probes_get_exactly_their_bytes() {
        let probes = vec![
            Probe::ExecStdin {
                argv: vec!["head".into(), "-c".into(), "2".into()],
                stdin: b"abcdef".to_vec(),
            },
            Probe::Exec {
                argv: vec!["cat".into()],
            },
            Probe::ExecStdin {
                argv: vec!["cat".into()],
                stdin: b"second\n\x00x".to_vec(),
            },
        ];
        let script = probe_script(&probes);
        assert!(!script.contains("abcdef") && !script.contains("second"));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut input = probe_stdin(&probes).unwrap();
        input.extend_from_slice(b"trailing");
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        let obs = parse_probe_output(&probes, &out.stdout).unwrap();
        let so = |o: &Observed| match o {
            Observed::Exec(e) => e.stdout.clone(),
            o => panic!("{o:?}"),
        };
        assert_eq!(so(&obs[0]), b"ab");
        assert_eq!(so(&obs[1]), b"");
        assert_eq!(so(&obs[2]), b"second\n\x00x");
        assert_eq!(probe_stdin(&probes[1..2]), None);
    }

    #[test]
    fn stat_after_lstat_of_the_same_path_agrees_with_a_lone_stat() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"abc").unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("ok")).unwrap();
        std::os::unix::fs::symlink("gone", dir.path().join("dangling")).unwrap();
        let run = |probes: &[Probe]| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(probe_script(probes))
                .output()
                .unwrap();
            parse_probe_output(probes, &out.stdout).unwrap()
        };
        for name in ["f", "ok", "dangling", "missing"] {
            let path = dir.path().join(name).display().to_string();
            let st = |follow| Probe::Stat {
                path: path.clone(),
                follow,
            };
            let pair = run(&[st(false), st(true)]);
            assert_eq!(pair[0], run(&[st(false)])[0], "{name}");
            assert_eq!(pair[1], run(&[st(true)])[0], "{name}");
        }
    }

    #[test]
    fn file_probes_need_no_scratch_dir_and_report_read_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let probes = vec![
            Probe::Stat {
                path: f.display().to_string(),
                follow: true,
            },
            Probe::Read {
                path: f.display().to_string(),
            },
        ];
        let script = probe_script(&probes);
        assert!(!script.contains("mktemp"), "{script}");
        let run = |script: String| {
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .output()
                .unwrap()
                .stdout
        };
        let obs = parse_probe_output(&probes, &run(script)).unwrap();
        assert_eq!(obs[1], Observed::Content(Some(b"x".to_vec())));
        // A regular file that cannot be read (even by root): the message
        // comes back with the error.
        let bad = vec![Probe::Read {
            path: "/proc/self/mem".into(),
        }];
        let e = parse_probe_output(&bad, &run(probe_script(&bad))).unwrap_err();
        assert!(
            e.contains("cannot read /proc/self/mem") && e.contains("error"),
            "{e}"
        );
    }

    #[test]
    fn stat_records_survive_names_with_spaces_and_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a b\nc\n");
        std::fs::write(&odd, b"12345").unwrap();
        let link = dir.path().join("l\n");
        std::os::unix::fs::symlink(&odd, &link).unwrap();
        let st = |p: &std::path::Path, follow| Probe::Stat {
            path: p.display().to_string(),
            follow,
        };
        let probes = vec![
            st(&link, false),
            st(&odd, false),
            st(&link, true),
            st(&dir.path().join("none"), true),
        ];
        let out = Command::new("sh")
            .arg("-c")
            .arg(probe_script(&probes))
            .output()
            .unwrap();
        let obs = parse_probe_output(&probes, &out.stdout).unwrap();
        let get = |i: usize| match &obs[i] {
            Observed::Stat(Some(s)) => s.clone(),
            o => panic!("{i}: {o:?}"),
        };
        assert_eq!(get(0).kind, FileKind::Link);
        assert_eq!(get(0).link_target.as_deref(), Some(odd.to_str().unwrap()));
        assert_eq!((get(1).kind, get(1).size), (FileKind::File, 5));
        assert_eq!((get(2).kind, get(2).size), (FileKind::File, 5));
        assert_eq!(obs[3], Observed::Stat(None));
    }
}
