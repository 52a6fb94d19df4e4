//! Tests of fact parsing on canned and real output.

use super::*;
use serde_json::json;
use std::net::Ipv4Addr;

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
