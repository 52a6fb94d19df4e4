//! Host facts. [`facts_script`] is one POSIX shell script (no Python on the
//! host) that prints everything in marked sections in one round trip: a
//! `key=value` section (uname, hostname, user, package and service manager,
//! date) and raw copies of `/etc/os-release`, `/proc/meminfo`, `/proc/cpuinfo`,
//! `/sys/class/net`, `ip -o -4 addr` (or `/proc/net/fib_trie` without
//! iproute2), `/proc/net/route`, `/proc/net/if_inet6` and friends.
//! [`parse_facts`] turns that into Ansible-named facts: each as
//! `ansible_<name>` at the top level and as `<name>` under `ansible_facts`.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why the output of [`facts_script`] could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("fact gathering output ends early (no end marker) after {bytes} bytes: {head:?}")]
    Truncated { bytes: usize, head: String },
    #[error("fact gathering printed no `{0}`")]
    Missing(&'static str),
}

const MARK: &str = "@@DROVER-FACTS ";

/// The gathering script: POSIX sh plus coreutils/busybox, read-only.
pub fn facts_script() -> String {
    r#"LC_ALL=C; export LC_ALL
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; export PATH
s() { printf '@@DROVER-FACTS %s\n' "$1"; }
v() { printf '%s=%s\n' "$1" "$2"; }
has() { command -v "$1" >/dev/null 2>&1; }
s kv
v system "$(uname -s)"; v kernel "$(uname -r)"; v kernel_version "$(uname -v)"
v machine "$(uname -m)"; v nodename "$(uname -n)"
v hostname "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname 2>/dev/null)"
if has timeout; then v fqdn "$(timeout 2 hostname -f 2>/dev/null)"; else v fqdn "$(hostname -f 2>/dev/null)"; fi
v nproc "$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"
v user_id "$(id -un 2>/dev/null)"; v user_uid "$(id -u)"; v user_gid "$(id -g)"
v passwd "$(getent passwd "$(id -u)" 2>/dev/null || grep "^$(id -un 2>/dev/null):" /etc/passwd 2>/dev/null)"
for c in apt-get dnf yum apk zypper pacman; do if has "$c"; then v pkg "$c"; break; fi; done
if [ -d /run/systemd/system ]; then v svc systemd; elif [ -e /sbin/openrc ]; then v svc openrc; else v svc sysvinit; fi
v date "$(date '+%Y|%m|%d|%H|%M|%S|%s|%Z|%z|%A|%w|%W')"; v date_utc "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
s os_release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
s debian_version; cat /etc/debian_version 2>/dev/null
s alpine_release; cat /etc/alpine-release 2>/dev/null
s redhat_release; cat /etc/redhat-release 2>/dev/null
s meminfo; grep -E '^(MemTotal|MemFree|SwapTotal|SwapFree):' /proc/meminfo 2>/dev/null
s cpuinfo; grep -E '^(processor|physical id|cpu cores)[[:space:]]*:' /proc/cpuinfo 2>/dev/null
s uptime; cat /proc/uptime 2>/dev/null
s resolv; grep -E '^[[:space:]]*(nameserver|search|domain)[[:space:]]' /etc/resolv.conf 2>/dev/null
s links
for d in /sys/class/net/*; do
  [ -e "$d" ] || continue
  a=$(cat "$d/address" 2>/dev/null); m=$(cat "$d/mtu" 2>/dev/null); t=$(cat "$d/type" 2>/dev/null)
  o=$(cat "$d/operstate" 2>/dev/null); k=-
  if [ -d "$d/bridge" ]; then k=bridge; elif [ -d "$d/bonding" ]; then k=bonding; fi
  printf '%s %s %s %s %s %s\n' "${d##*/}" "${a:--}" "${m:--}" "${t:--}" "${o:--}" "$k"
done
if has ip; then s ipaddr; ip -o -4 addr show 2>/dev/null; else s fib_trie; cat /proc/net/fib_trie 2>/dev/null; fi
s route; cat /proc/net/route 2>/dev/null
s if_inet6; cat /proc/net/if_inet6 2>/dev/null
s ipv6_route; grep '^00000000000000000000000000000000 00 ' /proc/net/ipv6_route 2>/dev/null
s end
"#
    .to_string()
}

/// The script's output split into sections.
struct Raw<'a> {
    kv: HashMap<&'a str, &'a str>,
    sections: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Raw<'a> {
    fn parse(text: &'a str) -> Result<Self, FactsError> {
        let mut sections: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut current = None;
        let mut ended = false;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix(MARK) {
                ended = name == "end";
                current = Some(name);
                sections.entry(name).or_default();
            } else if let Some(c) = current {
                sections.entry(c).or_default().push(line);
            }
        }
        if !ended {
            return Err(FactsError::Truncated {
                bytes: text.len(),
                head: text.chars().take(200).collect(),
            });
        }
        let kv = sections
            .get("kv")
            .map(|l| l.iter().filter_map(|l| l.split_once('=')).collect())
            .unwrap_or_default();
        Ok(Raw { kv, sections })
    }
    fn get(&self, k: &str) -> &'a str {
        self.kv.get(k).map_or("", |v| v.trim())
    }
    fn lines(&self, s: &str) -> &[&'a str] {
        self.sections.get(s).map_or(&[], |v| v.as_slice())
    }
}

/// Parse the output of [`facts_script`].
pub fn parse_facts(stdout: &[u8]) -> Result<Map<String, Value>, FactsError> {
    let text = String::from_utf8_lossy(stdout);
    let raw = Raw::parse(&text)?;
    if raw.get("kernel").is_empty() {
        return Err(FactsError::Missing("kernel"));
    }
    let mut f = Map::new();
    system_facts(&raw, &mut f);
    os_facts(&raw, &mut f);
    hardware_facts(&raw, &mut f);
    network_facts(&raw, &mut f);
    let mut out = Map::new();
    for (k, v) in &f {
        out.insert(format!("ansible_{k}"), v.clone());
    }
    out.insert("ansible_facts".into(), Value::Object(f));
    Ok(out)
}

fn system_facts(r: &Raw, f: &mut Map<String, Value>) {
    let nodename = r.get("nodename");
    let host = Some(r.get("hostname"))
        .filter(|h| !h.is_empty())
        .unwrap_or(nodename);
    let fqdn = Some(r.get("fqdn"))
        .filter(|h| !h.is_empty())
        .unwrap_or(host);
    f.insert(
        "hostname".into(),
        json!(host.split('.').next().unwrap_or(host)),
    );
    f.insert("nodename".into(), json!(nodename));
    f.insert("fqdn".into(), json!(fqdn));
    f.insert(
        "domain".into(),
        json!(fqdn.split_once('.').map_or("", |d| d.1)),
    );
    for k in ["system", "kernel", "kernel_version", "machine"] {
        f.insert(k.into(), json!(r.get(k)));
    }
    f.insert("architecture".into(), json!(r.get("machine")));
    f.insert("user_id".into(), json!(r.get("user_id")));
    for k in ["user_uid", "user_gid"] {
        f.insert(
            k.into(),
            r.get(k).parse::<u64>().map_or(Value::Null, |n| json!(n)),
        );
    }
    let pw: Vec<&str> = r.get("passwd").split(':').collect();
    if pw.len() >= 7 {
        f.insert("user_gecos".into(), json!(pw[4]));
        f.insert("user_dir".into(), json!(pw[5]));
        f.insert("user_shell".into(), json!(pw[6]));
    }
    let pkg = match r.get("pkg") {
        "apt-get" => "apt",
        "" => "unknown",
        p => p,
    };
    f.insert("pkg_mgr".into(), json!(pkg));
    f.insert("service_mgr".into(), json!(r.get("svc")));
    let d: Vec<&str> = r.get("date").split('|').collect();
    if d.len() == 12 {
        let mut t = Map::new();
        let names = [
            "year", "month", "day", "hour", "minute", "second", "epoch", "tz",
        ];
        for (k, v) in names.iter().zip(&d) {
            t.insert((*k).into(), json!(v));
        }
        t.insert("tz_offset".into(), json!(d[8]));
        t.insert("weekday".into(), json!(d[9]));
        t.insert("weekday_number".into(), json!(d[10]));
        t.insert("weeknumber".into(), json!(d[11]));
        t.insert("date".into(), json!(format!("{}-{}-{}", d[0], d[1], d[2])));
        t.insert("time".into(), json!(format!("{}:{}:{}", d[3], d[4], d[5])));
        t.insert("epoch_int".into(), json!(d[6]));
        t.insert("iso8601".into(), json!(r.get("date_utc")));
        t.insert(
            "iso8601_basic_short".into(),
            json!(format!("{}{}{}T{}{}{}", d[0], d[1], d[2], d[3], d[4], d[5])),
        );
        f.insert("date_time".into(), Value::Object(t));
    }
    if let Some(up) = r.lines("uptime").first() {
        let secs = up
            .split_whitespace()
            .next()
            .and_then(|s| s.parse::<f64>().ok());
        if let Some(s) = secs {
            f.insert("uptime_seconds".into(), json!(s as u64));
        }
    }
    let mut dns = Map::new();
    for line in r.lines("resolv") {
        let mut w = line.split_whitespace();
        match (w.next(), w.collect::<Vec<_>>()) {
            (Some("nameserver"), v) if !v.is_empty() => {
                let e = dns.entry("nameservers").or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(json!(v[0]));
                }
            }
            (Some("search"), v) => {
                dns.insert("search".into(), json!(v));
            }
            (Some("domain"), v) if !v.is_empty() => {
                dns.insert("domain".into(), json!(v[0]));
            }
            _ => {}
        }
    }
    f.insert("dns".into(), Value::Object(dns));
}

/// `KEY=value` lines of os-release, unquoted.
fn os_release<'a>(r: &Raw<'a>) -> HashMap<&'a str, String> {
    r.lines("os_release")
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim(), v.replace("\\\"", "\""))
        })
        .collect()
}

fn os_facts(r: &Raw, f: &mut Map<String, Value>) {
    let osr = os_release(r);
    let g = |k: &str| osr.get(k).map_or("", |s| s.as_str());
    let id = g("ID").to_ascii_lowercase();
    let dist = match id.as_str() {
        "debian" | "raspbian" => "Debian".to_string(),
        "ubuntu" => "Ubuntu".into(),
        "linuxmint" => "Linux Mint".into(),
        "kali" => "Kali".into(),
        "devuan" => "Devuan".into(),
        "pop" => "Pop!_OS".into(),
        "rhel" => "RedHat".into(),
        "centos" => "CentOS".into(),
        "fedora" => "Fedora".into(),
        "rocky" => "Rocky".into(),
        "almalinux" => "AlmaLinux".into(),
        "ol" => "OracleLinux".into(),
        "amzn" => "Amazon".into(),
        "alpine" => "Alpine".into(),
        "arch" => "Archlinux".into(),
        "manjaro" => "Manjaro Linux".into(),
        "opensuse-leap" => "openSUSE Leap".into(),
        "opensuse-tumbleweed" => "openSUSE Tumbleweed".into(),
        "sles" => "SLES".into(),
        "gentoo" => "Gentoo".into(),
        "" => "NA".into(),
        other => {
            let mut c = other.chars();
            c.next()
                .map_or(String::new(), |h| h.to_uppercase().chain(c).collect())
        }
    };
    let like = format!("{id} {}", g("ID_LIKE").to_ascii_lowercase());
    let has = |w: &[&str]| like.split_whitespace().any(|x| w.contains(&x));
    let family = if has(&[
        "debian",
        "ubuntu",
        "raspbian",
        "linuxmint",
        "kali",
        "devuan",
        "pop",
    ]) {
        "Debian"
    } else if has(&[
        "rhel",
        "fedora",
        "centos",
        "rocky",
        "almalinux",
        "ol",
        "amzn",
    ]) {
        "RedHat"
    } else if has(&[
        "suse",
        "opensuse",
        "sles",
        "opensuse-leap",
        "opensuse-tumbleweed",
    ]) {
        "Suse"
    } else if has(&["arch", "manjaro"]) {
        "Archlinux"
    } else if has(&["alpine"]) {
        "Alpine"
    } else if has(&["gentoo"]) {
        "Gentoo"
    } else {
        dist.as_str()
    };
    let first = |s: &str| {
        r.lines(s)
            .first()
            .map_or(String::new(), |l| l.trim().to_string())
    };
    let numeric = |s: &str| s.starts_with(|c: char| c.is_ascii_digit());
    let redhat = first("redhat_release");
    let version = match family {
        "Debian" if id == "debian" && numeric(&first("debian_version")) => first("debian_version"),
        "Alpine" if numeric(&first("alpine_release")) => first("alpine_release"),
        "RedHat" if !redhat.is_empty() => redhat
            .split_whitespace()
            .find(|w| numeric(w))
            .map(|w| w.split('.').take(2).collect::<Vec<_>>().join("."))
            .unwrap_or_else(|| g("VERSION_ID").to_string()),
        _ => g("VERSION_ID").to_string(),
    };
    let release = [g("VERSION_CODENAME"), g("UBUNTU_CODENAME")]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| {
            let (_, rest) = redhat.split_once('(')?;
            Some(rest.split(')').next()?.to_string())
        })
        .unwrap_or_else(|| "NA".into());
    let major = version.split('.').next().unwrap_or("").to_string();
    f.insert("os_family".into(), json!(family));
    f.insert("distribution".into(), json!(dist));
    f.insert(
        "distribution_version".into(),
        json!(if version.is_empty() { "NA" } else { &version }),
    );
    f.insert(
        "distribution_major_version".into(),
        json!(if major.is_empty() { "NA" } else { &major }),
    );
    f.insert("distribution_release".into(), json!(release));
}

fn hardware_facts(r: &Raw, f: &mut Map<String, Value>) {
    let mem: HashMap<&str, u64> = r
        .lines("meminfo")
        .iter()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    for (k, fact) in [
        ("MemTotal", "memtotal_mb"),
        ("MemFree", "memfree_mb"),
        ("SwapTotal", "swaptotal_mb"),
        ("SwapFree", "swapfree_mb"),
    ] {
        if let Some(kb) = mem.get(k) {
            f.insert(fact.into(), json!(kb / 1024));
        }
    }
    let nproc = r.get("nproc").parse::<u64>().ok();
    let (mut procs, mut sockets, mut cores) = (0u64, std::collections::BTreeSet::new(), None);
    for l in r.lines("cpuinfo") {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        match k.trim() {
            "processor" => procs += 1,
            "physical id" => {
                sockets.insert(v.trim().to_string());
            }
            "cpu cores" => cores = cores.or(v.trim().parse::<u64>().ok()),
            _ => {}
        }
    }
    let vcpus = if procs > 0 { procs } else { nproc.unwrap_or(1) };
    let count = if sockets.is_empty() {
        vcpus
    } else {
        sockets.len() as u64
    };
    let cores = cores.unwrap_or(1).max(1);
    f.insert("processor_vcpus".into(), json!(vcpus));
    f.insert("processor_count".into(), json!(count));
    f.insert("processor_cores".into(), json!(cores));
    f.insert(
        "processor_threads_per_core".into(),
        json!((vcpus / (count * cores)).max(1)),
    );
    f.insert("processor_nproc".into(), json!(nproc.unwrap_or(vcpus)));
}

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

fn v4_entry(addr: Ipv4Addr, prefix: u32, brd: Option<&str>) -> Value {
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
fn routes(r: &Raw) -> Vec<(String, u32, Ipv4Addr, u32, u64)> {
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
fn v4_addresses(r: &Raw) -> Vec<(String, Ipv4Addr, u32, Option<String>, bool)> {
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

fn network_facts(r: &Raw, f: &mut Map<String, Value>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "noise before\n@@DROVER-FACTS kv
system=Linux
kernel=6.1.0-18-amd64
kernel_version=#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)
machine=x86_64
nodename=web1.example.org
hostname=web1.example.org
fqdn=web1.example.org
nproc=2
user_id=deploy
user_uid=1000
user_gid=1000
passwd=deploy:x:1000:1000:Deploy User,,,:/home/deploy:/bin/bash
pkg=apt-get
svc=systemd
date=2024|03|05|14|07|09|1709647629|CET|+0100|Tuesday|2|10
date_utc=2024-03-05T13:07:09Z
@@DROVER-FACTS os_release
PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"
VERSION_ID=\"12\"
VERSION_CODENAME=bookworm
ID=debian
@@DROVER-FACTS debian_version
12.5
@@DROVER-FACTS alpine_release
@@DROVER-FACTS redhat_release
@@DROVER-FACTS meminfo
MemTotal:        4028440 kB
MemFree:          302100 kB
SwapTotal:             0 kB
SwapFree:              0 kB
@@DROVER-FACTS cpuinfo
processor\t: 0
physical id\t: 0
cpu cores\t: 2
processor\t: 1
physical id\t: 0
cpu cores\t: 2
@@DROVER-FACTS uptime
3605.77 7000.10
@@DROVER-FACTS resolv
nameserver 10.0.0.2
nameserver 10.0.0.3
search example.org corp.example.org
@@DROVER-FACTS links
br-lan 02:42:c6:b5:a4:a9 1500 1 up bridge
eth0 52:54:00:12:34:56 1500 1 up -
lo 00:00:00:00:00:00 65536 772 unknown -
@@DROVER-FACTS ipaddr
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.0.0.9/24 brd 10.0.0.255 scope global secondary eth0\\       valid_lft forever
2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever
5: br-lan    inet 172.18.0.1/16 brd 172.18.255.255 scope global br-lan\\       valid_lft forever
@@DROVER-FACTS route
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
@@DROVER-FACTS if_inet6
fe80000000000000505400fffe123456 02 40 20 80     eth0
20010db8000000000000000000000005 02 40 00 80     eth0
00000000000000000000000000000001 01 80 10 80       lo
@@DROVER-FACTS ipv6_route
00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000002 00000000 00000003     eth0
@@DROVER-FACTS end
";

    #[test]
    fn debian_host_with_iproute2() {
        let f = parse_facts(DEBIAN.as_bytes()).unwrap();
        let want = json!({
            "hostname": "web1", "fqdn": "web1.example.org", "domain": "example.org",
            "os_family": "Debian", "distribution": "Debian", "distribution_version": "12.5",
            "distribution_major_version": "12", "distribution_release": "bookworm",
            "pkg_mgr": "apt", "service_mgr": "systemd", "kernel": "6.1.0-18-amd64",
            "architecture": "x86_64", "system": "Linux", "user_id": "deploy", "user_uid": 1000,
            "user_dir": "/home/deploy", "user_shell": "/bin/bash",
            "memtotal_mb": 3934, "memfree_mb": 295, "swaptotal_mb": 0,
            "processor_vcpus": 2, "processor_count": 1, "processor_cores": 2,
            "processor_threads_per_core": 1, "processor_nproc": 2, "uptime_seconds": 3605,
            "interfaces": ["br-lan", "eth0", "lo"],
            "all_ipv4_addresses": ["10.0.0.9", "10.0.0.5", "172.18.0.1"],
            "all_ipv6_addresses": ["fe80::5054:ff:fe12:3456", "2001:db8::5"],
            "dns": {"nameservers": ["10.0.0.2", "10.0.0.3"], "search": ["example.org", "corp.example.org"]},
        });
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&f[&format!("ansible_{k}")], v, "{k}");
            assert_eq!(&f["ansible_facts"][k], v, "ansible_facts.{k}");
        }
        let d = &f["ansible_default_ipv4"];
        assert_eq!(d["address"], "10.0.0.5");
        assert_eq!(d["gateway"], "10.0.0.1");
        assert_eq!(d["interface"], "eth0");
        assert_eq!(d["netmask"], "255.255.255.0");
        assert_eq!(d["network"], "10.0.0.0");
        assert_eq!(d["prefix"], "24");
        assert_eq!(d["macaddress"], "52:54:00:12:34:56");
        let d6 = &f["ansible_default_ipv6"];
        assert_eq!(
            (d6["address"].as_str(), d6["gateway"].as_str()),
            (Some("2001:db8::5"), Some("2001:db8::1"))
        );
        let eth0 = &f["ansible_eth0"];
        assert_eq!(eth0["ipv4_secondaries"][0]["address"], "10.0.0.9");
        assert_eq!(eth0["ipv6"][0]["scope"], "link");
        assert_eq!(eth0["mtu"], 1500);
        assert_eq!(f["ansible_br_lan"]["type"], "bridge");
        assert_eq!(f["ansible_br_lan"]["device"], "br-lan");
        assert_eq!(f["ansible_lo"]["type"], "loopback");
        assert_eq!(f["ansible_lo"]["active"], true);
        assert_eq!(f["ansible_date_time"]["date"], "2024-03-05");
        assert_eq!(f["ansible_date_time"]["iso8601"], "2024-03-05T13:07:09Z");
    }

    #[test]
    fn alpine_without_iproute2_uses_fib_trie() {
        let out = "@@DROVER-FACTS kv
kernel=6.6.1
machine=aarch64
nodename=box
hostname=box
fqdn=
pkg=apk
svc=openrc
@@DROVER-FACTS os_release
NAME=\"Alpine Linux\"
ID=alpine
VERSION_ID=3.19.1
@@DROVER-FACTS alpine_release
3.19.1
@@DROVER-FACTS cpuinfo
processor\t: 0
processor\t: 1
processor\t: 2
processor\t: 3
@@DROVER-FACTS links
eth0 02:00:00:00:00:01 1500 1 down -
@@DROVER-FACTS fib_trie
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 192.168.7.0/24 2 0 2
        |-- 192.168.7.0
           /24 link UNICAST
        |-- 192.168.7.20
           /32 host LOCAL
Local:
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
        |-- 192.168.7.20
           /32 host LOCAL
@@DROVER-FACTS route
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0107A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0007A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
@@DROVER-FACTS end
";
        let f = parse_facts(out.as_bytes()).unwrap();
        assert_eq!(f["ansible_os_family"], "Alpine");
        assert_eq!(f["ansible_distribution_version"], "3.19.1");
        assert_eq!(f["ansible_distribution_major_version"], "3");
        assert_eq!(f["ansible_distribution_release"], "NA");
        assert_eq!(f["ansible_fqdn"], "box");
        assert_eq!(f["ansible_pkg_mgr"], "apk");
        assert_eq!(f["ansible_processor_vcpus"], 4);
        assert_eq!(f["ansible_processor_count"], 4);
        assert_eq!(f["ansible_all_ipv4_addresses"], json!(["192.168.7.20"]));
        assert_eq!(f["ansible_eth0"]["ipv4"]["prefix"], "24");
        assert_eq!(f["ansible_eth0"]["active"], false);
        assert_eq!(f["ansible_lo"]["ipv4"]["address"], "127.0.0.1");
        assert_eq!(f["ansible_default_ipv4"]["address"], "192.168.7.20");
        assert_eq!(f["ansible_default_ipv4"]["gateway"], "192.168.7.1");
        assert_eq!(f["ansible_default_ipv6"], json!({}));
    }

    #[test]
    fn redhat_release_gives_version_and_codename() {
        let out = "@@DROVER-FACTS kv\nkernel=5.14\n@@DROVER-FACTS os_release\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\n@@DROVER-FACTS redhat_release\nCentOS Linux release 7.9.2009 (Core)\n@@DROVER-FACTS end\n";
        let f = parse_facts(out.as_bytes()).unwrap();
        assert_eq!(f["ansible_distribution"], "CentOS");
        assert_eq!(f["ansible_os_family"], "RedHat");
        assert_eq!(f["ansible_distribution_version"], "7.9");
        assert_eq!(f["ansible_distribution_release"], "Core");
        assert_eq!(f["ansible_pkg_mgr"], "unknown");
    }

    #[test]
    fn truncated_or_empty_output_is_an_error() {
        let cut = &DEBIAN[..DEBIAN.find("@@DROVER-FACTS end").unwrap()];
        assert!(matches!(
            parse_facts(cut.as_bytes()),
            Err(FactsError::Truncated { .. })
        ));
        assert!(parse_facts(b"").is_err());
        let no_kernel = "@@DROVER-FACTS kv\n@@DROVER-FACTS end\n";
        assert!(matches!(
            parse_facts(no_kernel.as_bytes()),
            Err(FactsError::Missing("kernel"))
        ));
    }

    fn sh(cmd: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", cmd])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn real_script_on_this_machine() {
        let out = std::process::Command::new("sh")
            .args(["-c", &facts_script()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = parse_facts(&out.stdout).unwrap();
        assert_eq!(f["ansible_kernel"], sh("uname -r"));
        assert_eq!(f["ansible_machine"], sh("uname -m"));
        assert_eq!(f["ansible_system"], "Linux");
        assert_eq!(f["ansible_nodename"], sh("uname -n"));
        assert_eq!(f["ansible_user_id"], sh("id -un"));
        assert_eq!(f["ansible_processor_nproc"].to_string(), sh("nproc"));
        assert_eq!(
            f["ansible_processor_vcpus"].to_string(),
            sh("grep -c ^processor /proc/cpuinfo")
        );
        let mem = f["ansible_memtotal_mb"].as_u64().unwrap();
        assert!(mem > 100 && mem >= f["ansible_memfree_mb"].as_u64().unwrap());
        let ifaces: Vec<&str> = f["ansible_interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(ifaces.contains(&"lo"), "{ifaces:?}");
        assert_eq!(f["ansible_lo"]["ipv4"]["address"], "127.0.0.1");
        for a in f["ansible_all_ipv4_addresses"].as_array().unwrap() {
            assert!(a.as_str().unwrap().parse::<Ipv4Addr>().is_ok(), "{a}");
        }
        let osr = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        if osr.contains("ID=debian") {
            assert_eq!(f["ansible_os_family"], "Debian");
            assert_eq!(f["ansible_pkg_mgr"], "apt");
            let v = std::fs::read_to_string("/etc/debian_version").unwrap();
            assert_eq!(f["ansible_distribution_version"], v.trim());
        }
        let sm = f["ansible_service_mgr"].as_str().unwrap();
        let systemd = std::path::Path::new("/run/systemd/system").is_dir();
        assert_eq!(sm == "systemd", systemd, "{sm}");
        if let Some(dev) = f["ansible_default_ipv4"]["interface"].as_str() {
            assert!(ifaces.contains(&dev));
            assert_eq!(
                f["ansible_default_ipv4"]["gateway"],
                sh("ip -4 route show default | awk '{print $3; exit}'")
            );
        }
        assert_eq!(f["ansible_facts"]["kernel"], f["ansible_kernel"]);
    }

    #[test]
    fn fib_trie_fallback_agrees_with_iproute2_here() {
        let run = |script: &str| {
            let out = std::process::Command::new("sh")
                .args(["-c", script])
                .output()
                .unwrap();
            parse_facts(&out.stdout).unwrap()
        };
        let script = facts_script();
        let with_ip = run(&script);
        if !script.contains("if has ip;") || sh("command -v ip").is_empty() {
            return;
        }
        let without = run(&script.replace("if has ip;", "if false;"));
        let set = |f: &Map<String, Value>| {
            let mut v: Vec<String> = f["ansible_all_ipv4_addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(set(&with_ip), set(&without));
        for k in ["address", "prefix", "interface", "gateway", "netmask"] {
            assert_eq!(
                with_ip["ansible_default_ipv4"][k], without["ansible_default_ipv4"][k],
                "{k}"
            );
        }
    }
}
