//! `recurse: yes` for the `file` module: one `find -printf` probe lists the
//! type, mode and owner of everything below a directory, and the plan adds a
//! recursive `chown -R`/`chmod -R` only when some entry differs.

use crate::fs_attrs::Attrs;
use drover_engine::args::Mode;
use drover_engine::module::{Change, ModuleError, Observed, Probe, Step};

/// The probe listing every entry below `path` as `TYPE MODE UID GID USER GROUP`.
pub fn probe(path: &str, follow: bool) -> Probe {
    let mut argv = vec!["find".to_string()];
    if follow {
        argv.push("-L".into());
    }
    let start = if path.starts_with('-') {
        format!("./{path}")
    } else {
        path.to_string()
    };
    argv.extend([
        start,
        "-mindepth".into(),
        "1".into(),
        "-printf".into(),
        "%y %m %U %G %u %g\\n".into(),
    ]);
    Probe::Exec { argv }
}

/// One entry of the listing.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    user: String,
    group: String,
}

fn parse(out: &str) -> Result<Vec<Entry>, ModuleError> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(6, ' ').collect();
            let bad = || ModuleError::Probe(format!("bad find output line `{l}`"));
            if f.len() < 6 {
                return Err(bad());
            }
            Ok(Entry {
                kind: f[0].chars().next().ok_or_else(bad)?,
                mode: u32::from_str_radix(f[1], 8).map_err(|_| bad())?,
                uid: f[2].parse().map_err(|_| bad())?,
                gid: f[3].parse().map_err(|_| bad())?,
                user: f[4].into(),
                group: f[5].into(),
            })
        })
        .collect()
}

fn principal_differs(want: &Option<String>, name: &str, id: u32) -> bool {
    match want {
        None => false,
        Some(w) if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) => {
            w.parse::<u32>().ok() != Some(id)
        }
        Some(w) => w != name,
    }
}

/// A symbolic mode with every clause given an explicit `a` (chmod would
/// otherwise apply the umask to who-less clauses; Ansible does not).
fn chmod_arg(mode: &Mode) -> String {
    match mode {
        Mode::Octal(m) => format!("{m:04o}"),
        Mode::Symbolic(s) => s
            .split(',')
            .map(|c| {
                if c.starts_with(['+', '-', '=']) {
                    format!("a{c}")
                } else {
                    c.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Changes for the entries below `path` (the directory itself is planned
/// by the caller). `obs` is the result of [`probe`].
pub fn plan(attrs: &Attrs, path: &str, obs: Option<&Observed>) -> Result<Vec<Change>, ModuleError> {
    let out = match obs {
        Some(Observed::Exec(o)) => o,
        other => {
            return Err(ModuleError::Probe(format!(
                "expected find output, got {other:?}"
            )))
        }
    };
    let entries = parse(&out.stdout_str())?;
    let mut own = 0;
    let mut modes = 0;
    for e in &entries {
        if principal_differs(&attrs.owner, &e.user, e.uid)
            || principal_differs(&attrs.group, &e.group, e.gid)
        {
            own += 1;
        }
        if e.kind != 'l' {
            if let Some(m) = attrs.resolve_mode(e.mode, e.kind == 'd') {
                if m != e.mode {
                    modes += 1;
                }
            }
        }
    }
    let mut changes = Vec::new();
    if own > 0 {
        let spec = match (&attrs.owner, &attrs.group) {
            (Some(o), Some(g)) => format!("{o}:{g}"),
            (Some(o), None) => o.clone(),
            (None, Some(g)) => format!(":{g}"),
            (None, None) => String::new(),
        };
        changes.push(Change::new(
            format!("set owner {spec} recursively under {path} ({own} entries differ)"),
            vec![Step::exec(["chown", "-R", &spec, "--", path])],
        ));
    }
    if let (true, Some(m)) = (modes > 0, &attrs.mode) {
        let arg = chmod_arg(m);
        changes.push(Change::new(
            format!("set mode {arg} recursively under {path} ({modes} entries differ)"),
            vec![Step::exec(["chmod", "-R", &arg, "--", path])],
        ));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_engine::module::ExecOutput;

    #[test]
    fn counts_differing_entries() {
        let out = Observed::Exec(ExecOutput {
            status: Some(0),
            stdout: b"d 755 0 0 root root\nf 644 1000 1000 app app\nl 777 0 0 root root\n".to_vec(),
            stderr: vec![],
        });
        let a = Attrs {
            owner: Some("app".into()),
            mode: Some(Mode::Symbolic("u+rwX,go-w".into())),
            group: None,
        };
        let c = plan(&a, "/d", Some(&out)).unwrap();
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            c[0].summary,
            "set owner app recursively under /d (2 entries differ)"
        );
        let a = Attrs {
            mode: Some(Mode::Octal(0o600)),
            ..Default::default()
        };
        let c = plan(&a, "/d", Some(&out)).unwrap();
        assert_eq!(
            c[0].steps,
            vec![Step::exec(["chmod", "-R", "0600", "--", "/d"])]
        );
        assert_eq!(chmod_arg(&Mode::Symbolic("+x,u-w".into())), "a+x,u-w");
    }
}
