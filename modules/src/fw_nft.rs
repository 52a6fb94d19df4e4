//! The nftables side of the `firewall` module: drover's rules as a small
//! model ([`Rule`]), its canonical text (which is also valid `nft` input),
//! and the parser of `nft -j list table inet drover` back into that model.
//! nft normalises what it stores (sets sorted, one-element sets collapsed,
//! host addresses without `/32`), so rules are compared through the model,
//! never as raw JSON. A rule drover cannot parse renders as `<foreign: …>`
//! and never equals a wanted rule, so its chain is rewritten.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// drover's own table; nothing outside it is ever read or written.
pub const FAMILY: &str = "inet";
pub const TABLE: &str = "drover";

/// An address or network, normalised to its network address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Net {
    V4(Ipv4Addr, u8),
    V6(Ipv6Addr, u8),
}

impl Net {
    /// Parse `10.0.0.5`, `10.0.0.0/24`, `fd00::1`, `fd00::/64`.
    pub fn parse(s: &str) -> Result<Net, String> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| "bad prefix length")?)),
            None => (s, None),
        };
        match a
            .parse::<IpAddr>()
            .map_err(|_| "not an IP address or CIDR")?
        {
            IpAddr::V4(v) => {
                let l = len.unwrap_or(32);
                if l > 32 {
                    return Err("prefix length over 32".into());
                }
                let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
                Ok(Net::V4(Ipv4Addr::from(u32::from(v) & mask), l))
            }
            IpAddr::V6(v) => {
                let l = len.unwrap_or(128);
                if l > 128 {
                    return Err("prefix length over 128".into());
                }
                let mask = if l == 0 { 0 } else { u128::MAX << (128 - l) };
                Ok(Net::V6(Ipv6Addr::from(u128::from(v) & mask), l))
            }
        }
    }
    pub fn is_v4(&self) -> bool {
        matches!(self, Net::V4(..))
    }
    fn text(&self) -> String {
        match self {
            Net::V4(a, 32) => a.to_string(),
            Net::V6(a, 128) => a.to_string(),
            Net::V4(a, l) => format!("{a}/{l}"),
            Net::V6(a, l) => format!("{a}/{l}"),
        }
    }
}

/// What a matching packet gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    /// `reject` (ICMP) or `reject with tcp reset`.
    Reject {
        tcp_reset: bool,
    },
}

/// One rule of a drover chain, in the only shapes drover writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub iif: Option<String>,
    /// `ip saddr` (v4) or `ip6 saddr` (v6) set.
    pub saddr: Option<BTreeSet<Net>>,
    pub proto: String,
    pub dports: BTreeSet<u16>,
    pub verdict: Verdict,
}

fn set<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("{{ {} }}", v.join(", "))
}

impl Rule {
    /// Canonical text, valid after `add rule inet drover CHAIN `.
    pub fn text(&self) -> String {
        let mut s = String::new();
        if let Some(i) = &self.iif {
            s.push_str(&format!("iifname \"{i}\" "));
        }
        if let Some(src) = &self.saddr {
            let fam = if src.iter().all(Net::is_v4) {
                "ip"
            } else {
                "ip6"
            };
            s.push_str(&format!("{fam} saddr {} ", set(src.iter().map(Net::text))));
        }
        s.push_str(&format!("{} dport {} ", self.proto, set(&self.dports)));
        s.push_str(match self.verdict {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Reject { tcp_reset: true } => "reject with tcp reset",
            Verdict::Reject { tcp_reset: false } => "reject",
        });
        s
    }
}

/// A chain found in drover's table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chain {
    /// True when it is a `filter` base chain on `input`, policy accept.
    pub input_filter: bool,
    /// Canonical text of each rule, in order.
    pub rules: Vec<String>,
}

/// drover's table as observed: None when it does not exist.
pub type Table = Option<BTreeMap<String, Chain>>;

/// Parse the output of `nft -j list table inet drover`.
pub fn parse_table(json: &str) -> Result<BTreeMap<String, Chain>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("nft JSON: {e}"))?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("nft JSON has no `nftables` list")?;
    let mut chains = BTreeMap::new();
    for it in items {
        if let Some(c) = it.get("chain") {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            let s = |k: &str| c.get(k).and_then(Value::as_str);
            let input_filter = s("type") == Some("filter")
                && s("hook") == Some("input")
                && s("policy") == Some("accept")
                && c.get("prio").and_then(Value::as_i64) == Some(0);
            chains.insert(
                name.to_string(),
                Chain {
                    input_filter,
                    rules: vec![],
                },
            );
        }
    }
    for it in items {
        if let Some(r) = it.get("rule") {
            let chain = r.get("chain").and_then(Value::as_str).unwrap_or_default();
            let text = match r
                .get("expr")
                .and_then(Value::as_array)
                .map(|e| parse_rule(e))
            {
                Some(Some(rule)) => rule.text(),
                _ => format!("<foreign: {}>", r.get("expr").unwrap_or(&Value::Null)),
            };
            chains
                .entry(chain.to_string())
                .or_default()
                .rules
                .push(text);
        }
    }
    Ok(chains)
}

fn nets(v: &Value) -> Option<BTreeSet<Net>> {
    let one = |e: &Value| -> Option<Net> {
        match e {
            Value::String(s) => Net::parse(s).ok(),
            Value::Object(_) => {
                let p = e.get("prefix")?;
                let a = p.get("addr")?.as_str()?;
                let l = p.get("len")?.as_u64()?;
                Net::parse(&format!("{a}/{l}")).ok()
            }
            _ => None,
        }
    };
    match v.get("set").and_then(Value::as_array) {
        Some(items) => items.iter().map(one).collect(),
        None => one(v).map(|n| BTreeSet::from([n])),
    }
}

fn ports(v: &Value) -> Option<BTreeSet<u16>> {
    let one = |e: &Value| e.as_u64().and_then(|p| u16::try_from(p).ok());
    match v.get("set").and_then(Value::as_array) {
        Some(items) => items.iter().map(one).collect(),
        None => one(v).map(|p| BTreeSet::from([p])),
    }
}

/// One rule's `expr` list; None when it is not a shape drover writes.
fn parse_rule(expr: &[Value]) -> Option<Rule> {
    let mut iif = None;
    let mut saddr = None;
    let mut proto = None;
    let mut dports = None;
    let mut verdict = None;
    for e in expr {
        if let Some(m) = e.get("match") {
            if m.get("op")?.as_str()? != "==" {
                return None;
            }
            let left = m.get("left")?;
            let right = m.get("right")?;
            if left.pointer("/meta/key").and_then(Value::as_str) == Some("iifname") {
                iif = Some(right.as_str()?.to_string());
                continue;
            }
            let p = left.get("payload")?;
            let (pr, field) = (p.get("protocol")?.as_str()?, p.get("field")?.as_str()?);
            match (pr, field) {
                ("ip" | "ip6", "saddr") => {
                    let n = nets(right)?;
                    if n.iter().any(|x| x.is_v4() != (pr == "ip")) {
                        return None;
                    }
                    saddr = Some(n);
                }
                ("tcp" | "udp", "dport") => {
                    proto = Some(pr.to_string());
                    dports = Some(ports(right)?);
                }
                _ => return None,
            }
        } else if e.get("accept").is_some() {
            verdict = Some(Verdict::Accept);
        } else if e.get("drop").is_some() {
            verdict = Some(Verdict::Drop);
        } else if let Some(r) = e.get("reject") {
            let tcp_reset = r.get("type").and_then(Value::as_str) == Some("tcp reset");
            verdict = Some(Verdict::Reject { tcp_reset });
        } else {
            return None;
        }
    }
    Some(Rule {
        iif,
        saddr,
        proto: proto?,
        dports: dports?,
        verdict: verdict?,
    })
}

/// The `nft -f -` script that makes chain `name` hold exactly `rules`
/// (creating the table and chain if needed). It is idempotent, so the same
/// text is what `persist` writes for boot.
pub fn chain_script(name: &str, rules: &[String], recreate: bool) -> String {
    let t = format!("{FAMILY} {TABLE}");
    let mut s = format!("add table {t}\n");
    if recreate {
        s.push_str(&format!(
            "flush chain {t} {name}\ndelete chain {t} {name}\n"
        ));
    }
    s.push_str(&format!(
        "add chain {t} {name} {{ type filter hook input priority filter; policy accept; }}\nflush chain {t} {name}\n"
    ));
    for r in rules {
        s.push_str(&format!("add rule {t} {name} {r}\n"));
    }
    s
}

/// Human view of one chain, for `--diff`.
pub fn chain_text(name: &str, c: Option<&Chain>) -> String {
    let Some(c) = c else {
        return String::new();
    };
    let mut s = format!("table {FAMILY} {TABLE} chain {name}\n");
    for r in &c.rules {
        s.push_str(&format!("  {r}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_are_normalised_to_their_network() {
        assert_eq!(Net::parse("10.0.0.5/24").unwrap().text(), "10.0.0.0/24");
        assert_eq!(Net::parse("10.0.0.5/32").unwrap().text(), "10.0.0.5");
        assert_eq!(Net::parse("fd00::5/64").unwrap().text(), "fd00::/64");
        assert_eq!(Net::parse("0.0.0.0/0").unwrap().text(), "0.0.0.0/0");
        assert!(Net::parse("10.0.0.1/33").is_err());
        assert!(Net::parse("dtn2").is_err());
    }

    #[test]
    fn chain_script_recreates_a_chain_of_the_wrong_kind() {
        let s = chain_script("mc", &["tcp dport { 1 } accept".into()], true);
        assert_eq!(
            s,
            "add table inet drover\nflush chain inet drover mc\ndelete chain inet drover mc\nadd chain inet drover mc { type filter hook input priority filter; policy accept; }\nflush chain inet drover mc\nadd rule inet drover mc tcp dport { 1 } accept\n"
        );
    }
}
