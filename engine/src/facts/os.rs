//! OS, system and hardware facts from the raw sections of the facts script.

use super::Raw;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub(super) fn system_facts(r: &Raw, f: &mut Map<String, Value>) {
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
pub(super) fn os_release<'a>(r: &Raw<'a>) -> HashMap<&'a str, String> {
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

pub(super) fn os_facts(r: &Raw, f: &mut Map<String, Value>) {
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

pub(super) fn hardware_facts(r: &Raw, f: &mut Map<String, Value>) {
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
