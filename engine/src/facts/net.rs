//! Network facts (interfaces, addresses, default routes) from the raw sections.

use super::Raw;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One interface as Ansible shows it (`ansible_<name>`).
#[derive(Default)]
struct Iface {
    mac: Option<String>,
    mtu: Option<u64>,
    kind: String,
    active: bool,
    /// Primary addresses first, then secondaries.
    v4: Vec<Value>,
    primaries: usize,
    v6: Vec<Value>,
}

pub(super) fn v4_entry(addr: Ipv4Addr, prefix: u32, brd: Option<&str>) -> Value {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    let net = Ipv4Addr::from(u32::from(addr) & mask);
    let bcast = brd.map_or_else(
        || Ipv4Addr::from(u32::from(addr) | !mask).to_string(),
        str::to_string,
    );
    json!({"address": addr.to_string(), "broadcast": bcast, "netmask": Ipv4Addr::from(mask).to_string(),
           "network": net.to_string(), "prefix": prefix.to_string()})
}

/// `(iface, destination, gateway, mask, metric)` of `/proc/net/route`.
pub(super) fn routes(r: &Raw) -> Vec<(String, u32, Ipv4Addr, u32, u64)> {
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|n| u32::from_be_bytes(n.to_le_bytes()))
    };
    r.lines("route")
        .iter()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let flags = u32::from_str_radix(w.get(3)?, 16).ok()?;
            (flags & 1 == 1).then_some(())?;
            Some((
                w[0].to_string(),
                hex(w[1])?,
                Ipv4Addr::from(hex(w[2])?),
                hex(w.get(7)?)?,
                w[6].parse().ok()?,
            ))
        })
        .collect()
}

/// IPv4 addresses `(iface, address, prefix, broadcast, secondary)`.
pub(super) fn v4_addresses(r: &Raw) -> Vec<(String, Ipv4Addr, u32, Option<String>, bool)> {
    let mut out = Vec::new();
    for line in r.lines("ipaddr") {
        let main = line.split('\\').next().unwrap_or("");
        let w: Vec<&str> = main.split_whitespace().collect();
        let Some(i) = w.iter().position(|x| *x == "inet") else {
            continue;
        };
        let Some((a, p)) = w.get(i + 1).and_then(|c| c.split_once('/')) else {
            continue;
        };
        let (Ok(a), Ok(p)) = (a.parse::<Ipv4Addr>(), p.parse::<u32>()) else {
            continue;
        };
        let dev = w.get(1).map_or("", |d| d.split('@').next().unwrap_or(d));
        let brd = w
            .iter()
            .position(|x| *x == "brd")
            .and_then(|b| w.get(b + 1))
            .map(|s| s.to_string());
        out.push((dev.to_string(), a, p.min(32), brd, w.contains(&"secondary")));
    }
    if r.sections.contains_key("fib_trie") {
        // No iproute2: local addresses from the FIB, matched to interfaces by route.
        let rt = routes(r);
        let mut last: Option<Ipv4Addr> = None;
        let mut seen = std::collections::BTreeSet::new();
        for line in r.lines("fib_trie") {
            let t = line.trim_start_matches([' ', '|', '+', '-']);
            if let Ok(a) = t.trim().parse::<Ipv4Addr>() {
                last = Some(a);
            } else if t.trim() == "/32 host LOCAL" {
                let Some(a) = last.filter(|a| seen.insert(*a)) else {
                    continue;
                };
                let best = rt
                    .iter()
                    .filter(|(_, d, _, m, _)| *m != 0 && u32::from(a) & m == *d)
                    .max_by_key(|(_, _, _, m, _)| m.count_ones());
                let (dev, prefix) = match best {
                    Some((i, _, _, m, _)) => (i.clone(), m.count_ones()),
                    None if a.is_loopback() => ("lo".to_string(), 8),
                    None => (String::new(), 32),
                };
                out.push((dev, a, prefix, None, false));
            }
        }
    }
    out
}

pub(super) fn network_facts(r: &Raw, f: &mut Map<String, Value>) {
    let mut ifaces: BTreeMap<String, Iface> = BTreeMap::new();
    for l in r.lines("links") {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 6 {
            continue;
        }
        let kind = match (w[5], w[3]) {
            ("bridge" | "bonding", _) => w[5],
            (_, "1") => "ether",
            (_, "772") => "loopback",
            (_, "512") => "ppp",
            _ => "unknown",
        };
        ifaces.insert(
            w[0].to_string(),
            Iface {
                mac: Some(w[1]).filter(|m| *m != "-").map(str::to_string),
                mtu: w[2].parse().ok(),
                kind: kind.into(),
                active: w[4] != "down",
                ..Default::default()
            },
        );
    }
    let mut all4 = Vec::new();
    for (dev, a, p, brd, secondary) in v4_addresses(r) {
        if !a.is_loopback() {
            all4.push(json!(a.to_string()));
        }
        if dev.is_empty() {
            continue;
        }
        let i = ifaces.entry(dev).or_default();
        let e = v4_entry(a, p, brd.as_deref());
        if secondary {
            i.v4.push(e);
        } else {
            i.v4.insert(i.primaries, e);
            i.primaries += 1;
        }
    }
    let mut all6 = Vec::new();
    for l in r.lines("if_inet6") {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (Some(hex), Some(p), Some(sc), Some(dev)) = (w.first(), w.get(2), w.get(3), w.get(5))
        else {
            continue;
        };
        let (Ok(n), Ok(p)) = (u128::from_str_radix(hex, 16), u32::from_str_radix(p, 16)) else {
            continue;
        };
        let a = Ipv6Addr::from(n);
        let scope = match *sc {
            "00" => "global".to_string(),
            "10" => "host".into(),
            "20" => "link".into(),
            "40" => "site".into(),
            other => other.into(),
        };
        if !a.is_loopback() {
            all6.push(json!(a.to_string()));
        }
        ifaces
            .entry(dev.to_string())
            .or_default()
            .v6
            .push(json!({"address": a.to_string(), "prefix": p.to_string(), "scope": scope}));
    }
    let describe = |name: &str, i: &Iface| {
        let mut m = Map::new();
        m.insert("device".into(), json!(name));
        m.insert("active".into(), json!(i.active));
        m.insert(
            "type".into(),
            json!(if i.kind.is_empty() {
                "unknown"
            } else {
                &i.kind
            }),
        );
        if let Some(mac) = &i.mac {
            m.insert("macaddress".into(), json!(mac));
        }
        if let Some(mtu) = i.mtu {
            m.insert("mtu".into(), json!(mtu));
        }
        m
    };
    let default4 = routes(r)
        .into_iter()
        .filter(|(_, d, _, m, _)| *d == 0 && *m == 0)
        .min_by_key(|x| x.4)
        .map_or_else(Map::new, |(dev, _, gw, _, _)| {
            let mut m = Map::new();
            if let Some(i) = ifaces.get(&dev) {
                if let Some(Value::Object(v4)) = i.v4.first() {
                    m.extend(v4.clone());
                }
                let d = describe(&dev, i);
                for k in ["macaddress", "mtu", "type"] {
                    if let Some(v) = d.get(k) {
                        m.insert(k.into(), v.clone());
                    }
                }
            }
            m.insert("alias".into(), json!(dev));
            m.insert("interface".into(), json!(dev));
            m.insert("gateway".into(), json!(gw.to_string()));
            m
        });
    let default6 = r
        .lines("ipv6_route")
        .iter()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let gw = Ipv6Addr::from(u128::from_str_radix(w.get(4)?, 16).ok()?);
            let dev = *w.get(9)?;
            (dev != "lo" && !gw.is_unspecified()).then_some((dev.to_string(), gw))
        })
        .next()
        .map_or_else(Map::new, |(dev, gw)| {
            let mut m = Map::new();
            let global = ifaces
                .get(&dev)
                .and_then(|i| i.v6.iter().find(|e| e["scope"] == "global"));
            if let Some(Value::Object(e)) = global {
                m.extend(e.clone());
            }
            m.insert("interface".into(), json!(dev));
            m.insert("gateway".into(), json!(gw.to_string()));
            m
        });
    f.insert(
        "interfaces".into(),
        json!(ifaces.keys().collect::<Vec<_>>()),
    );
    f.insert("all_ipv4_addresses".into(), Value::Array(all4));
    f.insert("all_ipv6_addresses".into(), Value::Array(all6));
    f.insert("default_ipv4".into(), Value::Object(default4));
    f.insert("default_ipv6".into(), Value::Object(default6));
    for (name, i) in &ifaces {
        let mut m = describe(name, i);
        if let Some(first) = i.v4.first() {
            m.insert("ipv4".into(), first.clone());
        }
        if i.v4.len() > 1 {
            m.insert("ipv4_secondaries".into(), json!(i.v4[1..]));
        }
        if !i.v6.is_empty() {
            m.insert("ipv6".into(), json!(i.v6));
        }
        f.insert(name.replace(['-', ':', '.'], "_"), Value::Object(m));
    }
}
