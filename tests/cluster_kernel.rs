//! Cluster test of the kernel-side modules (`sysctl`, `modprobe`, `kernel`,
//! `ipvs`) on the QEMU VM of cluster `dtx` (`cluster.sh up 1 --vm`: one
//! container, dtx1, for the read-only `/proc/sys` case, plus vm1 with a real
//! kernel). One VM boot, one test function: the VM runs under TCG here, so
//! every boot costs a minute or more. Results are checked independently over OpenSSH
//! (`ipvsadm -Ln`, `lsmod`, `/proc/sys`, files) and with `docker exec`. The
//! LVS traffic check builds the real servers and a client as network
//! namespaces inside the VM (veth + a bridge; each real server with the VIP
//! on `lo` and `arp_ignore=1`/`arp_announce=2`, answering HTTP with its
//! name), so a request to the VIP goes through IPVS direct routing for real.
//! At the end the VM is rebooted once by the `reboot` module (when `kernel`
//! reports a reboot required) to prove the boot-time state and the engine's
//! re-dial. Needs Docker, qemu and root; fails (never skips) without them.

#[path = "support/playbook.rs"]
mod support;
#[path = "support/vm.rs"]
mod vm;

use std::time::{Duration, Instant};
use vm::{drover, norm_lines, play, recap, root, run, sh, text, Vm};

const VM: &str = "vm1";
const CT: &str = "dtx1";

const SYSCTLS: &str = "    - sysctl: {name: net.ipv4.ip_forward, value: '1', sysctl_file: /etc/sysctl.d/60-lvs.conf}\n    - sysctl: {name: net.ipv4.conf.all.arp_ignore, value: '1', sysctl_file: /etc/sysctl.d/60-lvs.conf}\n    - sysctl: {name: net.ipv4.conf.all.arp_announce, value: '2', sysctl_file: /etc/sysctl.d/60-lvs.conf}\n";
const PROC: &str = "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/arp_ignore /proc/sys/net/ipv4/conf/all/arp_announce";
const LV05_TABLE: &str = "Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.77.0.100:80 lc persistent 360
  -> 10.77.0.12:80                Route   100    0          0
  -> 10.77.0.13:80                Route   200    0          0
  -> 10.77.0.14:80                Route   200    0          0
";

fn lv05(reals: &[(&str, u32)]) -> String {
    let mut s = String::from(
        "    - ipvs:\n        services:\n          - protocol: tcp\n            address: 10.77.0.100\n            port: 80\n            scheduler: lc\n            persistent: 360\n            reals:\n",
    );
    for (a, w) in reals {
        s.push_str(&format!(
            "              - {{address: {a}, port: 80, forwarding: route, weight: {w}}}\n"
        ));
    }
    s
}

/// Real servers rs2..rs4 (10.77.0.12-14) and a client (10.77.0.50) as
/// network namespaces on bridge br-lvs (the director is 10.77.0.1 and holds
/// the VIP on lo); each real server has the VIP on its lo, the ARP sysctls
/// of LV-03 and a python http.server answering its name.
const NETNS: &str = r#"set -e
ip link add br-lvs type bridge && ip addr add 10.77.0.1/24 dev br-lvs && ip link set br-lvs up
ip addr add 10.77.0.100/32 dev lo
mk() { ip netns add $1; ip link add v-$1 type veth peer name eth0 netns $1
  ip link set v-$1 master br-lvs up; ip -n $1 addr add $2/24 dev eth0
  ip -n $1 link set eth0 up; ip -n $1 link set lo up; }
for i in 2 3 4; do
  mk rs$i 10.77.0.1$i
  ip -n rs$i addr add 10.77.0.100/32 dev lo
  ip netns exec rs$i sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  mkdir -p /srv/rs$i && echo rs$i > /srv/rs$i/index.html
  setsid ip netns exec rs$i python3 -m http.server 80 --directory /srv/rs$i </dev/null >/dev/null 2>&1 &
done
mk cl 10.77.0.50
ip -n cl route add 10.77.0.100/32 via 10.77.0.1
"#;
const FETCH: &str = "ip netns exec cl python3 -c \"import urllib.request as u; print(u.urlopen('http://10.77.0.100/', timeout=10).read().decode().strip())\"";

#[test]
fn sysctl_modprobe_kernel_and_lvs_on_the_vm() {
    let t0 = Instant::now();
    let state = root().join("tests/hosts/.state/dtx");
    // DROVER_REUSE_FRESH_VM=1 (by hand only, never in CI): use a cluster
    // `dtx` that was just brought up and not touched yet, saving a boot.
    let reuse = std::env::var("DROVER_REUSE_FRESH_VM").as_deref() == Ok("1")
        && state.join("vm1.port").exists();
    if !reuse {
        let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", "dtx"]);
        let o = sh(
            "bash",
            &["tests/hosts/cluster.sh", "up", "1", "--vm", "--name", "dtx"],
        );
        assert!(o.status.success(), "cluster.sh up failed: {}", text(&o));
        let boot = text(&o);
        let boot = boot.lines().filter(|l| l.contains("vm1"));
        eprintln!(
            "cluster up (with VM boot): {:?}; {}",
            t0.elapsed(),
            boot.collect::<Vec<_>>().join(" | ")
        );
    }
    let vm = Vm {
        port: std::fs::read_to_string(state.join("vm1.port"))
            .unwrap()
            .trim()
            .to_string(),
        state: state.clone(),
    };
    // The VM is slow under TCG: give connections time.
    let inv_text = std::fs::read_to_string(state.join("inventory.ini"))
        .unwrap()
        .replace("[all:vars]\n", "[all:vars]\nansible_timeout=60\n");
    let dir = tempfile::tempdir().unwrap();
    let inv_path = dir.path().join("inventory.ini");
    std::fs::write(&inv_path, inv_text).unwrap();
    let inv = inv_path.display().to_string();

    // --- sysctl: --check first touches neither /proc nor the file.
    let before = vm.out(PROC);
    assert_eq!(norm_lines(&before), ["0", "0", "0"], "fresh VM values");
    let sysctl = play(dir.path(), "sysctl.yml", "vms", SYSCTLS);
    let o = run(&sysctl, &inv, &["--check", "--diff"], VM, 0, 3);
    assert!(text(&o).contains("arp_announce"), "{}", text(&o));
    assert_eq!(vm.out(PROC), before);
    assert!(!vm.ssh("test -e /etc/sysctl.d/60-lvs.conf").status.success());
    run(&sysctl, &inv, &[], VM, 0, 3);
    assert_eq!(norm_lines(&vm.out(PROC)), ["1", "1", "2"]);
    assert_eq!(
        vm.out("cat /etc/sysctl.d/60-lvs.conf"),
        "net.ipv4.ip_forward=1\nnet.ipv4.conf.all.arp_ignore=1\nnet.ipv4.conf.all.arp_announce=2\n"
    );
    run(&sysctl, &inv, &[], VM, 0, 0);
    // Drift in /proc alone is seen and fixed; the file is left as it is.
    vm.out("sysctl -q -w net.ipv4.conf.all.arp_ignore=0");
    run(&sysctl, &inv, &[], VM, 0, 1);
    assert_eq!(norm_lines(&vm.out(PROC)), ["1", "1", "2"]);

    // In a docker container /proc/sys is read-only: a clear failure, no file.
    let ro = play(
        dir.path(),
        "ro.yml",
        "testhosts",
        "    - sysctl: {name: net.ipv4.ip_forward, value: '0'}\n",
    );
    let o = drover(&["run", &ro, "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("/proc/sys/net/ipv4/ip_forward is read-only on this host"),
        "{}",
        text(&o)
    );
    assert_eq!(recap(&o)[CT]["failed"], 1);
    let ct = sh(
        "docker",
        &[
            "exec",
            CT,
            "sh",
            "-c",
            "test ! -e /etc/sysctl.d/99-drover.conf && cat /proc/sys/net/ipv4/ip_forward",
        ],
    );
    assert_eq!(
        text(&ct).trim(),
        "1",
        "container file written or value changed"
    );
    net_sysctls_in_container(dir.path(), &inv);

    // --- modprobe: ip_vs and the lc scheduler, now and at boot.
    assert!(!vm.out("cat /proc/modules").contains("ip_vs"));
    let modp = play(
        dir.path(),
        "modprobe.yml",
        "vms",
        "    - modprobe: {name: ip_vs, persistent: present}\n    - modprobe: {name: ip_vs_lc, persistent: present}\n    - modprobe: {name: dummy, persistent: present}\n",
    );
    run(&modp, &inv, &["--check"], VM, 0, 3);
    let mods = vm.out("cat /proc/modules");
    assert!(!mods.contains("ip_vs") && !mods.contains("dummy"), "{mods}");
    assert!(!vm
        .ssh("test -e /etc/modules-load.d/dummy.conf")
        .status
        .success());
    run(&modp, &inv, &[], VM, 0, 3);
    let lsmod = vm.out("lsmod");
    assert!(lsmod.lines().any(|l| l.starts_with("ip_vs ")), "{lsmod}");
    assert!(lsmod.lines().any(|l| l.starts_with("ip_vs_lc ")), "{lsmod}");
    assert_eq!(vm.out("cat /etc/modules-load.d/ip_vs.conf"), "ip_vs\n");
    assert_eq!(
        vm.out("cat /etc/modules-load.d/ip_vs_lc.conf"),
        "ip_vs_lc\n"
    );
    assert!(lsmod.lines().any(|l| l.starts_with("dummy ")), "{lsmod}");
    run(&modp, &inv, &[], VM, 0, 0);

    // --- kernel: the running release passes 5.10 and fails 99.0.
    let release = vm.out("uname -r").trim().to_string();
    let k = play(
        dir.path(),
        "kernel.yml",
        "vms",
        "    - kernel: {min_version: '5.10'}\n      register: k\n    - debug: {msg: \"release={{k.release}}\"}\n",
    );
    let o = run(&k, &inv, &[], VM, 0, 0);
    assert!(
        text(&o).contains(&format!("release={release}")),
        "{}",
        text(&o)
    );
    // The gathered fact says the same.
    let facts = dir.path().join("facts.yml");
    std::fs::write(
        &facts,
        "- hosts: vms\n  tasks:\n    - debug: {msg: \"fact={{ansible_kernel}}\"}\n",
    )
    .unwrap();
    let o = run(&facts.display().to_string(), &inv, &[], VM, 0, 0);
    assert!(
        text(&o).contains(&format!("fact={release}")),
        "{}",
        text(&o)
    );
    let k99 = play(
        dir.path(),
        "k99.yml",
        "vms",
        "    - kernel: {min_version: '99.0'}\n",
    );
    let o = drover(&["run", &k99, "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "running kernel {release} is older than min_version 99.0"
        )),
        "{}",
        text(&o)
    );

    // --- LVS (LV-04/LV-05): ipvsadm from the local repository, an older
    // table to back up, then the LV-05 table.
    let apt = play(
        dir.path(),
        "apt.yml",
        "vms",
        "    - apt: {name: ipvsadm, update_cache: yes}\n",
    );
    let t1 = Instant::now();
    run(&apt, &inv, &[], VM, 0, 1);
    eprintln!("apt-get install ipvsadm on the VM: {:?}", t1.elapsed());
    vm.out("ipvsadm -C && ipvsadm -A -t 10.9.9.9:8080 -s rr && rm -f /var/backups/ipvsadm-*.rules /etc/ipvsadm.rules");
    let old = vm.out("ipvsadm -Ln");
    let full = lv05(&[
        ("10.77.0.12", 100),
        ("10.77.0.13", 200),
        ("10.77.0.14", 200),
    ]);
    let lvs = play(dir.path(), "lvs.yml", "vms", &full);
    run(&lvs, &inv, &["--check", "--diff"], VM, 0, 1);
    assert_eq!(vm.out("ipvsadm -Ln"), old, "--check changed the table");
    assert_eq!(
        vm.out("ls /var/backups | grep -c '^ipvsadm-' || true")
            .trim(),
        "0"
    );
    run(&lvs, &inv, &[], VM, 0, 1);
    assert_eq!(
        norm_lines(&vm.out("ipvsadm -Ln -t 10.77.0.100:80")),
        norm_lines(LV05_TABLE)
    );
    let backup = vm.out("cat /var/backups/ipvsadm-*.rules");
    assert_eq!(backup, "-A -t 10.9.9.9:8080 -s rr\n", "old table backup");
    let rules = vm.out("cat /etc/ipvsadm.rules");
    assert!(
        rules.contains(
            "-A -t 10.77.0.100:80 -s lc -p 360\n-a -t 10.77.0.100:80 -r 10.77.0.12:80 -g -w 100\n"
        ),
        "{rules}"
    );
    assert!(rules.contains("-A -t 10.9.9.9:8080 -s rr\n"), "{rules}");
    run(&lvs, &inv, &[], VM, 0, 0);

    // A request to the VIP reaches a real server through IPVS (route).
    vm.out(NETNS);
    let until = Instant::now() + Duration::from_secs(120);
    let answer = loop {
        let o = vm.ssh(FETCH);
        if o.status.success() {
            break String::from_utf8_lossy(&o.stdout).trim().to_string();
        }
        assert!(
            Instant::now() < until,
            "no answer through the VIP: {}",
            text(&o)
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(["rs2", "rs3", "rs4"].contains(&answer.as_str()), "{answer}");
    let conns = vm.out("ipvsadm -Lnc");
    assert!(
        conns.contains("10.77.0.50:"),
        "no IPVS connection entry: {conns}"
    );

    // A real server dropped from the vars is removed from the table.
    let two = play(
        dir.path(),
        "lvs2.yml",
        "vms",
        &lv05(&[("10.77.0.12", 100), ("10.77.0.13", 200)]),
    );
    run(&two, &inv, &[], VM, 0, 1);
    let t = vm.out("ipvsadm -Ln -t 10.77.0.100:80");
    assert!(!t.contains("10.77.0.14"), "{t}");
    assert!(
        t.contains("10.77.0.12:80") && t.contains("10.77.0.13:80"),
        "{t}"
    );
    run(&two, &inv, &[], VM, 0, 0);

    reboot_when_required(&vm, dir.path(), &inv);

    let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", "dtx"]);
    eprintln!("whole test: {:?}", t0.elapsed());
}

/// A package flagged a reboot (Debian's `/run/reboot-required`): `kernel`
/// reports it, `reboot` (when required) reboots the VM and waits for a new
/// boot id over a re-dialled connection, and the tasks after it run on the
/// new boot. What was made persistent comes back: the modules of
/// modules-load.d (`dummy` is loaded by nothing else) and the sysctl.d
/// values. The second run reboots nothing.
fn reboot_when_required(vm: &Vm, dir: &std::path::Path, inv: &str) {
    const BOOT_ID: &str = "cat /proc/sys/kernel/random/boot_id";
    vm.out(
        "echo linux-image-6.1.0-99-amd64 >/run/reboot-required.pkgs && touch /run/reboot-required",
    );
    let boot0 = vm.out(BOOT_ID);
    let pb = play(
        dir,
        "reboot.yml",
        "vms",
        "    - kernel: {}\n      register: k\n    - reboot: {reboot_timeout: 1500, connect_timeout: 30}\n      when: k.reboot_required\n      register: rb\n    - kernel: {}\n      register: k2\n    - debug: {msg: \"after: required={{k2.reboot_required}}\"}\n",
    );
    let o = run(&pb, inv, &["--check", "--diff"], VM, 0, 1);
    assert!(text(&o).contains("a new boot id"), "{}", text(&o));
    assert_eq!(vm.out(BOOT_ID), boot0, "--check rebooted the VM");
    assert!(vm.ssh("test -e /run/reboot-required").status.success());
    let t = Instant::now();
    let o = run(&pb, inv, &[], VM, 0, 1);
    eprintln!("reboot (down, boot, re-dial): {:?}", t.elapsed());
    assert!(text(&o).contains("after: required=false"), "{}", text(&o));
    let boot1 = vm.out(BOOT_ID);
    assert_ne!(boot1, boot0, "the boot id did not change");
    let lsmod = vm.out("lsmod");
    for m in ["ip_vs ", "ip_vs_lc ", "dummy "] {
        assert!(
            lsmod.lines().any(|l| l.starts_with(m)),
            "{m}after reboot: {lsmod}"
        );
    }
    assert_eq!(
        norm_lines(&vm.out(PROC)),
        ["1", "1", "2"],
        "sysctl.d at boot"
    );
    assert!(!vm.ssh("test -e /run/reboot-required").status.success());
    let o = run(&pb, inv, &[], VM, 0, 0);
    assert!(text(&o).contains("after: required=false"), "{}", text(&o));
    assert_eq!(vm.out(BOOT_ID), boot1, "second run rebooted again");
}

/// Namespaced sysctls in a container: with `/proc/sys/net` made writable
/// (a rw bind mount over docker's read-only `/proc/sys`, as `cluster.sh
/// --net-sysctl` does) the container's own network namespace takes `net.*`
/// values (the ARP settings of an LVS real server). `vm.*` stays read-only
/// there (machine-wide): a clear failure, nothing changed.
fn net_sysctls_in_container(dir: &std::path::Path, inv: &str) {
    let dexec = |script: &str| {
        let o = sh("docker", &["exec", CT, "sh", "-c", script]);
        assert!(o.status.success(), "docker exec `{script}`: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    dexec("mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net");
    const ARP: &str =
        "cat /proc/sys/net/ipv4/conf/all/arp_ignore /proc/sys/net/ipv4/conf/all/arp_announce";
    assert_eq!(norm_lines(&dexec(ARP)), ["0", "0"]);
    let pb = play(
        dir,
        "ct-sysctl.yml",
        "testhosts",
        "    - sysctl: {name: net.ipv4.conf.all.arp_ignore, value: '1', sysctl_file: /etc/sysctl.d/60-rs.conf}\n    - sysctl: {name: net.ipv4.conf.all.arp_announce, value: '2', sysctl_file: /etc/sysctl.d/60-rs.conf}\n",
    );
    run(&pb, inv, &["--check"], CT, 0, 2);
    assert_eq!(norm_lines(&dexec(ARP)), ["0", "0"], "--check changed /proc");
    assert_eq!(
        dexec("test -e /etc/sysctl.d/60-rs.conf && echo yes || echo no").trim(),
        "no"
    );
    run(&pb, inv, &[], CT, 0, 2);
    assert_eq!(norm_lines(&dexec(ARP)), ["1", "2"]);
    assert_eq!(
        dexec("cat /etc/sysctl.d/60-rs.conf"),
        "net.ipv4.conf.all.arp_ignore=1\nnet.ipv4.conf.all.arp_announce=2\n"
    );
    run(&pb, inv, &[], CT, 0, 0);
    let swap = dexec("cat /proc/sys/vm/swappiness");
    let want = if swap.trim() == "7" { "8" } else { "7" };
    let vmpb = play(
        dir,
        "ct-vm.yml",
        "testhosts",
        &format!("    - sysctl: {{name: vm.swappiness, value: '{want}'}}\n"),
    );
    let o = drover(&["run", &vmpb, "-i", inv, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("/proc/sys/vm/swappiness is read-only on this host"),
        "{}",
        text(&o)
    );
    assert_eq!(dexec("cat /proc/sys/vm/swappiness"), swap, "vm.* changed");
}
