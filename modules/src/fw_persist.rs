//! `persist: yes` of the `firewall` module (nftables): the chain's own
//! idempotent `nft` script goes to `/etc/nftables.d/drover-NAME.nft`
//! (checked with `nft -c -f` before it is installed), and
//! `/etc/nftables.conf` gets `include "/etc/nftables.d/*.nft"` once, so the
//! rules come back when nftables loads its configuration at boot. Enabling
//! the nftables service is left to the `service` module.

use crate::fw_nft::chain_script;
use drover_engine::module::{Change, Diff, Step};
use std::sync::Arc;

pub const CONF: &str = "/etc/nftables.conf";
const INCLUDE: &str = "include \"/etc/nftables.d/*.nft\"";

pub fn path(name: &str) -> String {
    format!("/etc/nftables.d/drover-{name}.nft")
}

/// From the current persisted file and nftables.conf to the changes.
pub fn changes(
    name: &str,
    present: bool,
    rules: &[String],
    file: Option<String>,
    conf: Option<String>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let path = path(name);
    if !present {
        if file.is_some() {
            out.push(Change::new(
                format!("remove {path}"),
                vec![Step::exec(["rm", "-f", "--", &path])],
            ));
        }
        return out;
    }
    let want = format!(
        "# written by drover (firewall `{}`); loaded through {CONF}\n{}",
        name,
        chain_script(name, rules, false)
    );
    if file.as_deref() != Some(want.as_str()) {
        let w = |p: &str, c: &str| Step::Write {
            path: p.into(),
            content: Arc::new(c.as_bytes().to_vec()),
            mode: Some(0o644),
            owner: None,
            group: None,
            validate: Some("nft -c -f %s".into()),
            backup: false,
        };
        out.push(
            Change::new(
                format!("write {path}"),
                vec![
                    Step::exec(["mkdir", "-p", "/etc/nftables.d"]),
                    w(&path, &want),
                ],
            )
            .with_diff(Diff {
                label: path.clone(),
                before: file.unwrap_or_default(),
                after: want.clone(),
            }),
        );
    }
    let conf = conf.unwrap_or_default();
    if !conf.lines().any(|l| l.trim() == INCLUDE) {
        let mut after = conf.clone();
        if !after.is_empty() && !after.ends_with('\n') {
            after.push('\n');
        }
        after.push_str(INCLUDE);
        after.push('\n');
        let step = Step::Write {
            path: CONF.into(),
            content: Arc::new(after.clone().into_bytes()),
            mode: None,
            owner: None,
            group: None,
            validate: None,
            backup: false,
        };
        out.push(
            Change::new(
                format!("include /etc/nftables.d/*.nft in {CONF}"),
                vec![step],
            )
            .with_diff(Diff {
                label: CONF.into(),
                before: conf,
                after,
            }),
        );
    }
    out
}
