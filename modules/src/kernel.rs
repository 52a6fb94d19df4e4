//! `kernel` module (drover's own, no Ansible equivalent): checks the running
//! kernel (`uname -r`) against `min_version` and fails, naming both, when it
//! is older; reports the installed kernel packages (`dpkg-query`) and the
//! running release. With `package`, installs that kernel package (apt) when
//! missing and reports `reboot_required: true` (the package is newer than
//! the running kernel) instead of rebooting: the `reboot` step is a separate
//! task. `reboot_required` is also true when a package flagged it the
//! Debian way (`/run/reboot-required`; its `.pkgs` are reported as
//! `reboot_required_pkgs`). Boot default: Debian's grub boots the newest installed kernel
//! (`GRUB_DEFAULT=0`), so no grub edit is made; that is a known limit.

use crate::acct_common::exec_at;
use drover_engine::args::get_str;
use drover_engine::module::{
    Action, Args, Change, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry, Step,
    TaskContext,
};
use serde_json::json;
use std::sync::Arc;

const PACKAGES: &str = "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n' \
'linux-image-*' 2>/dev/null || true";

/// Debian's "a package needs a reboot" flag: `/run/reboot-required`, with
/// the packages in `/run/reboot-required.pkgs` (gone after the reboot).
const REBOOT_FLAG: &str = "if [ -e /run/reboot-required ]; then echo required; \
cat /run/reboot-required.pkgs 2>/dev/null; fi; true";

const PARAMS: &[Param] = &[
    Param::new("min_version", Kind::Str),
    Param::new("package", Kind::Str),
];

pub struct KernelModule;

/// The leading numbers of a release: "6.1.0-28-amd64" → [6, 1, 0].
pub fn version_numbers(s: &str) -> Vec<u64> {
    let head = s
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or("");
    head.split('.')
        .map_while(|p| p.parse::<u64>().ok())
        .collect()
}

/// `a` is older than `b` (missing parts count as 0).
pub fn older(a: &[u64], b: &[u64]) -> bool {
    let n = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| at(a, i).cmp(&at(b, i)))
        .find(|o| o.is_ne())
        .is_some_and(|o| o.is_lt())
}

impl Module for KernelModule {
    fn name(&self) -> &'static str {
        "kernel"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let min = get_str(args, "min_version")?;
        let min_numbers = match &min {
            Some(m) => {
                let v = version_numbers(m.trim());
                if v.is_empty() {
                    return Err(ModuleError::BadArg {
                        name: "min_version".into(),
                        value: format!("`{m}`"),
                        message: "expected a version such as 5.10".into(),
                    });
                }
                v
            }
            None => Vec::new(),
        };
        let package = get_str(args, "package")?;
        if let Some(p) = &package {
            if p.is_empty()
                || p.starts_with('-')
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.:_".contains(&b))
            {
                return Err(ModuleError::BadArg {
                    name: "package".into(),
                    value: format!("`{p}`"),
                    message: "not a package name".into(),
                });
            }
        }
        Ok(Box::new(KernelAction {
            min,
            min_numbers,
            package,
        }))
    }
}

struct KernelAction {
    min: Option<String>,
    min_numbers: Vec<u64>,
    package: Option<String>,
}

impl Action for KernelAction {
    fn probes(&self) -> Vec<Probe> {
        vec![
            Probe::Exec {
                argv: vec!["uname".into(), "-r".into()],
            },
            Probe::Exec {
                argv: vec!["sh".into(), "-c".into(), PACKAGES.into()],
            },
            Probe::Exec {
                argv: vec!["sh".into(), "-c".into(), REBOOT_FLAG.into()],
            },
        ]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let uname = exec_at(observed, 0, "uname -r")?;
        let release = uname.stdout_str().trim().to_string();
        if !uname.success() || release.is_empty() {
            return Err(ModuleError::Probe(format!(
                "uname -r failed: {}",
                uname.stderr_str().trim()
            )));
        }
        let running = version_numbers(&release);
        if let Some(m) = &self.min {
            if older(&running, &self.min_numbers) {
                return Err(ModuleError::Failed(format!(
                    "running kernel {release} is older than min_version {m}"
                )));
            }
        }
        // "linux-image-6.1.0-28-amd64 6.1.119-1 ii"
        let mut installed = Vec::new();
        for line in exec_at(observed, 1, "dpkg-query")?.stdout_str().lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [name, version, status, ..] = f.as_slice() {
                if status.starts_with("ii") {
                    installed.push((name.to_string(), version.to_string()));
                }
            }
        }
        let mut plan = Plan::default();
        let mut reboot = false;
        if let Some(p) = &self.package {
            let have = installed.iter().any(|(n, _)| n == p);
            // A versioned package names its release: linux-image-<release>.
            let pkg_release = p
                .strip_prefix("linux-image-")
                .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()));
            if !have {
                let mut step = Step::exec(["apt-get", "install", "-y", "-q", p.as_str()]);
                if let Step::Exec { env, .. } = &mut step {
                    env.insert("DEBIAN_FRONTEND".into(), "noninteractive".into());
                }
                plan.changes.push(Change::new(
                    format!("install kernel package {p} (reboot required)"),
                    vec![step],
                ));
                reboot = pkg_release != Some(release.as_str());
            } else {
                reboot = pkg_release.is_some_and(|r| r != release);
            }
        }
        let r = &mut plan.result;
        r.insert("release".into(), json!(release));
        r.insert(
            "version".into(),
            json!(running
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".")),
        );
        r.insert(
            "packages".into(),
            json!(installed
                .iter()
                .map(|(n, v)| json!({"name": n, "version": v}))
                .collect::<Vec<_>>()),
        );
        let flag = exec_at(observed, 2, "/run/reboot-required")?.stdout_str();
        let mut flag = flag.lines().map(str::trim).filter(|l| !l.is_empty());
        let flagged = flag.next() == Some("required");
        let mut pkgs: Vec<String> = flag.map(String::from).collect();
        pkgs.dedup();
        r.insert("reboot_required".into(), json!(reboot || flagged));
        r.insert("reboot_required_pkgs".into(), json!(pkgs));
        if plan.changes.is_empty() {
            plan.reason = Some(match &self.min {
                Some(m) => format!("running kernel {release} satisfies min_version {m}"),
                None => format!("running kernel {release}"),
            });
        }
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(KernelModule));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(version_numbers("6.1.0-28-amd64"), vec![6, 1, 0]);
        assert_eq!(version_numbers("5.10"), vec![5, 10]);
        assert!(older(&[5, 4, 0], &[5, 10]));
        assert!(!older(&[6, 1, 0], &[5, 10]));
        assert!(!older(&[5, 10, 0], &[5, 10]));
        assert!(older(&[6, 1, 0], &[99, 0]));
    }
}
