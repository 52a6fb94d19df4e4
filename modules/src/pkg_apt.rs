//! Pure parsing of what apt and dpkg print: `dpkg-query -W` status lines,
//! the `Inst`/`Remv` lines of an `apt-get -s` simulation and its "Unable to
//! locate package" errors. No I/O; the `package` module feeds it probe output.

use std::collections::BTreeMap;

/// What dpkg knows about one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgState {
    /// Fully installed (`install ok installed`).
    pub installed: bool,
    /// Removed but configuration files left (`deinstall ok config-files`).
    pub config_files: bool,
    pub version: String,
}

/// Parse `${Package} ${Status} ${Version}` lines (Status is three words).
pub fn parse_dpkg(out: &str) -> BTreeMap<String, DpkgState> {
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 4 {
            continue;
        }
        let name = w[0].split(':').next().unwrap_or(w[0]).to_string();
        m.insert(
            name,
            DpkgState {
                installed: w[3] == "installed",
                config_files: w[3] == "config-files",
                version: w.get(4).map(|s| s.to_string()).unwrap_or_default(),
            },
        );
    }
    m
}

/// One package an apt simulation would install/upgrade or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPkg {
    pub name: String,
    /// Version now installed (upgrades, removals).
    pub old: Option<String>,
    /// Version it would install (None for removals).
    pub new: Option<String>,
}

impl SimPkg {
    pub fn describe(&self) -> String {
        match (&self.old, &self.new) {
            (Some(o), Some(n)) => format!("{} ({o} -> {n})", self.name),
            (None, Some(n)) | (Some(n), None) => format!("{} ({n})", self.name),
            (None, None) => self.name.clone(),
        }
    }
}

/// `Inst` and `Remv` lines of `apt-get -s`, in order.
pub fn parse_sim(out: &str) -> (Vec<SimPkg>, Vec<SimPkg>) {
    let (mut inst, mut remv) = (Vec::new(), Vec::new());
    for line in out.lines() {
        let (is_inst, rest) = if let Some(r) = line.strip_prefix("Inst ") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("Remv ") {
            (false, r)
        } else {
            continue;
        };
        let mut parts = rest.splitn(2, ' ');
        let name = parts.next().unwrap_or_default().to_string();
        let tail = parts.next().unwrap_or_default().trim();
        let old = bracketed(tail, '[', ']');
        let new =
            bracketed(tail, '(', ')').and_then(|s| s.split_whitespace().next().map(str::to_string));
        if is_inst {
            inst.push(SimPkg { name, old, new });
        } else {
            remv.push(SimPkg {
                name,
                old,
                new: None,
            });
        }
    }
    (inst, remv)
}

/// Text between the first `open` and the next `close`, when `tail` starts
/// with `open` or has it after a bracketed old version.
fn bracketed(tail: &str, open: char, close: char) -> Option<String> {
    let start = tail.find(open)?;
    // An "[old]" group must come first; "(new ...)" may follow it.
    if open == '[' && start != 0 {
        return None;
    }
    let end = tail[start + 1..].find(close)?;
    Some(tail[start + 1..start + 1 + end].to_string())
}

/// Names apt could not find ("E: Unable to locate package X", and
/// "E: Package 'X' has no installation candidate").
pub fn unknown_packages(stderr: &str) -> Vec<String> {
    let mut v = Vec::new();
    for line in stderr.lines() {
        if let Some(n) = line.split("Unable to locate package ").nth(1) {
            v.push(n.trim().to_string());
        } else if let Some(r) = line.split("Package '").nth(1) {
            if line.contains("has no installation candidate") {
                if let Some(n) = r.split('\'').next() {
                    v.push(n.to_string());
                }
            }
        }
    }
    v
}

/// Split `name=version` (a pin) into its parts.
pub fn split_pin(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('=') {
        Some((n, v)) if !v.is_empty() => (n, Some(v)),
        Some((n, _)) => (n, None),
        None => (spec, None),
    }
}

/// Whether an installed version satisfies a pin (`1.6*` globs the end).
pub fn version_matches(installed: &str, pin: &str) -> bool {
    match pin.strip_suffix('*') {
        Some(prefix) => installed.starts_with(prefix),
        None => installed == pin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_lines() {
        let m = parse_dpkg(
            "bash install ok installed 5.2.15-2+b13\nmemcached deinstall ok config-files 1.6.18-1\nfoo:amd64 install ok installed 1\n",
        );
        assert!(m["bash"].installed);
        assert_eq!(m["bash"].version, "5.2.15-2+b13");
        assert!(!m["memcached"].installed && m["memcached"].config_files);
        assert!(m.contains_key("foo"));
    }

    #[test]
    fn sim_lines() {
        let (i, r) = parse_sim(
            "NOTE: simulation\nInst libevent-2.1-7 (2.1.12-stable-8 drover-tests:./ [amd64])\nInst memcached [1.6.17] (1.6.18-1 Debian:12.5/stable [amd64])\nConf memcached (1.6.18-1 Debian)\nRemv curl [7.88.1-10]\n",
        );
        assert_eq!(i[0].describe(), "libevent-2.1-7 (2.1.12-stable-8)");
        assert_eq!(i[1].describe(), "memcached (1.6.17 -> 1.6.18-1)");
        assert_eq!(r[0].describe(), "curl (7.88.1-10)");
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn unknown_and_pins() {
        assert_eq!(
            unknown_packages(
                "E: Unable to locate package nosuch\nE: Package 'vim' has no installation candidate\n"
            ),
            ["nosuch", "vim"]
        );
        assert_eq!(split_pin("nginx=1.22*"), ("nginx", Some("1.22*")));
        assert_eq!(split_pin("nginx"), ("nginx", None));
        assert!(version_matches("1.22.1-9", "1.22*"));
        assert!(!version_matches("1.22.1-9", "1.22"));
    }
}
