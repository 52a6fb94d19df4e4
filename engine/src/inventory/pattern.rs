//! Host patterns, evaluated as ansible-core's `InventoryManager.get_hosts`:
//! `a,b` or `a:b` union, `&x` intersection and `!x` exclusion (applied after
//! all plain parts), `all`/`*`, fnmatch globs (`web*`, `db[0-9]`), `~regex`,
//! subscripts `g[0]`, `g[-1]`, `g[0:2]`, plain host names, and the implicit
//! localhost (`localhost`, `127.0.0.1`, `::1` when not in the inventory).
//! Unlike ansible-core, which only warns, a part that names no group and no
//! host is an error.

use super::data::Data;
use super::hostrange::parse_address;
use super::{InventoryError, LOCALHOST};
use regex::Regex;
use std::sync::LazyLock;

static SPLIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").unwrap_or_else(|e| panic!("split regex: {e}"))
});
static SUBSCRIPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
        .unwrap_or_else(|e| panic!("subscript regex: {e}"))
});

/// One selected host: an inventory host or the implicit localhost.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Hit {
    Host(usize),
    Implicit(String),
}

/// `split_host_pattern`: commas split; otherwise colons do, unless the whole
/// pattern is one address (an IPv6 address, `host[1:3]`).
pub(super) fn split(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(String::from).collect()
    } else if parse_address(pattern, true).is_some() {
        vec![pattern.to_string()]
    } else {
        SPLIT
            .find_iter(pattern)
            .map(|m| m.as_str().to_string())
            .collect()
    };
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Python's `fnmatch.translate`, as a Rust regex matching the whole name.
pub(super) fn fnmatch_regex(pat: &str) -> String {
    let c: Vec<char> = pat.chars().collect();
    let mut out = String::from("(?s)^");
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        i += 1;
        match ch {
            '*' => {
                while c.get(i) == Some(&'*') {
                    i += 1;
                }
                out.push_str(".*");
            }
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if c.get(j) == Some(&'!') {
                    j += 1;
                }
                if c.get(j) == Some(&']') {
                    j += 1;
                }
                while j < c.len() && c[j] != ']' {
                    j += 1;
                }
                if j >= c.len() {
                    out.push_str(r"\[");
                    continue;
                }
                let mut body: &[char] = &c[i..j];
                i = j + 1;
                let negate = body.first() == Some(&'!');
                if negate {
                    body = &body[1..];
                }
                let mut class = String::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        if body[k] <= body[k + 2] {
                            class.push_str(&format!(
                                "\\x{{{:x}}}-\\x{{{:x}}}",
                                body[k] as u32,
                                body[k + 2] as u32
                            ));
                        }
                        k += 3;
                    } else {
                        class.push_str(&format!("\\x{{{:x}}}", body[k] as u32));
                        k += 1;
                    }
                }
                match (class.is_empty(), negate) {
                    (true, false) => out.push_str("[^\\s\\S]"),
                    (true, true) => out.push('.'),
                    (false, n) => out.push_str(&format!("[{}{class}]", if n { "^" } else { "" })),
                }
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out.push('$');
    out
}

/// Evaluate a full pattern into hosts, in ansible-core's order, deduplicated.
pub(super) fn evaluate(data: &Data, pattern: &str) -> Result<Vec<Hit>, InventoryError> {
    let parts = split(pattern);
    let mut regular: Vec<&str> = Vec::new();
    let mut and: Vec<&str> = Vec::new();
    let mut not: Vec<&str> = Vec::new();
    for p in &parts {
        match p.chars().next() {
            Some('!') => not.push(p),
            Some('&') => and.push(p),
            _ => regular.push(p),
        }
    }
    if regular.is_empty() {
        regular.push("all");
    }
    let mut hosts: Vec<Hit> = Vec::new();
    for p in regular.into_iter().chain(and).chain(not) {
        if let Some(h) = data.host(p) {
            hosts.push(Hit::Host(h));
            continue;
        }
        let that = match_one(data, p)?;
        match p.chars().next() {
            Some('!') => hosts.retain(|h| !that.contains(h)),
            Some('&') => hosts.retain(|h| that.contains(h)),
            _ => {
                let existing = hosts.clone();
                hosts.extend(that.into_iter().filter(|h| !existing.contains(h)));
            }
        }
    }
    let mut out: Vec<Hit> = Vec::new();
    for h in hosts {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

/// One pattern part (its `&`/`!` ignored), with an optional subscript.
fn match_one(data: &Data, part: &str) -> Result<Vec<Hit>, InventoryError> {
    let pattern = part.strip_prefix(['&', '!']).unwrap_or(part);
    if pattern.is_empty() {
        return Err(InventoryError::NoMatch {
            pattern: part.to_string(),
        });
    }
    let (expr, sub) = match SUBSCRIPT
        .captures(pattern)
        .filter(|_| !pattern.starts_with('~'))
    {
        Some(m) => {
            let sub = match m.get(2) {
                Some(idx) => (parse_i64(idx.as_str(), pattern)?, None),
                None => {
                    let end = match &m[5] {
                        "" => -1,
                        e => parse_i64(e, pattern)?,
                    };
                    (parse_i64(&m[3], pattern)?, Some(end))
                }
            };
            (m[1].to_string(), Some(sub))
        }
        None => (pattern.to_string(), None),
    };
    let hits = enumerate(data, &expr)?;
    let Some((start, end)) = sub else {
        return Ok(hits);
    };
    if hits.is_empty() {
        return Ok(hits);
    }
    let len = hits.len() as i64;
    match end.filter(|e| *e != 0) {
        Some(end) => {
            let end = if end == -1 { len - 1 } else { end };
            let (s, e) = (start.clamp(0, len), (end + 1).clamp(0, len));
            Ok(if s < e {
                hits[s as usize..e as usize].to_vec()
            } else {
                Vec::new()
            })
        }
        None => {
            let i = if start < 0 { start + len } else { start };
            if (0..len).contains(&i) {
                Ok(vec![hits[i as usize].clone()])
            } else {
                Err(InventoryError::BadSubscript {
                    pattern: pattern.to_string(),
                })
            }
        }
    }
}

fn parse_i64(s: &str, pattern: &str) -> Result<i64, InventoryError> {
    s.parse().map_err(|_| InventoryError::BadSubscript {
        pattern: pattern.to_string(),
    })
}

/// `_enumerate_matches`: hosts of matching groups, then (for globs, regexes
/// or when no group matched) matching hosts, then the implicit localhost.
fn enumerate(data: &Data, pattern: &str) -> Result<Vec<Hit>, InventoryError> {
    let re = match pattern.strip_prefix('~') {
        Some(r) => format!("^(?:{r})"),
        None => fnmatch_regex(pattern),
    };
    let re = Regex::new(&re).map_err(|e| InventoryError::BadPattern {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })?;
    let mut results = Vec::new();
    let groups: Vec<usize> = (0..data.groups.len())
        .filter(|&g| re.is_match(&data.groups[g].name))
        .collect();
    for &g in &groups {
        results.extend(data.group_hosts(g).into_iter().map(Hit::Host));
    }
    if groups.is_empty() || pattern.starts_with('~') || pattern.contains(['.', '?', '*', '[']) {
        results.extend(
            (0..data.hosts.len())
                .filter(|&h| re.is_match(&data.hosts[h].name))
                .map(Hit::Host),
        );
    }
    if results.is_empty() && LOCALHOST.contains(&pattern) {
        results.push(match data.localhost_alias() {
            Some(h) => Hit::Host(h),
            None => Hit::Implicit(pattern.to_string()),
        });
    }
    if results.is_empty() && groups.is_empty() && pattern != "all" {
        return Err(InventoryError::NoMatch {
            pattern: pattern.to_string(),
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        assert_eq!(split("web:&prod:!web03"), ["web", "&prod", "!web03"]);
        assert_eq!(split("a, b[1], c[2:3] , d"), ["a", "b[1]", "c[2:3]", "d"]);
        assert_eq!(split("web[1:3]"), ["web[1:3]"]);
        assert_eq!(split("fe80::1"), ["fe80::1"]);
        assert_eq!(split("db[0:1]:web"), ["db[0:1]", "web"]);
    }

    #[test]
    fn fnmatch() {
        let m = |p: &str, s: &str| Regex::new(&fnmatch_regex(p)).unwrap().is_match(s);
        assert!(m("web*", "web01") && !m("web*", "aweb"));
        assert!(m("db[0-9]", "db7") && !m("db[0-9]", "dbx") && !m("db[0-9]", "db10"));
        assert!(m("db[!0-9]", "dbx") && !m("db[!0-9]", "db1"));
        assert!(m("h?.example.com", "h1.example.com") && !m("h?.example.com", "h1xexample.com"));
        assert!(m("a[", "a[") && m("x[]]", "x]") && m("[&&]", "&"));
    }
}
