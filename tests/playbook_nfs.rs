//! The NFS steps of the shipped playbooks on two QEMU VMs (cluster `dtj`,
//! `--vm 2`: Debian's kernel has the NFS server and client the containers
//! lack): WF-06/07 of `playbooks/webfarm` (`webfarm_nfs=true`, run with
//! `--tags WF-06,WF-07`: vm1 is web server A and exports its data directory
//! over TCP, vm2 is B and mounts it persistently by A's name from
//! `/etc/hosts`) and SF-10 of `playbooks/seafile` (`seafile_nfs=true`,
//! `--tags SF-10`: vm2 as an app node mounts the shared folder from vm1).
//! The VMs talk over the cluster's L2 network (eth1). Checks by OpenSSH:
//! `exportfs`, `findmnt`, files written on one VM and read on the other,
//! `umount` then `mount` from fstab.

#[path = "support/playbook.rs"]
mod support;

use support::*;

const WEBFARM: &str = "playbooks/webfarm/site.yml";
const SEAFILE: &str = "playbooks/seafile/site.yml";
const DATA: &str = "/localData";
const SHARED: &str = "/data/shared";
const A_NAME: &str = "nfs-a.farm.test";

fn webfarm_inventory(c: &Cluster) -> String {
    format!(
        "[dns]\n[web_master]\n{a} web_addr={aip}\n\
         [web_mirror]\n{b} web_addr={bip}\n\
         [web:children]\nweb_master\nweb_mirror\n\
         [webfarm:children]\ndns\nweb\n\
         [webfarm:vars]\n{conn}\
         webfarm_zone=farm.test\nwebfarm_ns_name=ns.farm.test\nwebfarm_hostmaster=root.farm.test\n\
         webfarm_ttl=60\nwebfarm_docroot=/usr/local/localhostSource\nwebfarm_rsync_daemon=xinetd\n\
         webfarm_rsync_module=www\nwebfarm_rsync_comment=webservice-dir\n\
         webfarm_rsync_uid=root\nwebfarm_rsync_gid=root\n\
         webfarm_rsync_max_connections=1\nwebfarm_rsync_timeout=300\n\
         webfarm_nfs=true\nwebfarm_nfs_dir={DATA}\nwebfarm_nfs_server_name={A_NAME}\n",
        a = c.vm_line("vm1"),
        aip = c.vm_addr("vm1"),
        b = c.vm_line("vm2"),
        bip = c.vm_addr("vm2"),
        conn = c.conn_vars(),
    )
}

fn seafile_inventory(c: &Cluster) -> String {
    format!(
        "[lb]\n[db]\n\
         [seafile]\n{b} seafile_addr={bip}\n\
         [memcached:children]\nseafile\n\
         [seafile_cluster:children]\nlb\ndb\nseafile\n\
         [controller]\nlocalhost ansible_connection=local\n\
         [seafile_cluster:vars]\n{conn}\
         [all:vars]\n\
         seafile_min_memory_mb=256\nseafile_memcached_memory_mb=256\nseafile_galera=false\n\
         seafile_top=/opt/seafile\nseafile_tarball=/nonexistent/seafile.tar.gz\nseafile_license_file=\n\
         seafile_server_name=seafile.test\nseafile_health_port=11001\nseafile_seahub_port=8000\n\
         seafile_lb_check_interval=1s\nseafile_shared_dir={SHARED}\nseafile_nfs=true\n\
         seafile_nfs_src={A_NAME}:{DATA}\nseafile_db_ccnet=ccnet_db\nseafile_db_seafile=seafile_db\n\
         seafile_db_seahub=seahub_db\nseafile_db_user=seafile\nseafile_db_password=Sf-test-pw\n\
         seafile_cert_dir=/nonexistent\n",
        b = c.vm_line("vm2"),
        bip = c.vm_addr("vm2"),
        conn = c.conn_vars(),
    )
}

const SNAPSHOT: &str = "dpkg-query -W -f '${Package} ${Status}\\n' | sort; \
    cat /etc/hosts /etc/fstab /etc/exports /etc/nfs.conf 2>&1; ls -1 / /data 2>&1; \
    findmnt -rn -t nfs,nfs4; true";

#[test]
fn nfs_steps_on_two_vms() {
    let c = Cluster::up_with("dtj", 1, &["--vm", "2"]);
    let (a, b) = ("vm1", "vm2");
    let a_ip = c.vm_addr(a);
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = write(dir.path(), "webfarm.ini", &webfarm_inventory(&c));
    let tags = ["--tags", "WF-06,WF-07"];

    // --check: predicted on both, nothing touched.
    let before = [c.vx_ok(a, SNAPSHOT), c.vx_ok(b, SNAPSHOT)];
    let mut args = tags.to_vec();
    args.push("--check");
    let r = run_ok(WEBFARM, &inv, &args);
    assert!(changed(&r, a) >= 4, "A: {r}");
    assert!(changed(&r, b) >= 4, "B: {r}");
    assert_eq!(c.vx_ok(a, SNAPSHOT), before[0], "--check changed A");
    assert_eq!(c.vx_ok(b, SNAPSHOT), before[1], "--check changed B");

    // The real run.
    let r = run_ok(WEBFARM, &inv, &tags);
    assert!(changed(&r, a) >= 4 && changed(&r, b) >= 4, "{r}");

    // WF-06: A exports the directory to B only; NFS over TCP (no UDP).
    let ex = c.vx_ok(a, "exportfs -v");
    assert!(ex.contains(DATA) && ex.contains(&c.vm_addr(b)), "{ex}");
    assert!(ex.contains("no_root_squash"), "{ex}");
    let conf = c.vx_ok(
        a,
        "sed -n '/^\\[nfsd\\]/,/^\\[/p' /etc/nfs.conf | tr -d ' '",
    );
    assert!(conf.lines().any(|l| l == "udp=n"), "{conf}");
    assert_eq!(
        c.vx_ok(a, "systemctl is-enabled nfs-server").trim(),
        "enabled"
    );
    // WF-07: A's name in B's /etc/hosts, the fstab line, mounted over TCP.
    assert!(c
        .vx_ok(b, "cat /etc/hosts")
        .lines()
        .any(|l| l == format!("{a_ip} {A_NAME}")));
    assert!(c
        .vx_ok(b, "cat /etc/fstab")
        .contains(&format!("{A_NAME}:{DATA} {DATA} nfs proto=tcp,_netdev 0 0")));
    let m = c.vx_ok(b, &format!("findmnt -rn -o SOURCE,OPTIONS {DATA}"));
    assert!(
        m.starts_with(&format!("{A_NAME}:{DATA} ")) && m.contains("proto=tcp"),
        "{m}"
    );
    // A file written on A is read on B, and one written on B appears on A.
    c.vx_ok(a, &format!("echo from-A > {DATA}/a.txt"));
    assert_eq!(c.vx_ok(b, &format!("cat {DATA}/a.txt")), "from-A\n");
    c.vx_ok(b, &format!("echo from-B > {DATA}/b.txt"));
    assert_eq!(c.vx_ok(a, &format!("cat {DATA}/b.txt")), "from-B\n");

    // Converged.
    let r = run_ok(WEBFARM, &inv, &tags);
    assert_eq!((changed(&r, a), changed(&r, b)), (0, 0), "second run: {r}");

    // Persistent: after umount, `mount DIR` finds everything in fstab.
    c.vx_ok(b, &format!("umount {DATA}"));
    assert_ne!(c.vx(b, &format!("mountpoint -q {DATA}")).0, 0);
    c.vx_ok(b, &format!("mount {DATA}"));
    assert_eq!(c.vx_ok(b, &format!("cat {DATA}/a.txt")), "from-A\n");
    // Unmounted again, the playbook mounts it back (one change), then rests.
    c.vx_ok(b, &format!("umount {DATA}"));
    let r = run_ok(WEBFARM, &inv, &tags);
    assert_eq!(changed(&r, b), 1, "{r}");
    assert_eq!(c.vx_ok(b, &format!("cat {DATA}/b.txt")), "from-B\n");
    let r = run_ok(WEBFARM, &inv, &tags);
    assert_eq!(changed(&r, b), 0, "{r}");

    // SF-10: the Seafile app node mounts the shared folder from A (the same
    // export, by A's name) with the mount module; fstab line, live mount.
    let sinv = write(dir.path(), "seafile.ini", &seafile_inventory(&c));
    let r = run_ok(SEAFILE, &sinv, &["--tags", "SF-10"]);
    assert!(changed(&r, b) >= 1, "{r}");
    let m = c.vx_ok(b, &format!("findmnt -rn -o SOURCE,FSTYPE {SHARED}"));
    assert!(m.starts_with(&format!("{A_NAME}:{DATA} nfs")), "{m}");
    assert!(c
        .vx_ok(b, "cat /etc/fstab")
        .contains(&format!("{A_NAME}:{DATA} {SHARED} nfs")));
    c.vx_ok(a, &format!("echo shared > {DATA}/thumb.txt"));
    assert_eq!(c.vx_ok(b, &format!("cat {SHARED}/thumb.txt")), "shared\n");
    let r = run_ok(SEAFILE, &sinv, &["--tags", "SF-10"]);
    assert_eq!(changed(&r, b), 0, "SF-10 second run: {r}");
}
