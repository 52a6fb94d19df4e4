//! Host names in inventories: ansible-core's `parse_address` (split an
//! optional `:port` off a host name, IPv4 or bracketed IPv6 address, ranges
//! allowed) and `expand_hostname_range` (`web[01:04]`, `web[1:10:2]`,
//! `db[a:c]`, nested ranges), with the same quirks.

use regex::Regex;
use std::sync::LazyLock;

const NUM_RANGE: &str = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]";
const HEX_RANGE: &str = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]";
const ALNUM_RANGE: &str = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]";

fn re(s: &str) -> Regex {
    // The patterns are constants; a failure here is a programming error that
    // every test run would show at once.
    Regex::new(s).unwrap_or_else(|e| panic!("bad built-in regex {s}: {e}"))
}

static BRACKETED: LazyLock<Regex> = LazyLock::new(|| re(r"^\[(.+)\]:([0-9]+)$"));
static HOSTPORT: LazyLock<Regex> = LazyLock::new(|| re(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    let c = format!(r"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{NUM_RANGE})");
    re(&format!(r"(?i)^(?:{c}\.){{3}}{c}$"))
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    let c = format!(r"(?:[0-9a-f]{{1,4}}|{HEX_RANGE})");
    let v4 = format!(r"(?:{c}\.){{3}}{c}");
    let alts = [
        format!(r"(?:{c}:){{7}}{c}"),
        format!(r"(?:{c}:){{1,6}}:"),
        format!(r"(?:{c}:)(?::{c}){{1,6}}"),
        format!(r"(?:{c}:){{2}}(?::{c}){{1,5}}"),
        format!(r"(?:{c}:){{3}}(?::{c}){{1,4}}"),
        format!(r"(?:{c}:){{4}}(?::{c}){{1,3}}"),
        format!(r"(?:{c}:){{5}}(?::{c}){{1,2}}"),
        format!(r"(?:{c}:){{6}}(?::{c})"),
        format!(r":(?::{c}){{1,6}}"),
        format!(r"{c}?::"),
        format!(r"(?:0:){{6}}{v4}"),
        format!(r"::(?:ffff:)?{v4}"),
        format!(r"(?:0:){{5}}ffff:{v4}"),
    ];
    re(&format!(r"(?i)^(?:{})$", alts.join("|")))
});
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:\w|{ALNUM_RANGE})(?:[\w-]|{ALNUM_RANGE})*$"
    ))
});

fn is_hostname(s: &str) -> bool {
    s.split('.')
        .all(|label| LABEL.is_match(label) && !label.ends_with(['_', '-']))
}

/// True for an IPv4 or IPv6 address (used for `inventory_hostname_short`).
pub(super) fn is_ip(s: &str) -> bool {
    IPV4.is_match(s) || IPV6.is_match(s)
}

/// `parse_address(address, allow_ranges)`: `(host, port)`, or `None` where
/// ansible-core raises (not a host name, or a range when none is allowed).
pub(super) fn parse_address(address: &str, allow_ranges: bool) -> Option<(String, Option<u64>)> {
    let mut addr = address.to_string();
    let mut port = None;
    // ansible-core tries both forms in turn (it does not stop at the first).
    for pat in [&*BRACKETED, &*HOSTPORT] {
        if let Some(m) = pat.captures(&addr) {
            let host = m[1].to_string();
            port = Some(m[2].parse::<u64>().ok()?);
            addr = host;
        }
    }
    if !(IPV4.is_match(&addr) || IPV6.is_match(&addr) || is_hostname(&addr)) {
        return None;
    }
    if !allow_ranges && addr.contains('[') {
        return None;
    }
    Some((addr, port))
}

/// Python's `int()` of a string: surrounding blanks, a sign, `_` between digits.
fn py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let v: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Python's `str.zfill(width)`.
fn zfill(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        return s.to_string();
    }
    let (sign, rest) = match s.strip_prefix(['-', '+']) {
        Some(rest) => (&s[..1], rest),
        None => ("", s),
    };
    format!("{sign}{}{rest}", "0".repeat(width - n))
}

/// Expand every `[x:y(:step)]` range of a host pattern (when it has a `[`).
pub(super) fn expand(pattern: &str) -> Result<Vec<String>, String> {
    if !pattern.contains('[') {
        return Ok(vec![pattern.to_string()]);
    }
    let replaced = pattern.replacen('[', "|", 1).replacen(']', "|", 1);
    let parts: Vec<&str> = replaced.split('|').collect();
    let [head, nrange, tail] = parts[..] else {
        return Err(format!("invalid host range in {pattern:?}"));
    };
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(format!(
            "host range must be begin:end or begin:end:step, got {pattern:?}"
        ));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(format!(
            "host range must specify end value, got {pattern:?}"
        ));
    }
    let step = match bounds.get(2) {
        Some(s) => {
            py_int(s).ok_or_else(|| format!("invalid step {s:?} in host range {pattern:?}"))?
        }
        None => 1,
    };
    let width = if beg.starts_with('0') && beg.len() > 1 {
        if beg.len() != end.len() {
            return Err(format!(
                "host range must specify equal-length begin and end formats, got {pattern:?}"
            ));
        }
        beg.len()
    } else {
        0
    };
    if step == 0 {
        return Err(format!("host range step must not be zero, got {pattern:?}"));
    }
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let seq: Vec<String> = match (LETTERS.find(beg), LETTERS.find(end)) {
        (Some(b), Some(e)) => {
            if b > e {
                return Err(format!(
                    "host range must have begin <= end, got {pattern:?}"
                ));
            }
            let step = usize::try_from(step).unwrap_or(0);
            if step == 0 {
                Vec::new()
            } else {
                LETTERS[b..=e]
                    .chars()
                    .step_by(step)
                    .map(String::from)
                    .collect()
            }
        }
        _ => {
            let (b, e) = match (py_int(beg), py_int(end)) {
                (Some(b), Some(e)) => (b, e),
                _ => return Err(format!("invalid host range {nrange:?} in {pattern:?}")),
            };
            let mut out = Vec::new();
            let mut i = b;
            while (step > 0 && i <= e) || (step < 0 && i > e + 1) {
                out.push(i.to_string());
                i += step;
            }
            out
        }
    };
    let mut hosts = Vec::new();
    for item in seq {
        let name = format!("{head}{}{tail}", zfill(&item, width));
        hosts.extend(expand(&name)?);
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            expand("web[01:04]").unwrap(),
            ["web01", "web02", "web03", "web04"]
        );
        assert_eq!(
            expand("web[1:10:2]").unwrap(),
            ["web1", "web3", "web5", "web7", "web9"]
        );
        assert_eq!(expand("db[a:c].x").unwrap(), ["dba.x", "dbb.x", "dbc.x"]);
        assert_eq!(
            expand("r[1:2]c[a:b]").unwrap(),
            ["r1ca", "r1cb", "r2ca", "r2cb"]
        );
        assert_eq!(expand("h[:2]").unwrap(), ["h0", "h1", "h2"]);
        assert_eq!(expand("plain").unwrap(), ["plain"]);
        assert!(expand("web[01:4]").unwrap_err().contains("equal-length"));
        assert!(expand("web[1:]").unwrap_err().contains("end value"));
        assert!(expand("web[c:a]").unwrap_err().contains("begin <= end"));
        assert!(expand("web[1:3:0]").is_err());
        assert!(expand("web[x]").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("db1:2222", true),
            Some(("db1".into(), Some(2222)))
        );
        assert_eq!(
            parse_address("web[01:03]:22", true),
            Some(("web[01:03]".into(), Some(22)))
        );
        assert_eq!(
            parse_address("10.0.0.1:22", false),
            Some(("10.0.0.1".into(), Some(22)))
        );
        assert_eq!(
            parse_address("[::1]:22", false),
            Some(("::1".into(), Some(22)))
        );
        assert_eq!(
            parse_address("fe80::1", false),
            Some(("fe80::1".into(), None))
        );
        assert_eq!(parse_address("web:db", true), None);
        assert_eq!(parse_address("bad_:22", true), None);
        assert_eq!(parse_address("web[1:2]", false), None);
        assert!(is_ip("10.1.2.3") && is_ip("::1") && !is_ip("web1"));
    }
}
