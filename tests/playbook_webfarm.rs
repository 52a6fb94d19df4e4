//! The shipped web-farm playbook (`playbooks/webfarm`, steps WF-01..05 of
//! `playbooks/STEPS.md`) against four real test hosts (cluster `dtw`): dtw1
//! is the name server, dtw2 web server A, dtw3 web server B, dtw4 a client
//! outside the farm. Every end state is checked with independent clients
//! from dtw4/dtw3 (`dig`, `curl`, `rsync`) and `docker exec`. WF-06/07 (NFS)
//! stay off: this machine's kernel has no NFS server. Needs Docker and root;
//! fails (never skips) without them.

#[path = "support/playbook.rs"]
mod support;

use support::*;

const PB: &str = "playbooks/webfarm/site.yml";
const ZONE: &str = "farm.test";
const DOCROOT: &str = "/usr/local/localhostSource";

fn inventory(c: &Cluster) -> String {
    format!(
        "[dns]\n{d} ansible_host={dip} dns_addr={dip}\n\
         [web_master]\n{a} ansible_host={aip} web_addr={aip}\n\
         [web_mirror]\n{b} ansible_host={bip} web_addr={bip}\n\
         [web:children]\nweb_master\nweb_mirror\n\
         [webfarm:children]\ndns\nweb\n\
         [webfarm:vars]\n{conn}\
         webfarm_zone={ZONE}\nwebfarm_ns_name=ns.{ZONE}\nwebfarm_hostmaster=root.{ZONE}\n\
         webfarm_ttl=60\nwebfarm_docroot={DOCROOT}\nwebfarm_rsync_daemon=xinetd\n\
         webfarm_rsync_module=www\nwebfarm_rsync_comment=webservice-dir\n\
         webfarm_rsync_uid=root\nwebfarm_rsync_gid=root\n\
         webfarm_rsync_max_connections=1\nwebfarm_rsync_timeout=300\n\
         webfarm_nfs=false\nwebfarm_nfs_dir=/localData\nwebfarm_nfs_server_name={ZONE}\n",
        d = c.host(1),
        dip = c.ip(1),
        a = c.host(2),
        aip = c.ip(2),
        b = c.host(3),
        bip = c.ip(3),
        conn = c.conn_vars(),
    )
}

/// What a playbook could change on a host, for "check touched nothing".
/// (Names only in /var/lib: its mtime moves by itself after `apt-get update`.)
const SNAPSHOT: &str = "dpkg-query -W -f '${Package} ${Status}\\n' | sort; \
    ls -la /etc/bind /etc/apache2/sites-enabled /etc/xinetd.d /etc/cron.hourly \
    /usr/local 2>&1; ls -1 /var/lib; cat /etc/rsyncd.conf 2>&1; true";

fn installed(h: &str, pkg: &str) -> bool {
    dx(
        h,
        &format!("dpkg-query -W -f '${{Status}}' {pkg} 2>/dev/null"),
    )
    .1
    .contains("install ok installed")
}

fn dig(client: &str, dns: &str, name: &str) -> Vec<String> {
    let out = dx_ok(client, &format!("dig +short @{dns} {name} A"));
    let mut v: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
    v.sort();
    v
}

fn serial(client: &str, dns: &str) -> u64 {
    let soa = dx_ok(client, &format!("dig +short @{dns} {ZONE} SOA"));
    soa.split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no serial in SOA `{soa}`"))
}

#[test]
fn webfarm_playbook_on_real_hosts() {
    let c = Cluster::up("dtw", 4);
    let (dns, a, b, out) = (c.host(1), c.host(2), c.host(3), c.host(4));
    let (dns_ip, a_ip, b_ip) = (c.ip(1), c.ip(2), c.ip(3));
    let farm = [dns.clone(), a.clone(), b.clone()];
    // Test set-up, not under test: the hosts start without package lists;
    // the client gets its tools.
    for h in &farm {
        dx_ok(h, "apt-get update -q");
    }
    dx_ok(
        &out,
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -q bind9-dnsutils curl rsync",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write(dir.path(), "webfarm.ini", &inventory(&c));

    // --check on fresh hosts: changes predicted on every host, none made.
    let before: Vec<String> = farm.iter().map(|h| dx_ok(h, SNAPSHOT)).collect();
    let r = run_ok(PB, &inv, &["--check"]);
    for h in &farm {
        assert!(changed(&r, h) >= 5, "{h}: check predicted too little: {r}");
    }
    for (h, snap) in farm.iter().zip(&before) {
        assert_eq!(&dx_ok(h, SNAPSHOT), snap, "{h}: --check changed the host");
    }
    assert!(!installed(&dns, "bind9") && !installed(&a, "apache2"));
    assert!(!installed(&a, "xinetd") && !installed(&b, "rsync"));

    // The real run.
    let r = run_ok(PB, &inv, &[]);
    for h in &farm {
        assert!(changed(&r, h) >= 5, "{h}: {r}");
    }

    // WF-01: www resolves to both web servers, www1/www2 to one each, TTL 60.
    let mut web = vec![a_ip.clone(), b_ip.clone()];
    web.sort();
    assert_eq!(dig(&out, &dns_ip, &format!("www.{ZONE}")), web);
    assert_eq!(
        dig(&out, &dns_ip, &format!("www1.{ZONE}")),
        vec![a_ip.clone()]
    );
    assert_eq!(
        dig(&out, &dns_ip, &format!("www2.{ZONE}")),
        vec![b_ip.clone()]
    );
    let ttl = dx_ok(&out, &format!("dig +noall +answer @{dns_ip} www.{ZONE} A"));
    assert!(
        ttl.lines()
            .all(|l| l.split_whitespace().nth(1) == Some("60")),
        "{ttl}"
    );
    let s1 = serial(&out, &dns_ip);
    assert!(
        s1 > 2_000_000_000 && s1.is_multiple_of(100),
        "serial {s1} is not YYYYMMDD00"
    );

    // WF-02: the site answers on A and B for www.<zone> (B's copy came by rsync).
    for ip in [&a_ip, &b_ip] {
        let page = dx_ok(
            &out,
            &format!("curl -sf -H 'Host: www.{ZONE}' http://{ip}/"),
        );
        assert!(
            page.contains(&format!("www.{ZONE}: served by the web farm")),
            "{ip}: {page}"
        );
    }

    // WF-03/04: port 873 on A answers with the banner; B lists and reads the
    // module; a host outside `hosts allow` is refused.
    let banner = dx_ok(
        &b,
        &format!("bash -c 'exec 3<>/dev/tcp/{a_ip}/873; head -c 9 <&3'"),
    );
    assert_eq!(banner, "@RSYNCD: ");
    assert!(dx_ok(&b, &format!("rsync {a_ip}::")).contains("www"));
    let (rc, msg) = dx(&out, &format!("rsync {a_ip}::www/"));
    assert_ne!(rc, 0, "{msg}");
    assert!(msg.contains("access denied"), "{msg}");
    assert_eq!(
        dx_ok(
            &a,
            "ls /etc/xinetd.d/rsync && pgrep -x xinetd >/dev/null && echo up"
        )
        .trim_end(),
        "/etc/xinetd.d/rsync\nup"
    );

    // WF-05: the hourly script (0700) pulls new files and deletes removed ones.
    let script = "/etc/cron.hourly/webfarm-rsync";
    assert_eq!(dx_ok(&b, &format!("stat -c %a {script}")).trim(), "700");
    dx_ok(&a, &format!("echo fresh > {DOCROOT}/new.html"));
    dx_ok(&b, script);
    assert_eq!(dx_ok(&b, &format!("cat {DOCROOT}/new.html")), "fresh\n");
    // run-parts (what cron runs hourly) picks the script up.
    assert!(dx_ok(&b, "run-parts --test /etc/cron.hourly").contains(script));

    // Converged: a second run and --check change nothing.
    let r = run_ok(PB, &inv, &[]);
    for h in &farm {
        assert_eq!(changed(&r, h), 0, "{h}: second run: {r}");
    }
    let r = run_ok(PB, &inv, &["--check"]);
    for h in &farm {
        assert_eq!(changed(&r, h), 0, "{h}: check on the converged farm: {r}");
    }

    // A file deleted on A: --check predicts B's pull (dry run) and keeps the
    // file; the run deletes it on B; then nothing is left to change.
    dx_ok(&a, &format!("rm {DOCROOT}/new.html"));
    let r = run_ok(PB, &inv, &["--check"]);
    assert_eq!(changed(&r, &b), 1, "{r}");
    assert_eq!(changed(&r, &a), 0, "{r}");
    assert_eq!(dx(&b, &format!("test -e {DOCROOT}/new.html")).0, 0);
    let r = run_ok(PB, &inv, &[]);
    assert_eq!(changed(&r, &b), 1, "{r}");
    assert_ne!(
        dx(&b, &format!("test -e {DOCROOT}/new.html")).0,
        0,
        "not deleted on B"
    );
    let r = run_ok(PB, &inv, &[]);
    assert_eq!(changed(&r, &b), 0, "{r}");

    // WF-01: the serial moves only when the zone's content does.
    assert_eq!(serial(&out, &dns_ip), s1);
    let r = run_ok(PB, &inv, &["-e", "webfarm_ttl=120"]);
    assert!(changed(&r, &dns) >= 3, "{r}");
    assert_eq!(serial(&out, &dns_ip), s1 + 1);
    let ttl = dx_ok(&out, &format!("dig +noall +answer @{dns_ip} www.{ZONE} A"));
    assert!(
        ttl.lines()
            .all(|l| l.split_whitespace().nth(1) == Some("120")),
        "{ttl}"
    );
    let r = run_ok(PB, &inv, &["-e", "webfarm_ttl=120"]);
    assert_eq!(changed(&r, &dns), 0, "{r}");
    assert_eq!(serial(&out, &dns_ip), s1 + 1);

    // WF-06/07 cannot run here (no NFS server in this kernel), but their
    // tasks must render and plan: --check with webfarm_nfs=true predicts the
    // NFS changes on A and B only, and touches nothing.
    let before: Vec<String> = farm
        .iter()
        .map(|h| {
            dx_ok(
                h,
                &format!("{SNAPSHOT}; cat /etc/exports /etc/fstab 2>&1; true"),
            )
        })
        .collect();
    let r = run_ok(
        PB,
        &inv,
        &["--check", "-e", "webfarm_nfs=true", "-e", "webfarm_ttl=120"],
    );
    assert_eq!(changed(&r, &dns), 0, "{r}");
    assert!(changed(&r, &a) >= 4 && changed(&r, &b) >= 4, "{r}");
    for (h, snap) in farm.iter().zip(&before) {
        let now = dx_ok(
            h,
            &format!("{SNAPSHOT}; cat /etc/exports /etc/fstab 2>&1; true"),
        );
        assert_eq!(&now, snap, "{h}: --check changed the host");
    }
    assert!(!installed(&a, "nfs-kernel-server") && !installed(&b, "nfs-common"));

    // WF-03, standalone variant: the outside host becomes a second "A" with
    // the packaged rsync daemon (no xinetd); B may read it, and a second run
    // changes nothing.
    let inv2 = write(
        dir.path(),
        "standalone.ini",
        &inventory(&c)
            .replace(
                &format!("[web_master]\n{a} ansible_host={a_ip} web_addr={a_ip}"),
                &format!(
                    "[web_master]\n{out} ansible_host={o_ip} web_addr={o_ip}",
                    o_ip = c.ip(4)
                ),
            )
            .replace(
                "webfarm_rsync_daemon=xinetd",
                "webfarm_rsync_daemon=standalone",
            ),
    );
    let tags = ["--tags", "WF-03,WF-04"];
    let r = run_ok(PB, &inv2, &tags);
    assert!(changed(&r, &out) >= 3, "{r}");
    assert!(!installed(&out, "xinetd"));
    let banner = dx_ok(
        &b,
        &format!("bash -c 'exec 3<>/dev/tcp/{}/873; head -c 9 <&3'", c.ip(4)),
    );
    assert_eq!(banner, "@RSYNCD: ");
    assert!(dx_ok(&b, &format!("rsync {}::", c.ip(4))).contains("www"));
    let r = run_ok(PB, &inv2, &tags);
    assert_eq!(changed(&r, &out), 0, "{r}");
}
