//! Facts: one POSIX shell script gathers everything in one round trip (no
//! Python on the host), and [`parse_facts`] turns its `key=value` lines into
//! Ansible-named facts (`ansible_*`, also under `ansible_facts` without the
//! prefix).

use serde_json::{json, Map, Value};

/// Facts errors.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("fact gathering printed nothing usable: {0}")]
    Empty(String),
}

/// The gathering script.
pub fn facts_script() -> String {
    r#"LC_ALL=C; export LC_ALL
[ -r /etc/os-release ] && . /etc/os-release
echo "os_id=${ID:-}"; echo "os_like=${ID_LIKE:-}"; echo "os_name=${NAME:-}"; echo "os_version=${VERSION_ID:-}"; echo "os_codename=${VERSION_CODENAME:-}"
echo "hostname=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"
echo "fqdn=$(hostname -f 2>/dev/null || hostname)"
echo "kernel=$(uname -r)"; echo "machine=$(uname -m)"; echo "system=$(uname -s)"
echo "user=$(id -un)"
echo "vcpus=$(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
awk '/^MemTotal:/{print "memtotal_kb="$2} /^MemAvailable:/{print "memfree_kb="$2}' /proc/meminfo 2>/dev/null
for m in apt-get dnf yum apk zypper pacman; do if command -v $m >/dev/null 2>&1; then echo "pkg=$m"; break; fi; done
if [ -d /run/systemd/system ]; then echo "svc=systemd"; elif [ -x /sbin/openrc-run ] || [ -x /sbin/openrc ]; then echo "svc=openrc"; else echo "svc=sysvinit"; fi
if command -v ip >/dev/null 2>&1; then
  ip -o addr show 2>/dev/null | awk '{print "addr="$2" "$3" "$4}'
  ip -4 route show default 2>/dev/null | awk '{for(i=1;i<=NF;i++){if($i=="via")g=$(i+1);if($i=="dev")d=$(i+1)}; print "route="d" "g; exit}'
else
  for i in $(ls /sys/class/net 2>/dev/null); do echo "iface=$i"; done
fi
"#
    .to_string()
}

fn family(id: &str, like: &str) -> &'static str {
    let all = format!("{id} {like}");
    if all.contains("debian") || all.contains("ubuntu") {
        "Debian"
    } else if all.contains("rhel") || all.contains("fedora") || all.contains("centos") {
        "RedHat"
    } else if all.contains("alpine") {
        "Alpine"
    } else if all.contains("suse") {
        "Suse"
    } else if all.contains("arch") {
        "Archlinux"
    } else {
        "Linux"
    }
}

/// Parse the script's output into facts.
pub fn parse_facts(stdout: &[u8]) -> Result<Map<String, Value>, FactsError> {
    let text = String::from_utf8_lossy(stdout);
    let mut kv: Map<String, Value> = Map::new();
    let mut ifaces: Map<String, Value> = Map::new();
    let mut v4: Vec<Value> = Vec::new();
    let mut v6: Vec<Value> = Vec::new();
    let mut route: Option<(String, String)> = None;
    let mut raw: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "addr" => {
                let f: Vec<&str> = v.split_whitespace().collect();
                if f.len() < 3 {
                    continue;
                }
                let (dev, fam, cidr) = (f[0].trim_end_matches(':'), f[1], f[2]);
                let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, ""));
                let dev = dev.split('@').next().unwrap_or(dev).to_string();
                let e = ifaces
                    .entry(dev.clone())
                    .or_insert_with(|| json!({"device": dev, "ipv6": []}));
                if fam == "inet" {
                    if e.get("ipv4").is_none() {
                        e["ipv4"] = json!({"address": addr, "prefix": prefix});
                    }
                    if !addr.starts_with("127.") {
                        v4.push(json!(addr));
                    }
                } else if fam == "inet6" {
                    if let Some(a) = e["ipv6"].as_array_mut() {
                        a.push(json!({"address": addr, "prefix": prefix}));
                    }
                    if addr != "::1" {
                        v6.push(json!(addr));
                    }
                }
            }
            "iface" => {
                ifaces
                    .entry(v.to_string())
                    .or_insert_with(|| json!({"device": v, "ipv6": []}));
            }
            "route" => {
                let mut f = v.split_whitespace();
                route = Some((f.next().unwrap_or("").into(), f.next().unwrap_or("").into()));
            }
            _ => {
                raw.insert(k, v);
            }
        }
    }
    if raw.is_empty() {
        return Err(FactsError::Empty(text.chars().take(200).collect()));
    }
    let g = |k: &str| raw.get(k).copied().unwrap_or("").to_string();
    let (id, like) = (g("os_id"), g("os_like"));
    let dist = match id.as_str() {
        "debian" => "Debian".to_string(),
        "ubuntu" => "Ubuntu".to_string(),
        "centos" => "CentOS".to_string(),
        "rhel" => "RedHat".to_string(),
        "fedora" => "Fedora".to_string(),
        "alpine" => "Alpine".to_string(),
        "" => "Unknown".to_string(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    };
    let version = g("os_version");
    let kb = |k: &str| g(k).parse::<u64>().unwrap_or(0) / 1024;
    let pkg = match g("pkg").as_str() {
        "apt-get" => "apt".to_string(),
        other => other.to_string(),
    };
    kv.insert(
        "hostname".into(),
        json!(g("hostname").split('.').next().unwrap_or("")),
    );
    kv.insert("nodename".into(), json!(g("hostname")));
    kv.insert("fqdn".into(), json!(g("fqdn")));
    kv.insert("os_family".into(), json!(family(&id, &like)));
    kv.insert("distribution".into(), json!(dist));
    kv.insert("distribution_version".into(), json!(version));
    kv.insert(
        "distribution_major_version".into(),
        json!(version.split('.').next().unwrap_or("")),
    );
    kv.insert("distribution_release".into(), json!(g("os_codename")));
    kv.insert("pkg_mgr".into(), json!(pkg));
    kv.insert("service_mgr".into(), json!(g("svc")));
    kv.insert("kernel".into(), json!(g("kernel")));
    kv.insert("architecture".into(), json!(g("machine")));
    kv.insert("machine".into(), json!(g("machine")));
    kv.insert("system".into(), json!(g("system")));
    kv.insert("user_id".into(), json!(g("user")));
    kv.insert(
        "processor_vcpus".into(),
        json!(g("vcpus").parse::<u64>().unwrap_or(0)),
    );
    kv.insert("memtotal_mb".into(), json!(kb("memtotal_kb")));
    kv.insert("memfree_mb".into(), json!(kb("memfree_kb")));
    kv.insert("all_ipv4_addresses".into(), Value::Array(v4));
    kv.insert("all_ipv6_addresses".into(), Value::Array(v6));
    kv.insert(
        "interfaces".into(),
        json!(ifaces.keys().collect::<Vec<_>>()),
    );
    let default = match &route {
        Some((dev, gw)) => {
            let addr = ifaces
                .get(dev)
                .and_then(|i| i.get("ipv4"))
                .and_then(|i| i.get("address"))
                .cloned()
                .unwrap_or(Value::Null);
            json!({"interface": dev, "gateway": gw, "address": addr})
        }
        None => json!({}),
    };
    kv.insert("default_ipv4".into(), default);
    for (name, v) in &ifaces {
        kv.insert(name.replace(['-', '.'], "_"), v.clone());
    }
    let mut out = Map::new();
    for (k, v) in &kv {
        out.insert(format!("ansible_{k}"), v.clone());
    }
    out.insert("ansible_facts".into(), Value::Object(kv));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canned_output() {
        let out = b"os_id=debian\nos_like=\nos_version=12\nos_codename=bookworm\nhostname=web1\nfqdn=web1.example\nkernel=6.1.0\nmachine=x86_64\nsystem=Linux\nuser=root\nvcpus=2\nmemtotal_kb=2048000\nmemfree_kb=1024000\npkg=apt-get\nsvc=systemd\naddr=lo inet 127.0.0.1/8\naddr=eth0 inet 10.1.0.5/24\naddr=eth0 inet6 fe80::1/64\nroute=eth0 10.1.0.1\n";
        let f = parse_facts(out).unwrap();
        assert_eq!(f["ansible_os_family"], "Debian");
        assert_eq!(f["ansible_distribution_major_version"], "12");
        assert_eq!(f["ansible_pkg_mgr"], "apt");
        assert_eq!(f["ansible_memtotal_mb"], 2000);
        assert_eq!(f["ansible_default_ipv4"]["address"], "10.1.0.5");
        assert_eq!(f["ansible_all_ipv4_addresses"], json!(["10.1.0.5"]));
        assert_eq!(f["ansible_eth0"]["ipv4"]["prefix"], "24");
        assert_eq!(f["ansible_facts"]["hostname"], "web1");
    }

    #[test]
    fn real_script_on_this_machine() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(facts_script())
            .output()
            .unwrap();
        let f = parse_facts(&out.stdout).unwrap();
        let uname = std::process::Command::new("uname")
            .arg("-r")
            .output()
            .unwrap();
        assert_eq!(
            f["ansible_kernel"],
            String::from_utf8_lossy(&uname.stdout).trim()
        );
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as u64;
        assert_eq!(f["ansible_processor_vcpus"], n);
        assert!(f["ansible_memtotal_mb"].as_u64().unwrap() > 100);
    }

    #[test]
    fn empty_output_is_an_error() {
        assert!(parse_facts(b"").is_err());
    }
}
