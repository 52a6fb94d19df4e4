//! `get_url` module: download a URL to a file on the host with the host's
//! `curl` (URL and options as positional arguments of a fixed script). The
//! download goes to a temp file beside `dest`, is checked against
//! `checksum` (`ALG:HEX`, verified with the host's `ALGsum`), gets its
//! `mode`/`owner`/`group`, and is renamed over `dest`. With a `checksum`, an
//! existing `dest` whose sum matches is left alone; without one an existing
//! `dest` is kept unless `force: yes` (which always downloads, so always
//! reports a change). `dest` ending in `/` (or an existing folder) receives
//! the URL's file name.

use crate::fs_attrs::{self, Attrs};
use crate::sys_common::{bad, exec_at, exec_step, sh, stat_at, step_output};
use drover_engine::args::{get_bool, get_int, get_str, req_str, Mode};
use drover_engine::module::{
    Action, Args, Change, ExecOutput, FileKind, Kind, Module, ModuleError, Observed, Param, Plan,
    Probe, Registry, TaskContext,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const ALGS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

const PARAMS: &[Param] = &[
    Param::new("url", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("checksum", Kind::Str),
    Param::new("force", Kind::Bool),
    Param::new("timeout", Kind::Int),
    Param::new("headers", Kind::Map),
    Param::new("validate_certs", Kind::Bool),
    fs_attrs::PARAMS[0],
    fs_attrs::PARAMS[1],
    fs_attrs::PARAMS[2],
];

/// `$1` url `$2` dest `$3` timeout `$4` alg `$5` sum `$6` mode `$7` owner
/// spec; rest: curl options. Prints `HTTPCODE SIZE SHA1`.
const SCRIPT: &str = r#"url=$1 dest=$2 tmo=$3 alg=$4 want=$5 mode=$6 own=$7; shift 7
command -v curl >/dev/null 2>&1 || { echo "get_url needs curl on the host (curl not found)" >&2; exit 127; }
tmp=$(mktemp "$(dirname -- "$dest")/.drover-get_url.XXXXXXXX") || exit 1
trap 'rm -f -- "$tmp"' EXIT
code=$(curl -sS -L --max-time "$tmo" -o "$tmp" -w '%{http_code}' "$@" -- "$url") || { echo "Request failed: curl exit $?" >&2; exit 1; }
case $code in 2*) ;; *) echo "Request failed: HTTP Error $code" >&2; exit 1 ;; esac
if [ -n "$alg" ]; then
  got=$("${alg}sum" -- "$tmp" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "The checksum for $dest did not match $want; it was $got." >&2; exit 1; }
fi
chmod "${mode:-0644}" "$tmp" || exit 1
if [ -n "$own" ]; then chown "$own" "$tmp" || exit 1; fi
size=$(wc -c < "$tmp")
sum=$(sha1sum -- "$tmp" | cut -d' ' -f1)
mv -f -- "$tmp" "$dest" || exit 1
trap - EXIT
printf '%s %s %s\n' "$code" "$size" "$sum"
"#;

pub struct GetUrlModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(GetUrlModule));
}

impl Module for GetUrlModule {
    fn name(&self) -> &'static str {
        "get_url"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let url = req_str(args, "url")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("url", &url, "must start with http:// or https://"));
        }
        let dest = req_str(args, "dest")?;
        if !dest.starts_with('/') {
            return Err(bad("dest", &dest, "must be an absolute path on the host"));
        }
        let checksum = match get_str(args, "checksum")?.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => {
                let (alg, hex) = c
                    .split_once(':')
                    .ok_or_else(|| bad("checksum", &c, "expected ALGORITHM:HEX, e.g. sha256:…"))?;
                let alg = alg.to_lowercase();
                let hex = hex.trim().to_lowercase();
                if !ALGS.contains(&alg.as_str()) {
                    return Err(bad(
                        "checksum",
                        &c,
                        &format!("algorithm must be one of {}", ALGS.join("|")),
                    ));
                }
                if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("checksum", &c, "the digest must be hexadecimal"));
                }
                Some((alg, hex))
            }
        };
        let timeout = get_int(args, "timeout")?.unwrap_or(10);
        if timeout <= 0 {
            return Err(bad("timeout", &timeout.to_string(), "must be > 0"));
        }
        let mut opts = Vec::new();
        if let Some(Value::Object(h)) = args.get("headers") {
            for (k, v) in h {
                let v = v
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string());
                if k.contains([':', '\n', '\r']) || v.contains(['\n', '\r']) {
                    return Err(bad(
                        "headers",
                        k,
                        "header names and values must be one line",
                    ));
                }
                opts.extend(["-H".to_string(), format!("{k}: {v}")]);
            }
        }
        if !get_bool(args, "validate_certs", true)? {
            opts.push("-k".into());
        }
        let name = url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && !n.contains(':'))
            .unwrap_or("index.html")
            .to_string();
        Ok(Box::new(GetUrlAction {
            inner: format!("{}/{name}", dest.trim_end_matches('/')),
            dir_dest: dest.ends_with('/'),
            dest,
            url,
            checksum,
            force: get_bool(args, "force", false)?,
            timeout,
            opts,
            attrs: Attrs::from_args(args)?,
        }))
    }
}

struct GetUrlAction {
    url: String,
    dest: String,
    /// `dest/<file name of the URL>`, used when `dest` is a folder.
    inner: String,
    dir_dest: bool,
    checksum: Option<(String, String)>,
    force: bool,
    timeout: i64,
    opts: Vec<String>,
    attrs: Attrs,
}

impl GetUrlAction {
    fn sum_probe(&self, path: &str) -> Probe {
        let alg = self.checksum.as_ref().map_or("sha1", |c| c.0.as_str());
        Probe::Exec {
            argv: vec![format!("{alg}sum"), "--".into(), path.into()],
        }
    }

    fn download(&self, target: &str) -> Vec<String> {
        let (alg, sum) = self.checksum.clone().unwrap_or_default();
        let mode = match &self.attrs.mode {
            Some(Mode::Octal(m)) => format!("{m:04o}"),
            Some(Mode::Symbolic(s)) => s.clone(),
            None => String::new(),
        };
        let own = match (&self.attrs.owner, &self.attrs.group) {
            (Some(o), Some(g)) => format!("{o}:{g}"),
            (Some(o), None) => o.clone(),
            (None, Some(g)) => format!(":{g}"),
            (None, None) => String::new(),
        };
        let mut a = vec![
            self.url.clone(),
            target.to_string(),
            self.timeout.to_string(),
            alg,
            sum,
            mode,
            own,
        ];
        a.extend(self.opts.iter().cloned());
        sh(SCRIPT, "drover-get_url", &a)
    }
}

impl Action for GetUrlAction {
    fn probes(&self) -> Vec<Probe> {
        vec![
            Probe::Stat {
                path: self.dest.clone(),
                follow: true,
            },
            Probe::Stat {
                path: self.inner.clone(),
                follow: true,
            },
            self.sum_probe(&self.dest),
            self.sum_probe(&self.inner),
        ]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let dest_st = stat_at(observed, 0)?;
        let is_dir = self.dir_dest || dest_st.is_some_and(|s| s.kind == FileKind::Directory);
        let (target, st, sum) = if is_dir {
            (
                &self.inner,
                stat_at(observed, 1)?,
                exec_at(observed, 3, "checksum")?,
            )
        } else {
            (&self.dest, dest_st, exec_at(observed, 2, "checksum")?)
        };
        if st.is_some_and(|s| s.kind != FileKind::File) {
            return Err(ModuleError::Failed(format!(
                "{target} exists and is not a regular file"
            )));
        }
        let mut plan = Plan::default();
        plan.result.insert("dest".into(), json!(target));
        plan.result.insert("url".into(), json!(self.url));
        let have = sum
            .stdout_str()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_lowercase();
        let matches = match &self.checksum {
            Some((_, want)) => st.is_some() && sum.success() && have == *want,
            None => st.is_some() && !self.force,
        };
        if matches {
            if self.checksum.is_none() && sum.success() {
                plan.result.insert("checksum_dest".into(), json!(have));
            }
            plan.changes = st
                .map(|s| self.attrs.diff(s, false, true).changes(target, false))
                .unwrap_or_default();
            plan.result.insert(
                "msg".into(),
                json!(if self.checksum.is_some() {
                    "file already exists with the same checksum"
                } else {
                    "file already exists"
                }),
            );
            if plan.changes.is_empty() {
                plan.reason = Some(format!("{target} already present"));
            }
            return Ok(plan);
        }
        let verb = if st.is_some() { "replace" } else { "download" };
        plan.changes.push(Change::new(
            format!("{verb} {target} from {}", self.url),
            vec![exec_step(self.download(target), None, true, true)],
        ));
        Ok(plan)
    }

    fn after_apply(
        &self,
        captured: &[ExecOutput],
        result: &mut Map<String, Value>,
    ) -> Result<(), ModuleError> {
        if captured.is_empty() {
            // Only attribute changes ran.
            return Ok(());
        }
        let o = step_output(captured, result, &format!("downloading {}", self.url))?;
        let out = o.stdout_str();
        let f: Vec<&str> = out.split_whitespace().collect();
        if let [code, size, sum] = f.as_slice() {
            result.insert(
                "status_code".into(),
                json!(code.parse::<i64>().unwrap_or(0)),
            );
            result.insert("size".into(), json!(size.parse::<u64>().unwrap_or(0)));
            result.insert("checksum_dest".into(), json!(sum));
            result.insert("checksum_src".into(), json!(sum));
            result.insert("msg".into(), json!(format!("OK ({size} bytes)")));
        }
        Ok(())
    }
}
