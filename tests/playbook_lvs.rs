//! The shipped LVS playbook (`playbooks/lvs`, steps LV-01..08 of
//! `playbooks/STEPS.md`) on cluster `dty`: the director is vm1 (a QEMU VM
//! with Debian's kernel: IPVS), the real servers are dty1..dty3 (containers
//! with a writable `/proc/sys/net`, `--net-sysctl`, for the ARP sysctls),
//! dty4 is a client. The VM is on the containers' L2 segment (a tap on the
//! docker bridge), so IPVS direct routing really runs: the client's request
//! to the VIP is answered by a real server. Checks are independent of drover:
//! OpenSSH + `ipvsadm` on the VM, `docker exec` + `curl` on the containers.

#[path = "support/playbook.rs"]
mod support;

use support::*;

const PB: &str = "playbooks/lvs/site.yml";
const DOMAIN: &str = "lvs.test";
const VM: &str = "vm1";

/// The test inventory (LV-01): INI plus host_vars/ for the vhost lists.
/// `reals`: the container numbers that are real servers (with weights).
fn inventory(c: &Cluster, dir: &std::path::Path, reals: &[(usize, u32)], vip: &str) -> String {
    let hv = dir.join("host_vars");
    std::fs::create_dir_all(&hv).expect("host_vars");
    let mut rs = String::new();
    for &(i, w) in reals {
        rs += &format!(
            "{h} ansible_host={ip} lvs_rip={ip} lvs_weight={w}\n",
            h = c.host(i),
            ip = c.ip(i)
        );
    }
    for i in 1..=3 {
        // The first real server is the document's web02: www first, then discuss.
        let discuss = if i == 1 {
            "  - {name: discuss, docroot: /home/kyunghee/public_html, logdir: /home/kyunghee/weblogs, p3p: false}\n"
        } else {
            ""
        };
        let timeout = if i == 1 { "apache_timeout: 30\n" } else { "" };
        write(
            &hv,
            &format!("{}.yml", c.host(i)),
            &format!(
                "apache_server_name: {ip}\n{timeout}apache_vhosts:\n  \
                 - {{name: www, docroot: /home/docs, logdir: /home/logs, p3p: true}}\n{discuss}",
                ip = c.ip(i)
            ),
        );
    }
    let inv = format!(
        "[director]\n{vm} lvs_iface=eth1 lvs_persist_addrs=true\n\
         [realservers]\n{rs}\
         [web:children]\nrealservers\n\
         [lvs:children]\ndirector\nrealservers\n\
         [lvs:vars]\n{conn}\
         lvs_vip={vip}\nlvs_cluster_ip={cip}\nlvs_domain={DOMAIN}\n\
         lvs_kernel_min=4.19.0\nlvs_kernel_package=\"\"\nlvs_port=80\nlvs_scheduler=lc\n\
         lvs_persistent=360\nlvs_forwarding=route\nlvs_backup_dir=/var/backups/ipvsadm\n\
         lvs_persist_addrs=false\nlvs_keepalived=false\nlvs_vrid=71\nlvs_priority=100\n\
         apache_port=80\napache_server_admin=webmaster@{DOMAIN}\n\
         apache_p3p=CP='CAO PSA CONi OTR OUR DEM ONL'\napache_max_keepalive_requests=100\n\
         apache_keepalive_timeout=5\napache_timeout=300\napache_max_connections_per_child=100\n",
        vm = c.vm_line(VM),
        cip = c.vm_addr(VM),
        conn = c.conn_vars(),
    );
    write(dir, "hosts.ini", &inv)
}

/// What the playbook could change on a real server, for "check touched nothing".
const RS_SNAPSHOT: &str = "dpkg-query -W -f '${Package} ${Status}\\n' | sort; \
    ls -la /etc/apache2 /etc/sysctl.d /home 2>&1; ip -o addr show dev lo; \
    cat /proc/sys/net/ipv4/conf/all/arp_ignore /proc/sys/net/ipv4/conf/all/arp_announce";
const DIRECTOR_SNAPSHOT: &str = "dpkg-query -W -f '${Package} ${Status}\\n' | sort; \
    ls -la /etc/modules-load.d /etc/systemd/system /var/backups 2>&1; ip -o addr show dev eth1; \
    grep -c ip_vs /proc/modules; cat /etc/default/ipvsadm /etc/ipvsadm.rules 2>&1; true";

/// `ipvsadm -Ln` on the director (over OpenSSH), without the header lines
/// and the connection counters.
fn table(c: &Cluster) -> Vec<String> {
    c.vx_ok(VM, "ipvsadm -Ln")
        .lines()
        .skip(3)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let n = if w.first() == Some(&"->") { 4 } else { w.len() };
            w[..n.min(w.len())].join(" ")
        })
        .collect()
}

fn real(ip: &str, w: u32) -> String {
    format!("-> {ip}:80 Route {w}")
}

#[test]
fn lvs_playbook_director_vm_and_real_servers() {
    let c = Cluster::up_with("dty", 4, &["--vm", "1", "--net-sysctl"]);
    let rs: Vec<String> = (1..=3).map(|i| c.host(i)).collect();
    let client = c.host(4);
    let vip = format!("{}.100", c.net());
    // Test set-up, not under test: package lists; the client gets curl.
    for h in &rs {
        dx_ok(h, "apt-get update -q");
    }
    dx_ok(
        &client,
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let weights = [(1, 100), (2, 200), (3, 200)];
    let inv = inventory(&c, dir.path(), &weights, &vip);

    // --check on fresh hosts: changes predicted everywhere, none made.
    let before: Vec<String> = rs.iter().map(|h| dx_ok(h, RS_SNAPSHOT)).collect();
    let dir_before = c.vx_ok(VM, DIRECTOR_SNAPSHOT);
    let r = run_ok(PB, &inv, &["--check"]);
    for h in &rs {
        assert!(changed(&r, h) >= 10, "{h}: check predicted too little: {r}");
    }
    assert!(
        changed(&r, VM) >= 6,
        "{VM}: check predicted too little: {r}"
    );
    for (h, snap) in rs.iter().zip(&before) {
        assert_eq!(
            &dx_ok(h, RS_SNAPSHOT),
            snap,
            "{h}: --check changed the host"
        );
    }
    assert_eq!(
        c.vx_ok(VM, DIRECTOR_SNAPSHOT),
        dir_before,
        "--check changed the director"
    );
    assert_ne!(c.vx(VM, "command -v ipvsadm").0, 0);

    // The real run.
    let r = run_ok(PB, &inv, &[]);
    for h in rs.iter().chain([&VM.to_string()]) {
        assert!(changed(&r, h) >= 5, "{h}: {r}");
    }

    // LV-02: modules loaded now and at boot; the kernel check passed.
    let mods = c.vx_ok(VM, "cut -d' ' -f1 /proc/modules");
    assert!(
        mods.lines().any(|m| m == "ip_vs") && mods.lines().any(|m| m == "ip_vs_lc"),
        "{mods}"
    );
    assert_eq!(
        c.vx_ok(
            VM,
            "cat /etc/modules-load.d/ip_vs.conf /etc/modules-load.d/ip_vs_lc.conf"
        ),
        "ip_vs\nip_vs_lc\n"
    );
    // LV-05: exactly the document's table (lc, persistent 360, Route 100/200/200).
    let want = |ws: &[(usize, u32)]| {
        let mut t = vec![format!("TCP {vip}:80 lc persistent 360")];
        t.extend(ws.iter().map(|&(i, w)| real(&c.ip(i), w)));
        t
    };
    assert_eq!(table(&c), want(&weights));
    assert!(c
        .vx_ok(VM, "cat /etc/ipvsadm.rules")
        .contains(&format!("-A -t {vip}:80 -s lc -p 360")));
    assert!(c
        .vx_ok(VM, "cat /etc/default/ipvsadm")
        .contains("AUTO=\"true\""));
    // LV-04: the old (empty) table was saved before the first change.
    assert!(c.vx_ok(VM, "ls /var/backups/ipvsadm").contains("ipvsadm-"));
    // VIP and cluster IP on the director, and its boot unit.
    let a = c.vx_ok(VM, "ip -o -4 addr show dev eth1");
    assert!(a.contains(&format!(" {vip}/32 ")), "{a}");
    assert_eq!(
        c.vx_ok(VM, "systemctl is-enabled lvs-addresses").trim(),
        "enabled"
    );

    // LV-03: ARP hidden on every real server (runtime and file), VIP on lo.
    for h in &rs {
        assert_eq!(
            dx_ok(h, "cat /proc/sys/net/ipv4/conf/all/arp_ignore /proc/sys/net/ipv4/conf/all/arp_announce"),
            "1\n2\n"
        );
        let f = dx_ok(h, "cat /etc/sysctl.d/60-lvs-dr.conf");
        assert!(
            f.contains("net.ipv4.conf.all.arp_ignore=1")
                || f.contains("net.ipv4.conf.all.arp_ignore = 1"),
            "{f}"
        );
        assert!(dx_ok(h, "ip -o -4 addr show dev lo").contains(&format!(" {vip}/32 ")));
    }
    // The machine's own value is untouched (only the containers' netns).
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/arp_ignore")
            .unwrap()
            .trim(),
        "0"
    );

    // LV-07: Apache per node from host vars, config valid, vhosts answer.
    for (i, h) in rs.iter().enumerate() {
        let conf = dx_ok(
            h,
            "cat /etc/apache2/conf-enabled/lvs-tuning.conf /etc/apache2/ports.conf",
        );
        let timeout = if i == 0 { 30 } else { 300 };
        for line in [
            "KeepAlive On".to_string(),
            "MaxKeepAliveRequests 100".into(),
            "KeepAliveTimeout 5".into(),
            format!("Timeout {timeout}"),
            "MaxConnectionsPerChild 100".into(),
            "Listen 80".into(),
            format!("ServerName {}", c.ip(i + 1)),
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "{h}: no `{line}` in {conf}"
            );
        }
        assert!(dx_ok(h, "apachectl -t 2>&1").contains("Syntax OK"));
        assert!(dx_ok(h, "ls /home/logs").contains("access_log"));
    }
    let web02 = c.ip(1);
    let get = |ip: &str, host: &str| {
        dx_ok(
            &client,
            &format!("curl -sf -m 10 -H 'Host: {host}' http://{ip}/"),
        )
    };
    assert_eq!(
        get(&web02, &format!("discuss.{DOMAIN}")),
        format!("discuss.{DOMAIN} served by {}\n", rs[0])
    );
    // www is the first vhost: it answers for any other name.
    assert_eq!(
        get(&web02, "other.name"),
        format!("www.{DOMAIN} served by {}\n", rs[0])
    );
    assert_eq!(dx(&rs[0], "ls /home/kyunghee/weblogs/access_log").0, 0);
    let head = dx_ok(&client, &format!("curl -sfI -m 10 http://{web02}/"));
    assert!(
        head.contains("P3P: CP='CAO PSA CONi OTR OUR DEM ONL'"),
        "{head}"
    );

    // Through IPVS direct routing: the client asks the VIP, a real server
    // answers (the director runs no web server), and the director counted it.
    let page = get(&vip, &format!("www.{DOMAIN}"));
    let served = rs
        .iter()
        .position(|h| page == format!("www.{DOMAIN} served by {h}\n"))
        .unwrap_or_else(|| panic!("answer through the VIP: `{page}`"));
    assert_ne!(
        c.vx(VM, "ss -ltn | grep -q ':80 '").0,
        0,
        "director listens on 80"
    );
    let stats = c.vx_ok(VM, "ipvsadm -Ln --stats");
    let line = stats
        .lines()
        .find(|l| l.contains(&format!("{}:80", c.ip(served + 1))))
        .unwrap_or_else(|| panic!("{stats}"));
    let conns: u64 = line
        .split_whitespace()
        .nth(2) // `-> ADDR:PORT Conns InPkts ...`
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        conns >= 1,
        "no connection counted for {}: {stats}",
        rs[served]
    );

    // LV-08: the read-only report prints the statistics and changes nothing.
    let o = drover(&["run", PB, "-i", &inv, "--tags", "LV-08"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{}:80", c.ip(served + 1))),
        "{}",
        text(&o)
    );

    // Converged: a second run and --check change nothing.
    let r = run_ok(PB, &inv, &[]);
    for h in rs.iter().chain([&VM.to_string()]) {
        assert_eq!(changed(&r, h), 0, "{h}: second run: {r}");
    }
    let r = run_ok(PB, &inv, &["--check"]);
    for h in rs.iter().chain([&VM.to_string()]) {
        assert_eq!(
            changed(&r, h),
            0,
            "{h}: check on the converged cluster: {r}"
        );
    }

    // LV-05: a real server removed from the inventory leaves the table.
    let inv2 = inventory(&c, dir.path(), &weights[..2], &vip);
    let r = run_ok(PB, &inv2, &[]);
    assert!(changed(&r, VM) >= 1, "{r}");
    assert_eq!(table(&c), want(&weights[..2]));
    let r = run_ok(PB, &inv2, &[]);
    assert_eq!(changed(&r, VM), 0, "{r}");
}
