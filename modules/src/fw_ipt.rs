//! The iptables backend of the `firewall` module, used only on hosts without
//! `nft`: each rule set is a user chain `DROVER-NAME` in the filter table,
//! jumped to from the top of `INPUT` (the one line drover adds to a chain it
//! does not own). Observation is `iptables -w -S` (canonical text, compared
//! line by line); changes go through one `iptables-restore -w --noflush`
//! transaction. IPv4 only (IPv6 sources need nftables), and no `persist`.

use crate::fw_nft::{Net, Rule, Verdict};
use drover_engine::module::{Change, Diff, Step};
use std::collections::{BTreeMap, BTreeSet};

/// Prints the backend (`nft`, `iptables` + `iptables -w -S`, or `none`).
pub const BACKEND_PROBE: &str = "if command -v nft >/dev/null 2>&1; then echo nft; \
elif command -v iptables >/dev/null 2>&1; then echo iptables; iptables -w -S; \
else echo none; fi";

/// drover's chains and the INPUT jumps to them, from `iptables -S`.
#[derive(Debug, Default)]
pub struct State {
    pub chains: BTreeMap<String, Vec<String>>,
    pub jumps: BTreeSet<String>,
}

pub fn parse(out: &str) -> State {
    let mut st = State::default();
    for l in out.lines().map(str::trim) {
        if let Some(c) = l.strip_prefix("-N ").filter(|c| c.starts_with("DROVER-")) {
            st.chains.entry(c.to_string()).or_default();
        } else if let Some(c) = l
            .strip_prefix("-A INPUT -j ")
            .filter(|c| c.starts_with("DROVER-"))
        {
            st.jumps.insert(c.to_string());
        } else if let Some(rest) = l.strip_prefix("-A DROVER-") {
            let chain = format!("DROVER-{}", rest.split(' ').next().unwrap_or_default());
            st.chains.entry(chain).or_default().push(l.to_string());
        }
    }
    st
}

pub fn chain_name(name: &str) -> Result<String, String> {
    let c = format!("DROVER-{name}");
    if c.len() > 28 {
        return Err(format!(
            "name `{name}` is too long for an iptables chain (at most 21 characters)"
        ));
    }
    Ok(c)
}

/// `iptables -S` lines of one rule (one per source address).
fn lines(chain: &str, r: &Rule) -> Result<Vec<String>, String> {
    let ports: Vec<String> = r.dports.iter().map(u16::to_string).collect();
    let tail = format!(
        "-p {p} -m multiport --dports {} -j {}",
        ports.join(","),
        match (&r.verdict, r.proto.as_str()) {
            (Verdict::Accept, _) => "ACCEPT",
            (Verdict::Drop, _) => "DROP",
            (Verdict::Reject { tcp_reset: true }, _) => "REJECT --reject-with tcp-reset",
            (Verdict::Reject { .. }, _) => "REJECT --reject-with icmp-port-unreachable",
        },
        p = r.proto
    );
    let head = format!(
        "-A {chain}{}",
        r.iif
            .as_ref()
            .map(|i| format!(" -i {i}"))
            .unwrap_or_default()
    );
    match &r.saddr {
        None => Ok(vec![format!("{head} {tail}")]),
        Some(nets) => nets
            .iter()
            .map(|n| match n {
                Net::V4(a, l) => Ok(format!("{head} -s {a}/{l} {tail}")),
                Net::V6(..) => {
                    Err("IPv6 sources need nftables: the iptables backend is IPv4 only".to_string())
                }
            })
            .collect(),
    }
}

fn restore(body: String) -> Step {
    Step::Exec {
        argv: ["iptables-restore", "-w", "--noflush"]
            .map(String::from)
            .to_vec(),
        stdin: Some(format!("*filter\n{body}COMMIT\n").into_bytes()),
        cwd: None,
        env: BTreeMap::new(),
        capture: false,
        allow_fail: false,
    }
}

fn remove(st: &State, chain: &str) -> String {
    let mut s = String::new();
    if st.jumps.contains(chain) {
        s.push_str(&format!("-D INPUT -j {chain}\n"));
    }
    s.push_str(&format!("-F {chain}\n-X {chain}\n"));
    s
}

/// Changes that make `name` hold `rules` (present) or disappear (absent;
/// an empty name removes every DROVER-* chain).
pub fn plan(name: &str, present: bool, rules: &[Rule], st: &State) -> Result<Vec<Change>, String> {
    if !present {
        let chains: Vec<&String> = if name.is_empty() {
            st.chains.keys().collect()
        } else {
            let c = chain_name(name)?;
            st.chains.keys().filter(|k| **k == c).collect()
        };
        return Ok(chains
            .into_iter()
            .map(|c| {
                Change::new(
                    format!("delete iptables chain {c}"),
                    vec![restore(remove(st, c))],
                )
            })
            .collect());
    }
    let chain = chain_name(name)?;
    let mut want = Vec::new();
    for r in rules {
        want.extend(lines(&chain, r)?);
    }
    let have = st.chains.get(&chain);
    let jump = st.jumps.contains(&chain);
    if have == Some(&want) && jump {
        return Ok(vec![]);
    }
    let mut body = format!(":{chain} - [0:0]\n-F {chain}\n");
    for l in &want {
        body.push_str(l);
        body.push('\n');
    }
    if !jump {
        body.push_str(&format!("-I INPUT -j {chain}\n"));
    }
    let have = have.cloned().unwrap_or_default();
    let mut summaries = Vec::new();
    if !st.chains.contains_key(&chain) {
        summaries.push(format!("add iptables chain {chain}"));
    }
    summaries.extend(
        have.iter()
            .filter(|l| !want.contains(l))
            .map(|l| format!("remove rule {l}")),
    );
    summaries.extend(
        want.iter()
            .filter(|l| !have.contains(l))
            .map(|l| format!("add rule {l}")),
    );
    if !jump {
        summaries.push(format!("add rule -I INPUT -j {chain}"));
    }
    if summaries.is_empty() {
        summaries.push(format!("reorder rules of {chain}"));
    }
    let diff = Diff {
        label: format!("iptables chain {chain}"),
        before: have.iter().map(|l| format!("{l}\n")).collect(),
        after: want.iter().map(|l| format!("{l}\n")).collect(),
    };
    let step = restore(body);
    Ok(summaries
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            if i == 0 {
                Change::new(s, vec![step.clone()]).with_diff(diff.clone())
            } else {
                Change::new(s, vec![])
            }
        })
        .collect())
}
