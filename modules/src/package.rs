//! `package` module (aliases `apt`; `dnf`/`yum` are registered but report
//! "not implemented"): install, upgrade or remove OS packages with apt. It
//! observes with `dpkg-query -W` and apt's own simulation (`apt-get -s`), so
//! the plan (and check mode) names exactly the packages and versions apt would
//! install or remove, dependencies included. Packages already as wanted are
//! never touched. `update_cache` (with `cache_valid_time`) runs `apt-get update`.

#[path = "pkg_apt.rs"]
mod pkg_apt;

use drover_engine::args::{get_bool, get_int, get_str, get_str_list};
use drover_engine::module::{
    Action, Args, Change, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry, Step,
    TaskContext,
};
use pkg_apt::{DpkgState, SimPkg};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const STAMP: &str = "/var/lib/apt/periodic/update-success-stamp";
/// Now and the cache's age stamp, as Ansible reads it; a host whose package
/// lists are empty (a fresh image) counts as never updated, so
/// `cache_valid_time` cannot skip the first update there.
const CACHE_PROBE: &str = "date +%s; if ! ls /var/lib/apt/lists/ 2>/dev/null | grep -q '_Packages'; then echo 0; else stat -c %Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0; fi";

const STATES: &[&str] = &["present", "installed", "latest", "absent", "removed"];

const PARAMS: &[Param] = &[
    Param::new("name", Kind::List).aliases(&["pkg", "package"]),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("update_cache", Kind::Bool).aliases(&["update-cache"]),
    Param::new("cache_valid_time", Kind::Int),
    Param::new("install_recommends", Kind::Bool).aliases(&["install-recommends"]),
    Param::new("purge", Kind::Bool),
    Param::new("use", Kind::Str),
];

pub struct PackageModule;
pub struct DnfModule;

impl Module for PackageModule {
    fn name(&self) -> &'static str {
        "package"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["apt"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let wanted = get_str(args, "use")?.filter(|u| u != "auto");
        let fact = ctx
            .vars()
            .get("ansible_pkg_mgr")
            .and_then(Value::as_str)
            .map(str::to_string);
        match wanted.or(fact).as_deref() {
            None | Some("apt") | Some("unknown") => {}
            Some(other) => return Err(not_implemented(other)),
        }
        Ok(Box::new(AptAction::new(args)?))
    }
}

impl Module for DnfModule {
    fn name(&self) -> &'static str {
        "dnf"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["yum"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, _: &Args, _: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        Err(not_implemented("dnf"))
    }
}

fn not_implemented(mgr: &str) -> ModuleError {
    ModuleError::Failed(format!(
        "package manager `{mgr}` is not implemented yet (only apt is supported)"
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Present,
    Latest,
    Absent,
}

struct AptAction {
    /// As given, possibly `name=version`.
    specs: Vec<String>,
    state: State,
    update_cache: bool,
    cache_valid_time: Option<i64>,
    recommends: Option<bool>,
    purge: bool,
}

impl AptAction {
    fn new(args: &Args) -> Result<Self, ModuleError> {
        let specs = get_str_list(args, "name")?;
        for s in &specs {
            if s.is_empty() || s.starts_with('-') || s.chars().any(char::is_whitespace) {
                return Err(ModuleError::BadArg {
                    name: "name".into(),
                    value: format!("`{s}`"),
                    message: "not a package name".into(),
                });
            }
        }
        let state = match get_str(args, "state")?.as_deref() {
            None | Some("present") | Some("installed") => State::Present,
            Some("latest") => State::Latest,
            Some("absent") | Some("removed") => State::Absent,
            Some(other) => {
                return Err(ModuleError::BadChoice {
                    name: "state".into(),
                    value: other.into(),
                    choices: STATES.join(", "),
                })
            }
        };
        let update_cache = get_bool(args, "update_cache", false)?;
        if specs.is_empty() && !update_cache {
            return Err(ModuleError::Failed(
                "no package given (`name`) and no `update_cache` requested".into(),
            ));
        }
        let recommends = match args.get("install_recommends") {
            None | Some(Value::Null) => None,
            Some(_) => Some(get_bool(args, "install_recommends", true)?),
        };
        Ok(AptAction {
            specs,
            state,
            update_cache,
            cache_valid_time: get_int(args, "cache_valid_time")?,
            recommends,
            purge: get_bool(args, "purge", false)?,
        })
    }

    fn names(&self) -> Vec<String> {
        self.specs
            .iter()
            .map(|s| pkg_apt::split_pin(s).0.to_string())
            .collect()
    }

    fn recommends_flag(&self) -> Option<&'static str> {
        self.recommends.map(|r| {
            if r {
                "--install-recommends"
            } else {
                "--no-install-recommends"
            }
        })
    }

    fn sim_argv(&self) -> Vec<String> {
        // `Dir::Log::Planner=` (empty): apt's simulation otherwise writes
        // /var/log/apt/eipp.log.xz, and --check must leave the host untouched.
        let mut a: Vec<String> = [
            "env",
            "LC_ALL=C",
            "apt-get",
            "-s",
            "-o",
            "Dir::Log::Planner=",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match self.state {
            State::Absent => {
                a.push("remove".into());
                if self.purge {
                    a.push("--purge".into());
                }
                a.extend(self.names());
            }
            State::Present | State::Latest => {
                a.push("install".into());
                if self.state == State::Present {
                    a.push("--no-upgrade".into());
                }
                a.extend(self.recommends_flag().map(String::from));
                a.extend(self.specs.iter().cloned());
            }
        }
        a
    }

    fn apt_step(&self, verb: &str, names: &[String]) -> Step {
        let mut argv: Vec<String> = vec!["apt-get".into(), verb.into(), "-y".into(), "-q".into()];
        if verb == "remove" && self.purge {
            argv.push("--purge".into());
        }
        if verb == "install" {
            argv.extend(self.recommends_flag().map(String::from));
        }
        argv.extend(names.iter().cloned());
        Step::Exec {
            argv,
            stdin: None,
            cwd: None,
            env: BTreeMap::from([("DEBIAN_FRONTEND".into(), "noninteractive".into())]),
            capture: false,
            allow_fail: false,
        }
    }

    /// Whether the cache needs an update, from the cache probe.
    fn cache_stale(&self, o: Option<&Observed>) -> Result<bool, ModuleError> {
        let Some(valid) = self.cache_valid_time.filter(|v| *v > 0) else {
            return Ok(true);
        };
        let out = exec(o, "apt cache age")?.stdout_str();
        let nums: Vec<i64> = out
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        match nums[..] {
            [now, mtime, ..] => Ok(now - mtime > valid),
            _ => Err(ModuleError::Probe(format!(
                "cannot read the apt cache age from `{}`",
                out.trim()
            ))),
        }
    }
}

fn exec<'a>(
    o: Option<&'a Observed>,
    what: &str,
) -> Result<&'a drover_engine::module::ExecOutput, ModuleError> {
    match o {
        Some(Observed::Exec(e)) => Ok(e),
        other => Err(ModuleError::Probe(format!(
            "expected the {what} command output, got {other:?}"
        ))),
    }
}

fn join(pkgs: &[SimPkg]) -> String {
    pkgs.iter()
        .map(SimPkg::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Action for AptAction {
    fn probes(&self) -> Vec<Probe> {
        let mut p = Vec::new();
        if !self.specs.is_empty() {
            let mut argv: Vec<String> = vec![
                "dpkg-query".into(),
                "-W".into(),
                "-f".into(),
                "${Package} ${Status} ${Version}\n".into(),
            ];
            argv.extend(self.names());
            p.push(Probe::Exec { argv });
            p.push(Probe::Exec {
                argv: self.sim_argv(),
            });
        }
        if self.update_cache {
            p.push(Probe::Exec {
                argv: vec!["sh".into(), "-c".into(), CACHE_PROBE.into()],
            });
        }
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let mut changes = Vec::new();
        let mut result = Map::new();
        let pkg_probes = if self.specs.is_empty() { 0 } else { 2 };
        let stale = self.update_cache && self.cache_stale(observed.get(pkg_probes))?;
        result.insert("cache_updated".into(), json!(stale));
        if stale {
            changes.push(Change::new(
                "update apt cache",
                vec![
                    Step::exec(["apt-get", "update", "-q"]),
                    Step::exec(["mkdir", "-p", "--", "/var/lib/apt/periodic"]),
                    Step::exec(["touch", "--", STAMP]),
                ],
            ));
        }
        if self.specs.is_empty() {
            return Ok(finish(changes, result, "apt cache is recent enough"));
        }
        let dpkg = pkg_apt::parse_dpkg(&exec(observed.first(), "dpkg-query")?.stdout_str());
        let sim = exec(observed.get(1), "apt-get -s")?;
        let (inst, remv) = pkg_apt::parse_sim(&sim.stdout_str());
        match self.state {
            State::Absent => {
                let gone: Vec<String> = self
                    .names()
                    .into_iter()
                    .filter(|n| {
                        dpkg.get(n)
                            .is_some_and(|d| d.installed || (self.purge && d.config_files))
                    })
                    .collect();
                result.insert("packages".into(), json!(gone));
                if gone.is_empty() {
                    return Ok(finish(changes, result, "packages are not installed"));
                }
                let what = if remv.is_empty() {
                    describe_dpkg(&gone, &dpkg)
                } else {
                    join(&remv)
                };
                let verb = if self.purge { "purge" } else { "remove" };
                changes.push(Change::new(
                    format!("{verb} {what}"),
                    vec![self.apt_step("remove", &gone)],
                ));
            }
            State::Present | State::Latest => {
                let missing: Vec<&String> = self
                    .specs
                    .iter()
                    .filter(|s| {
                        let (n, pin) = pkg_apt::split_pin(s);
                        match (dpkg.get(n), pin) {
                            (Some(d), Some(p)) => {
                                !d.installed || !pkg_apt::version_matches(&d.version, p)
                            }
                            (Some(d), None) => !d.installed,
                            (None, _) => true,
                        }
                    })
                    .collect();
                let unknown = pkg_apt::unknown_packages(&sim.stderr_str());
                // Unknown names may become known once a stale cache is updated.
                let wait_for_cache = stale && !unknown.is_empty();
                if !sim.success() && !wait_for_cache {
                    if let Some(u) = unknown.first() {
                        return Err(ModuleError::Failed(format!(
                            "No package matching '{u}' is available (apt: Unable to locate package {u}; is the apt cache up to date? see update_cache)"
                        )));
                    }
                    if !missing.is_empty() || self.state == State::Latest {
                        return Err(ModuleError::Failed(format!(
                            "apt-get cannot install {}: {}",
                            self.specs.join(" "),
                            sim.stderr_str().trim()
                        )));
                    }
                }
                let inst_names: BTreeSet<&str> = inst.iter().map(|p| p.name.as_str()).collect();
                let targets: Vec<String> = self
                    .specs
                    .iter()
                    .filter(|s| {
                        missing.contains(s)
                            || (self.state == State::Latest
                                && inst_names.contains(pkg_apt::split_pin(s).0))
                    })
                    .cloned()
                    .collect();
                result.insert("packages".into(), json!(targets));
                if targets.is_empty() {
                    return Ok(finish(changes, result, "packages are already as wanted"));
                }
                let what = if inst.is_empty() {
                    format!(
                        "{} (versions known after the cache update)",
                        targets.join(", ")
                    )
                } else {
                    join(&inst)
                };
                changes.push(Change::new(
                    format!("install {what}"),
                    vec![self.apt_step("install", &targets)],
                ));
            }
        }
        Ok(finish(changes, result, ""))
    }
}

fn describe_dpkg(names: &[String], dpkg: &BTreeMap<String, DpkgState>) -> String {
    names
        .iter()
        .map(|n| match dpkg.get(n) {
            Some(d) if !d.version.is_empty() => format!("{n} ({})", d.version),
            _ => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn finish(changes: Vec<Change>, result: Map<String, Value>, reason: &str) -> Plan {
    Plan {
        reason: (changes.is_empty() && !reason.is_empty()).then(|| reason.to_string()),
        changes,
        result,
        ..Default::default()
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(PackageModule));
    r.add(Arc::new(DnfModule));
}
