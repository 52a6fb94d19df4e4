//! `uri` module: one HTTP request made from the host with `curl` (GNU
//! `wget` when curl is missing). URL, method, headers and options are
//! positional arguments of a fixed script; a body goes on stdin. GET and
//! HEAD are read-only: they run as a probe, also under `--check`, and never
//! report a change. Other methods are a step (changed, not sent in check
//! mode); their response is read back in `after_apply`. Results as
//! Ansible's: `status`, `url`, `msg`, `content` (with `return_content`),
//! `json`, `redirected`, and the response headers as lowercase keys. A
//! status outside `status_code` fails the task, keeping those fields.

use crate::sys_common::{bad, exec_at, exec_step, sh};
use drover_engine::args::{get_bool, get_int, get_list, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, ExecOutput, Kind, Module, ModuleError, Observed, Param, Plan, Probe,
    Registry, TaskContext,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const PARAMS: &[Param] = &[
    Param::new("url", Kind::Str).required(),
    Param::new("method", Kind::Str),
    Param::new("status_code", Kind::List),
    Param::new("return_content", Kind::Bool),
    Param::new("body", Kind::Any),
    Param::new("body_format", Kind::Str).choices(&["raw", "json"]),
    Param::new("headers", Kind::Map),
    Param::new("timeout", Kind::Int),
    Param::new("follow_redirects", Kind::Str),
    Param::new("validate_certs", Kind::Bool),
];

pub struct UriModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(UriModule));
}

/// `$1` url, `$2` method, `$3` timeout, `$4` body: 0 none, 1 on stdin, 2
/// in `$5`; `$6` follow redirects, `$7` skip TLS checks (1/0); the rest are
/// `Name: value` headers. Uses curl, else GNU wget. Prints
/// `DROVER-URI rc code url`, the response headers, `DROVER-BODY`, the body.
const SCRIPT: &str = r#"url=$1 method=$2 tmo=$3 bmode=$4 barg=$5 follow=$6 insecure=$7; shift 7
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
if [ "$bmode" = 1 ]; then cat > "$d/in"; elif [ "$bmode" = 2 ]; then printf '%s' "$barg" > "$d/in"; fi
n=$#
if command -v curl >/dev/null 2>&1; then
  while [ "$n" -gt 0 ]; do h=$1; shift; set -- "$@" -H "$h"; n=$((n - 1)); done
  if [ "$follow" = 1 ]; then set -- "$@" -L; fi
  if [ "$insecure" = 1 ]; then set -- "$@" -k; fi
  if [ "$bmode" != 0 ]; then set -- "$@" --data-binary "@$d/in"; fi
  case $method in
    GET) if [ "$bmode" != 0 ]; then set -- "$@" -X GET; fi ;;
    HEAD) set -- "$@" -I ;;
    *) set -- "$@" -X "$method" ;;
  esac
  w=$(curl -sS --max-time "$tmo" -o "$d/b" -D "$d/h" -w '%{http_code} %{url_effective}' "$@" -- "$url" 2>"$d/e")
  rc=$?
elif command -v wget >/dev/null 2>&1; then
  while [ "$n" -gt 0 ]; do h=$1; shift; set -- "$@" "--header=$h"; n=$((n - 1)); done
  if [ "$follow" != 1 ]; then set -- "$@" --max-redirect=0; fi
  if [ "$insecure" = 1 ]; then set -- "$@" --no-check-certificate; fi
  if [ "$bmode" != 0 ]; then set -- "$@" "--body-file=$d/in"; fi
  if [ "$method" != GET ] || [ "$bmode" != 0 ]; then set -- "$@" "--method=$method"; fi
  wget -q -S --content-on-error --tries=1 --timeout="$tmo" -O "$d/b" "$@" -- "$url" 2>"$d/w"
  rc=$?
  awk '/^  HTTP\//{ if (n++) printf "\r\n" } /^  /{ sub(/^  /, ""); printf "%s\r\n", $0 }' "$d/w" > "$d/h"
  code=$(awk '/^  HTTP\//{ c = $2 } END { printf "%03d", c }' "$d/w")
  if [ "$code" != 000 ]; then rc=0; fi
  grep -v '^  ' "$d/w" > "$d/e"
  w="$code $url"
else
  echo "uri needs curl or wget on the host (neither found)" >&2
  exit 127
fi
printf 'DROVER-URI %s %s\n' "$rc" "$w"
cat "$d/h" 2>/dev/null
printf 'DROVER-BODY\n'
cat "$d/b" 2>/dev/null
cat "$d/e" >&2
exit 0
"#;

impl Module for UriModule {
    fn name(&self) -> &'static str {
        "uri"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let url = req_str(args, "url")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("url", &url, "must start with http:// or https://"));
        }
        let method = get_str(args, "method")?
            .unwrap_or_else(|| "GET".into())
            .to_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad("method", &method, "not an HTTP method"));
        }
        let mut codes = Vec::new();
        for v in get_list(args, "status_code")? {
            let s = match &v {
                Value::String(s) => s.trim().to_string(),
                o => o.to_string(),
            };
            codes.push(
                s.parse::<i64>()
                    .map_err(|_| bad("status_code", &s, "expected an HTTP status number"))?,
            );
        }
        if codes.is_empty() {
            codes.push(200);
        }
        let timeout = get_int(args, "timeout")?.unwrap_or(30);
        if timeout <= 0 {
            return Err(bad("timeout", &timeout.to_string(), "must be > 0"));
        }
        let mut headers: Vec<String> = Vec::new();
        let format = get_str(args, "body_format")?.unwrap_or_else(|| "raw".into());
        let body = match args.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone().into_bytes()),
            Some(v) if format == "json" => Some(v.to_string().into_bytes()),
            Some(v) => Some(v.to_string().into_bytes()),
        };
        let mut has_ct = false;
        if let Some(Value::Object(h)) = args.get("headers") {
            for (k, v) in h {
                let v = match v {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                };
                if k.contains([':', '\n', '\r']) || v.contains(['\n', '\r']) {
                    return Err(bad(
                        "headers",
                        k,
                        "header names and values must be one line",
                    ));
                }
                has_ct |= k.eq_ignore_ascii_case("content-type");
                headers.push(format!("{k}: {v}"));
            }
        }
        if format == "json" && body.is_some() && !has_ct {
            headers.push("Content-Type: application/json".into());
        }
        let read_only = method == "GET" || method == "HEAD";
        let follow = get_str(args, "follow_redirects")?.unwrap_or_else(|| "safe".into());
        let follow_on = match follow.as_str() {
            "all" | "yes" | "true" => true,
            "safe" | "urllib2" => read_only,
            "none" | "no" | "false" => false,
            other => {
                return Err(bad(
                    "follow_redirects",
                    other,
                    "must be one of all|safe|none|urllib2|yes|no",
                ))
            }
        };
        let insecure = !get_bool(args, "validate_certs", true)?;
        // A probe has no stdin: a GET/HEAD body goes as an argument.
        let (bmode, barg, stdin_body) = match (&body, read_only) {
            (None, _) => ("0", String::new(), None),
            (Some(b), true) => ("2", String::from_utf8_lossy(b).into_owned(), None),
            (Some(b), false) => ("1", String::new(), Some(b.clone())),
        };
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let mut a = vec![
            url.clone(),
            method.clone(),
            timeout.to_string(),
            bmode.into(),
            barg,
            flag(follow_on),
            flag(insecure),
        ];
        a.extend(headers);
        Ok(Box::new(UriAction {
            argv: sh(SCRIPT, "drover-uri", &a),
            body: stdin_body,
            url,
            method,
            codes,
            read_only,
            return_content: get_bool(args, "return_content", false)?,
        }))
    }
}

struct UriAction {
    argv: Vec<String>,
    body: Option<Vec<u8>>,
    url: String,
    method: String,
    codes: Vec<i64>,
    read_only: bool,
    return_content: bool,
}

impl UriAction {
    /// Result fields from the script's output; `Ok(Some(msg))` when the
    /// status is not one of `status_code` (the task fails, keeping them).
    fn interpret(
        &self,
        o: &ExecOutput,
        result: &mut Map<String, Value>,
    ) -> Result<Option<String>, ModuleError> {
        if o.status != Some(0) {
            return Err(ModuleError::Failed(format!(
                "uri: {}",
                o.stderr_str().trim()
            )));
        }
        let out = &o.stdout;
        let text = String::from_utf8_lossy(out);
        let head_line = text.lines().next().unwrap_or_default();
        let mut f = head_line.splitn(4, ' ').skip(1);
        let rc: i64 = f.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
        let code: i64 = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let eff = f.next().unwrap_or(&self.url).to_string();
        let status = if rc != 0 || code == 0 { -1 } else { code };
        let marker = b"DROVER-BODY\n";
        let pos = out
            .windows(marker.len())
            .position(|w| w == marker)
            .ok_or_else(|| ModuleError::Probe("uri output has no body marker".into()))?;
        let headers = String::from_utf8_lossy(&out[head_line.len().min(pos)..pos]).into_owned();
        // HEAD (`curl -I`) writes the headers where a body would go.
        let body: &[u8] = if self.method == "HEAD" {
            &[]
        } else {
            &out[pos + marker.len()..]
        };
        // The last response's headers (after redirects).
        let last = headers
            .split("\r\n\r\n")
            .map(str::trim_start)
            .filter(|b| b.starts_with("HTTP/"))
            .last()
            .unwrap_or("");
        let mut reason = String::new();
        for (i, l) in last.lines().enumerate() {
            let l = l.trim();
            if i == 0 {
                reason = l.splitn(3, ' ').nth(2).unwrap_or("").to_string();
                continue;
            }
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase().replace('-', "_");
                if !matches!(k.as_str(), "status" | "url" | "msg" | "content" | "json") {
                    result.insert(k, json!(v.trim()));
                }
            }
        }
        result.insert("status".into(), json!(status));
        result.insert("url".into(), json!(eff));
        result.insert("redirected".into(), json!(eff != self.url));
        if self.return_content {
            let content = String::from_utf8_lossy(body).into_owned();
            if let Ok(j) = serde_json::from_str::<Value>(&content) {
                result.insert("json".into(), j);
            }
            result.insert("content".into(), json!(content));
        }
        let msg = if status == -1 {
            format!("Request failed: {}", o.stderr_str().trim())
        } else {
            format!("OK ({} bytes)", body.len())
        };
        if !self.codes.contains(&status) {
            let m = if status == -1 {
                msg
            } else {
                format!("HTTP Error {status}: {reason}")
            };
            let want: Vec<String> = self.codes.iter().map(|c| c.to_string()).collect();
            let m = format!(
                "Status code was {status} and not [{}]: {m}",
                want.join(", ")
            );
            result.insert("msg".into(), json!(m));
            return Ok(Some(m));
        }
        result.insert("msg".into(), json!(msg));
        Ok(None)
    }
}

impl Action for UriAction {
    fn probes(&self) -> Vec<Probe> {
        if self.read_only {
            vec![Probe::Exec {
                argv: self.argv.clone(),
            }]
        } else {
            vec![]
        }
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        if self.read_only {
            let o = exec_at(observed, 0, "curl")?;
            let mut plan = Plan::default();
            plan.failed = self.interpret(o, &mut plan.result)?;
            plan.reason = Some(format!("{} {} is read-only", self.method, self.url));
            return Ok(plan);
        }
        let mut plan = Plan::default();
        plan.result.insert("url".into(), json!(self.url));
        plan.changes.push(Change::new(
            format!("send {} {}", self.method, self.url),
            vec![exec_step(self.argv.clone(), self.body.clone(), true, true)],
        ));
        Ok(plan)
    }

    fn after_apply(
        &self,
        captured: &[ExecOutput],
        result: &mut Map<String, Value>,
    ) -> Result<(), ModuleError> {
        for k in ["rc", "stdout", "stderr", "stdout_lines", "stderr_lines"] {
            result.remove(k);
        }
        let o = captured
            .first()
            .ok_or_else(|| ModuleError::Probe("uri: the request produced no output".into()))?;
        match self.interpret(o, result)? {
            Some(m) => Err(ModuleError::Failed(m)),
            None => Ok(()),
        }
    }
}
