//! The shipped Seafile cluster playbook (`playbooks/seafile`, steps SF-01..15
//! of `playbooks/STEPS.md`) against three real test hosts (cluster `dte`):
//! dte1 is the HAProxy load balancer and the MariaDB host, dte2 and dte3 are
//! the Seafile app nodes (each with memcached and nginx). The Seafile server
//! tarball is proprietary, so the test builds a small STAND-IN tarball whose
//! `seafile.sh` starts a listener on the health port 11001 and whose
//! `seahub.sh` serves a page with `python3 -m http.server` on 8000 — it is
//! not Seafile. Every end state is checked with independent clients
//! (`docker exec`, the mysql client, raw memcached `stats`, curl through
//! HAProxy, openssl). Needs Docker and root; fails (never skips) without them.

#[path = "support/playbook.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::Command;
use support::*;

const PB: &str = "playbooks/seafile/site.yml";
const TOP: &str = "/data/haiwen";

const SEAFILE_SH: &str = r#"#!/bin/sh
# STAND-IN for Seafile's seafile.sh (drover test only): a listener on the
# health-check port.
cd "$(dirname "$0")" || exit 1
pidf=../pids/seafile.pid
case "$1" in
start)
    mkdir -p ../pids ../logs
    if [ -f $pidf ] && kill -0 "$(cat $pidf)" 2>/dev/null; then exit 0; fi
    setsid python3 -m http.server 11001 --bind 0.0.0.0 --directory www </dev/null >../logs/seafile.log 2>&1 &
    echo $! > $pidf ;;
stop)
    [ -f $pidf ] && kill "$(cat $pidf)" 2>/dev/null; rm -f $pidf ;;
restart)
    sh ./seafile.sh stop; sleep 1; sh ./seafile.sh start ;;
esac
"#;

const SEAHUB_SH: &str = r#"#!/bin/sh
# STAND-IN for Seafile's seahub.sh (drover test only): a page on port 8000.
cd "$(dirname "$0")" || exit 1
pidf=../pids/seahub.pid
case "$1" in
start)
    mkdir -p ../pids ../logs
    if [ -f $pidf ] && kill -0 "$(cat $pidf)" 2>/dev/null; then exit 0; fi
    setsid python3 -m http.server 8000 --bind 127.0.0.1 --directory www </dev/null >../logs/seahub.log 2>&1 &
    echo $! > $pidf ;;
stop)
    [ -f $pidf ] && kill "$(cat $pidf)" 2>/dev/null; rm -f $pidf ;;
restart)
    sh ./seahub.sh stop; sleep 1; sh ./seahub.sh start ;;
esac
"#;

/// The stand-in server tarball (see the file comment).
fn stand_in_tarball(dir: &std::path::Path) -> String {
    let src = dir.join("src/seafile-server-latest");
    std::fs::create_dir_all(src.join("www")).expect("mkdir");
    write(&src, "seafile.sh", SEAFILE_SH);
    write(&src, "seahub.sh", SEAHUB_SH);
    write(&src.join("www"), "index.html", "stand-in seahub\n");
    let o = Command::new("chmod")
        .args(["0755"])
        .arg(src.join("seafile.sh"))
        .arg(src.join("seahub.sh"))
        .output()
        .expect("chmod");
    assert!(o.status.success());
    let tgz = dir.join("seafile-server.tar.gz");
    let o = Command::new("tar")
        .args(["czf", &tgz.display().to_string(), "-C"])
        .arg(dir.join("src"))
        .arg("seafile-server-latest")
        .output()
        .expect("tar");
    assert!(o.status.success(), "tar: {}", text(&o));
    tgz.display().to_string()
}

fn inventory(c: &Cluster, tarball: &str, cert_dir: &str) -> String {
    format!(
        "[lb]\n{l} ansible_host={lip} seafile_addr={lip}\n\
         [db]\n{l}\n\
         [seafile]\n{a} ansible_host={aip} seafile_addr={aip}\n{b} ansible_host={bip} seafile_addr={bip}\n\
         [memcached:children]\nseafile\n\
         [seafile_cluster:children]\nlb\ndb\nseafile\n\
         [controller]\nlocalhost ansible_connection=local\n\
         [seafile_cluster:vars]\n{conn}\
         [all:vars]\n\
         seafile_min_memory_mb=256\nseafile_memcached_memory_mb=256\nseafile_galera=false\n\
         seafile_top={TOP}\nseafile_tarball={tarball}\nseafile_license_file=\n\
         seafile_server_name=seafile.test\nseafile_health_port=11001\nseafile_seahub_port=8000\n\
         seafile_lb_check_interval=1s\nseafile_shared_dir=/data/shared\nseafile_nfs=false\n\
         seafile_nfs_src=nfs.test:/export\nseafile_db_ccnet=ccnet_db\nseafile_db_seafile=seafile_db\n\
         seafile_db_seahub=seahub_db\nseafile_db_user=seafile\nseafile_db_password=Sf-test-pw\n\
         seafile_cert_dir={cert_dir}\n",
        l = c.host(1),
        lip = c.ip(1),
        a = c.host(2),
        aip = c.ip(2),
        b = c.host(3),
        bip = c.ip(3),
        conn = c.conn_vars(),
    )
}

/// What the playbook could change on a host, for "check touched nothing".
/// (Names only: directory link counts move by themselves on overlayfs.)
const SNAPSHOT: &str = "dpkg-query -W -f '${Package} ${Status}\\n' | sort; \
    ls -1R /data 2>&1; ls -1 /etc/nginx/sites-enabled /etc/haproxy /etc/ssl /etc/mysql 2>&1; \
    cat /etc/memcached.conf 2>&1; nft list ruleset 2>&1; true";

/// Raw memcached `stats` from `client` to `ip`:11211.
fn mc_stats(client: &str, ip: &str) -> (i32, String) {
    dx(
        client,
        &format!(
            "timeout 5 bash -c 'exec 3<>/dev/tcp/{ip}/11211 && printf \"stats\\r\\nquit\\r\\n\" >&3 && cat <&3'"
        ),
    )
}

/// The `X-Seafile-Node` of one request through the load balancer.
fn lb_node(client: &str, url: &str) -> String {
    let out = dx_ok(client, &format!("curl -sfk -D - -o /dev/null {url}"));
    // HAProxy (HTTP mode) sends header names in lower case.
    out.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-seafile-node: ")
                .then(|| l["x-seafile-node: ".len()..].to_string())
        })
        .unwrap_or_else(|| panic!("no X-Seafile-Node in {out}"))
        .trim()
        .to_string()
}

#[test]
fn seafile_playbook_on_real_hosts() {
    let c = Cluster::up("dte", 3);
    let (lb, a, b) = (c.host(1), c.host(2), c.host(3));
    let all = [lb.clone(), a.clone(), b.clone()];
    // Test set-up, not under test: package lists; curl on the LB host (client).
    for h in &all {
        dx_ok(h, "apt-get update -q");
    }
    dx_ok(
        &lb,
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tarball = stand_in_tarball(dir.path());
    let cert_dir = dir.path().join("cert").display().to_string();
    let inv = write(
        dir.path(),
        "seafile.ini",
        &inventory(&c, &tarball, &cert_dir),
    );

    // SF-01: a host under the minimum fails the play early, before any change.
    let before: Vec<String> = all.iter().map(|h| dx_ok(h, SNAPSHOT)).collect();
    let o = drover(&[
        "run",
        PB,
        "-i",
        &inv,
        "-e",
        "seafile_min_memory_mb=100000000",
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("below the 100000000 MB"), "{}", text(&o));

    // --check on fresh hosts: changes predicted, none made.
    let r = run_ok(PB, &inv, &["--check"]);
    for h in &all {
        assert!(changed(&r, h) >= 3, "{h}: check predicted too little: {r}");
    }
    for (h, snap) in all.iter().zip(&before) {
        assert_eq!(&dx_ok(h, SNAPSHOT), snap, "{h}: --check changed the host");
    }

    // The real run.
    let r = run_ok(PB, &inv, &[]);
    for h in &all {
        assert!(changed(&r, h) >= 3, "{h}: {r}");
    }

    // SF-03: memcached edited in place, answering `stats` from the other node.
    for h in [&a, &b] {
        let conf = dx_ok(h, "grep -E '^-(l|m) ' /etc/memcached.conf");
        assert_eq!(conf, "-m 256\n-l 0.0.0.0\n", "{h}");
    }
    let (rc, st) = mc_stats(&b, &c.ip(2));
    assert!(
        rc == 0 && st.contains("STAT limit_maxbytes 268435456"),
        "{st}"
    );
    // SF-14: 11211 refused from the LB (not a Seafile node).
    let (rc, st) = mc_stats(&lb, &c.ip(2));
    assert!(rc != 0 && !st.contains("STAT pid"), "{rc} {st}");

    // SF-09: the table, read by the mysql client.
    let t = dx_ok(
        &lb,
        "mysql -N -e 'SHOW CREATE TABLE seahub_db.avatar_uploaded'",
    );
    for want in [
        "`filename` text NOT NULL",
        "`filename_md5` char(32) NOT NULL",
        "`data` mediumtext NOT NULL",
        "`size` int(11) NOT NULL",
        "`mtime` datetime NOT NULL",
        "PRIMARY KEY (`filename_md5`)",
    ] {
        assert!(t.contains(want), "{want} not in {t}");
    }

    // SF-05..08, SF-12: identical configuration on both nodes.
    let sums = format!(
        "cd {TOP} && sha256sum conf/ccnet.conf conf/seafile.conf conf/seahub_settings.py \
         conf/seafevents.conf seafile-server-latest/seafile.sh seafile-server-latest/seahub.sh"
    );
    let (sa, sb) = (dx_ok(&a, &sums), dx_ok(&b, &sums));
    assert_eq!(sa, sb);
    let conf = dx_ok(&a, &format!("cat {TOP}/conf/seafile.conf {TOP}/conf/seahub_settings.py {TOP}/conf/ccnet.conf {TOP}/conf/seafevents.conf"));
    for want in [
        "[cluster]".to_string(),
        "enabled = true".to_string(),
        format!(
            "memcached_options = --SERVER={} --SERVER={} --POOL-MIN=10 --POOL-MAX=100",
            c.ip(2),
            c.ip(3)
        ),
        "health_check_port = 11001".to_string(),
        format!("'{}:11211', '{}:11211'", c.ip(2), c.ip(3)),
        "AVATAR_FILE_STORAGE = 'seahub.base.database_storage.DatabaseStorage'".to_string(),
        "SERVICE_URL = https://seafile.test".to_string(),
        "[INDEX FILES]".to_string(),
        "external_es_server = true".to_string(),
    ] {
        assert!(conf.contains(&want), "{want} not in {conf}");
    }
    // SF-02: boto3 importable.
    for h in [&a, &b] {
        dx_ok(h, "python3 -c 'import boto3, memcache'");
    }

    // SF-13: the same certificate on every node, the one made on the controller.
    let fp = "openssl x509 -noout -fingerprint -sha256 -in /etc/ssl/seafile/seafile.crt";
    let fa = dx_ok(&a, fp);
    assert_eq!(fa, dx_ok(&b, fp));
    let local = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(format!("{cert_dir}/seafile.crt"))
        .output()
        .expect("openssl");
    assert_eq!(String::from_utf8_lossy(&local.stdout), fa);

    // SF-15: through HAProxy, http and https, both backends answer.
    let lb_ip = c.ip(1);
    let http = format!("http://{lb_ip}/");
    let https = format!("https://{lb_ip}/");
    assert_eq!(
        dx_ok(&lb, &format!("curl -sfk {https}")),
        "stand-in seahub\n"
    );
    let seen: BTreeSet<String> = (0..6).map(|_| lb_node(&lb, &http)).collect();
    assert_eq!(seen, BTreeSet::from([a.clone(), b.clone()]), "{seen:?}");

    // Converged: a second run changes nothing.
    let r = run_ok(PB, &inv, &[]);
    for h in &all {
        assert_eq!(changed(&r, h), 0, "{h}: second run: {r}");
    }

    // A stopped health listener takes its backend out; the LB still serves.
    dx_ok(
        &a,
        &format!("cd {TOP}/seafile-server-latest && ./seafile.sh stop"),
    );
    let mut only_b = 0;
    for _ in 0..60 {
        let n = lb_node(&lb, &http);
        only_b = if n == b { only_b + 1 } else { 0 };
        if only_b >= 6 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(only_b >= 6, "HAProxy kept sending to the stopped backend");
    assert_eq!(lb_node(&lb, &https), b);
}
