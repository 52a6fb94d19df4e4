//! Host facts. [`facts_script`] is one POSIX shell script (no Python on the
//! host) that prints everything in marked sections in one round trip: a
//! `key=value` section (uname, hostname, user, package and service manager,
//! date) and raw copies of `/etc/os-release`, `/proc/meminfo`, `/proc/cpuinfo`,
//! `/sys/class/net`, `ip -o -4 addr` (or `/proc/net/fib_trie` without
//! iproute2), `/proc/net/route`, `/proc/net/if_inet6` and friends.
//! [`parse_facts`] turns that into Ansible-named facts: each as
//! `ansible_<name>` at the top level and as `<name>` under `ansible_facts`.

use serde_json::{Map, Value};
use std::collections::HashMap;

mod net;
mod os;
#[cfg(test)]
mod tests;

use net::network_facts;
use os::{hardware_facts, os_facts, system_facts};

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
