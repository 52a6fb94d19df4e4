//! Check mode's predictions from earlier, unapplied tasks. A link whose
//! relative `src` (`../a/x`) an earlier task would write is predicted, not
//! failed. A service that does not exist yet (`ModuleError::Absent`):
//! after an earlier predicted change on the host (say, the package install
//! that would provide it) `--check` reports the service task as a predicted
//! change instead of failing; with no earlier change it still fails, and a
//! real run always fails. `reboot` is predicted, and refused on the
//! controller. Local connection on this machine; nothing changes.

use std::process::Command;

fn run(dir: &std::path::Path, body: &str, check: bool) -> (i32, String) {
    let pb = dir.join("pb.yml");
    std::fs::write(&pb, body).expect("write playbook");
    let mut c = Command::new(env!("CARGO_BIN_EXE_drover"));
    c.arg("run").arg(&pb).env("NO_COLOR", "1");
    if check {
        c.arg("--check");
    }
    let o = c.output().expect("run drover");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), out)
}

const SERVICE: &str = "    - service: {name: drover-no-such-service-x, state: started}\n";

#[test]
fn missing_service_in_check_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("would-be-created");
    let head = "- hosts: localhost\n  gather_facts: false\n  tasks:\n";
    let earlier = format!("    - copy: {{dest: {}, content: x}}\n", marker.display());

    // No earlier change: the missing service fails, in check mode too.
    let (rc, out) = run(dir.path(), &format!("{head}{SERVICE}"), true);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("drover-no-such-service-x not found"), "{out}");

    // After a predicted change: a predicted change, not a failure.
    let (rc, out) = run(dir.path(), &format!("{head}{earlier}{SERVICE}"), true);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("would run: [localhost] service"), "{out}");
    assert!(!marker.exists(), "--check wrote {}", marker.display());

    // For real it fails (after the copy really ran).
    let (rc, out) = run(dir.path(), &format!("{head}{earlier}{SERVICE}"), false);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("not found"), "{out}");
}

#[test]
fn relative_link_to_a_predicted_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    std::fs::create_dir(dir.path().join("enabled")).expect("mkdir");
    std::fs::create_dir(dir.path().join("available")).expect("mkdir");
    let body = format!(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n\
         \x20   - copy: {{dest: {d}/available/site.conf, content: x}}\n\
         \x20   - file: {{src: ../available/site.conf, dest: {d}/enabled/site.conf, state: link}}\n"
    );
    let (rc, out) = run(dir.path(), &body, true);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("would change: [localhost] file"), "{out}");
    assert!(!dir.path().join("available/site.conf").exists());
    let (rc, out) = run(dir.path(), &body, false);
    assert_eq!(rc, 0, "{out}");
    let t = std::fs::read_link(dir.path().join("enabled/site.conf")).expect("link");
    assert_eq!(t.display().to_string(), "../available/site.conf");
}

/// `reboot` on the controller: `--check` predicts it (and does nothing); a
/// real run refuses before running anything. The reboot command is `true`,
/// so even a broken guard could not reboot this machine.
#[test]
fn reboot_predicted_but_never_of_the_controller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = "- hosts: localhost\n  gather_facts: false\n  tasks:\n\
                \x20   - reboot: {reboot_command: \"true\", reboot_timeout: 5}\n";
    let (rc, out) = run(dir.path(), body, true);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("would change: [localhost] reboot"), "{out}");
    let (rc, out) = run(dir.path(), body, false);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("refusing to reboot localhost: it uses the local connection"),
        "{out}"
    );
}
