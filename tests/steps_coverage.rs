//! Every documented setup step (the IDs of `playbooks/STEPS.md`) is either
//! named by a shipped playbook — an entry of a task's `tags:` or a comment in
//! a YAML file under `playbooks/` — or listed in `playbooks/COVERAGE.md` with
//! the reason it is not covered yet. The table must agree with the playbooks
//! both ways: "not yet" for a step a playbook names fails too, and so does a
//! row naming a playbook folder that does not mention the step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn playbooks() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks")
}

/// Whether `s` is a step ID: two capital letters, a dash, two digits.
fn is_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2] == b'-'
        && b[3..].iter().all(u8::is_ascii_digit)
}

/// Step IDs found in `text` (whole words).
fn ids_in(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| is_id(w))
        .map(String::from)
        .collect()
}

/// The IDs of the first column of the tables in STEPS.md.
fn step_ids(steps: &str) -> BTreeSet<String> {
    steps
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .filter(|c| is_id(c.trim()))
        .map(|c| c.trim().to_string())
        .collect()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
            out.push(p);
        }
    }
}

/// ID → playbook folders (first path component under playbooks/) whose YAML
/// names it in a `tags:` entry or a comment.
fn named_by_playbooks() -> BTreeMap<String, BTreeSet<String>> {
    let root = playbooks();
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let folder = f
            .strip_prefix(&root)
            .ok()
            .and_then(|r| r.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let mut in_tags_list = false;
        for line in text.lines() {
            let t = line.trim_start();
            let mut hits = Vec::new();
            if let Some(i) = line.find('#') {
                hits.extend(ids_in(&line[i..]));
            }
            if let Some(rest) = t.strip_prefix("tags:") {
                hits.extend(ids_in(rest));
                in_tags_list = rest.trim().is_empty();
            } else if in_tags_list && t.starts_with("- ") {
                hits.extend(ids_in(t));
            } else {
                in_tags_list = false;
            }
            for id in hits {
                found.entry(id).or_default().insert(folder.clone());
            }
        }
    }
    found
}

/// COVERAGE.md rows: ID → second column.
fn coverage_rows(cov: &str) -> BTreeMap<String, String> {
    let mut rows = BTreeMap::new();
    for l in cov.lines() {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        if cells.len() >= 3 && is_id(cells[1]) {
            let prev = rows.insert(cells[1].to_string(), cells[2].to_string());
            assert!(prev.is_none(), "COVERAGE.md lists {} twice", cells[1]);
        }
    }
    rows
}

#[test]
fn every_documented_step_has_a_task_or_a_reason() {
    let steps = std::fs::read_to_string(playbooks().join("STEPS.md")).expect("playbooks/STEPS.md");
    let ids = step_ids(&steps);
    assert!(
        ids.len() >= 40,
        "too few step IDs parsed from STEPS.md: {ids:?}"
    );
    let cov =
        std::fs::read_to_string(playbooks().join("COVERAGE.md")).expect("playbooks/COVERAGE.md");
    let rows = coverage_rows(&cov);
    let named = named_by_playbooks();
    let mut problems = Vec::new();
    for id in &ids {
        let by = named.get(id);
        match (rows.get(id), by) {
            (None, None) => problems.push(format!(
                "{id}: no playbook task names it and COVERAGE.md gives no reason"
            )),
            (None, Some(by)) => problems.push(format!(
                "{id}: named by {by:?} but missing from COVERAGE.md"
            )),
            (Some(r), by) if r.starts_with("not yet") => {
                let reason = r
                    .trim_start_matches("not yet")
                    .trim_start_matches(':')
                    .trim();
                if reason.is_empty() {
                    problems.push(format!("{id}: `not yet` without a reason"));
                }
                if let Some(by) = by {
                    problems.push(format!(
                        "{id}: COVERAGE.md says `{r}` but {by:?} names it: update the table"
                    ));
                }
            }
            (Some(r), by) => {
                if !by.is_some_and(|b| b.contains(r)) {
                    problems.push(format!(
                        "{id}: COVERAGE.md names playbook `{r}`, but no task or comment in \
                         playbooks/{r}/ names {id} (found in {by:?})"
                    ));
                }
                if !playbooks().join(r).join("site.yml").is_file() {
                    problems.push(format!("{id}: playbooks/{r}/site.yml does not exist"));
                }
            }
        }
    }
    for id in rows.keys().chain(named.keys()) {
        if !ids.contains(id) {
            problems.push(format!("{id}: not a step of STEPS.md"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn id_parsing() {
    assert_eq!(ids_in("tags: [WF-01, WF-05]"), vec!["WF-01", "WF-05"]);
    assert_eq!(ids_in("# WF-08: advice; XWF-081 no"), vec!["WF-08"]);
    assert!(step_ids("| WF-01 | step | end |\n|---|---|---|\n| x | y |").contains("WF-01"));
}
