//! Drawing engine events: plain lines (CI, pipes), an indicatif progress
//! bar on a TTY, or NDJSON with `--json`. Colours only on a TTY and never
//! with `NO_COLOR`.

use console::Style;
use drover_engine::event::{Event, Reporter, Status, TaskResult};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::sync::Mutex;

pub struct Cli {
    json: bool,
    verbose: u8,
    diff: bool,
    color: bool,
    bar: Option<ProgressBar>,
    out: Mutex<()>,
}

impl Cli {
    pub fn new(json: bool, verbose: u8, diff: bool, total: u64) -> Self {
        let tty = console::Term::stdout().is_term();
        let color = tty && std::env::var_os("NO_COLOR").is_none();
        let bar = (tty && !json && total > 0).then(|| {
            let b = ProgressBar::new(total);
            if let Ok(s) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            ) {
                b.set_style(s);
            }
            b
        });
        Cli {
            json,
            verbose,
            diff,
            color,
            bar,
            out: Mutex::new(()),
        }
    }

    fn line(&self, s: &str) {
        let _g = self.out.lock();
        match &self.bar {
            Some(b) => b.println(s),
            None => {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{s}");
            }
        }
    }

    fn paint(&self, style: Style, s: &str) -> String {
        if self.color {
            style.apply_to(s).to_string()
        } else {
            s.to_string()
        }
    }

    fn task_line(&self, r: &TaskResult) {
        let (word, style) = match (r.status, r.check, r.would_run) {
            (Status::Changed, _, true) => ("would run", Style::new().yellow()),
            (Status::Changed, true, _) => ("would change", Style::new().yellow()),
            (Status::Changed, false, _) => ("changed", Style::new().yellow()),
            (Status::Ok, _, _) => ("ok", Style::new().green()),
            (Status::Failed, _, _) if r.ignored => ("failed (ignored)", Style::new().red()),
            (Status::Failed, _, _) => ("failed", Style::new().red().bold()),
            (Status::Skipped, _, _) => ("skipping", Style::new().cyan()),
            (Status::Unreachable, _, _) => ("unreachable", Style::new().red().bold()),
        };
        let mut s = format!("{}: [{}] {}", self.paint(style, word), r.host, r.task);
        if let Some(m) = &r.msg {
            if matches!(
                r.status,
                Status::Failed | Status::Unreachable | Status::Skipped
            ) || self.verbose > 0
            {
                s.push_str(&format!(" => {m}"));
            }
        }
        if r.task == "debug"
            || r.output.as_ref().is_some_and(|o| {
                o.get("msg").is_some()
                    && r.status == Status::Ok
                    && self.verbose == 0
                    && r.changes.is_empty()
            })
        {
            if let Some(o) = &r.output {
                if let Some(m) = o.get("msg") {
                    s = format!("{} => {}", s.split(" => ").next().unwrap_or(&s), m);
                }
            }
        }
        if self.verbose > 0 {
            for c in &r.changes {
                s.push_str(&format!("\n    - {c}"));
            }
            if self.verbose > 1 {
                if let Some(o) = &r.output {
                    s.push_str(&format!("\n    {}", o));
                }
            }
        }
        if self.diff {
            for d in &r.diffs {
                s.push_str(&format!(
                    "\n--- before: {}\n+++ after: {}\n",
                    d.label, d.label
                ));
                let diff = similar::TextDiff::from_lines(&d.before, &d.after);
                for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
                    let text = hunk.to_string();
                    for l in text.lines() {
                        let st = if l.starts_with('+') {
                            Style::new().green()
                        } else if l.starts_with('-') {
                            Style::new().red()
                        } else {
                            Style::new()
                        };
                        s.push_str(&self.paint(st, l));
                        s.push('\n');
                    }
                }
            }
        }
        self.line(s.trim_end());
    }
}

impl Reporter for Cli {
    fn event(&self, e: &Event) {
        if self.json {
            let line = match e {
                Event::Recap { hosts, .. } => {
                    let m: serde_json::Map<String, serde_json::Value> = hosts
                        .iter()
                        .map(|(h, r)| {
                            (h.clone(), serde_json::json!({"ok": r.ok, "changed": r.changed, "failed": r.failed, "skipped": r.skipped, "unreachable": r.unreachable, "rescued": r.rescued, "ignored": r.ignored}))
                        })
                        .collect();
                    serde_json::json!({ "recap": m }).to_string()
                }
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            let _g = self.out.lock();
            let _ = writeln!(std::io::stdout().lock(), "{line}");
            return;
        }
        match e {
            Event::PlayStart { play, .. } => self.line(&format!(
                "\nPLAY [{play}] {}",
                "*".repeat(60usize.saturating_sub(play.len()))
            )),
            Event::TaskStart { task, host, .. } => {
                if let Some(b) = &self.bar {
                    b.set_message(format!("{task} @ {host}"));
                }
            }
            Event::TaskDone(r) => {
                if let Some(b) = &self.bar {
                    b.inc(1);
                }
                // Skips by `when` or by `verbosity` are shown with -v.
                let quiet = matches!(
                    r.msg.as_deref(),
                    Some("conditional result was false" | "verbosity threshold not met")
                );
                if r.status == Status::Skipped && self.verbose == 0 && quiet {
                    return;
                }
                self.task_line(r);
            }
            Event::Warning { message } => self.line(&format!("[WARNING]: {message}")),
            Event::PlayEnd { .. } => {}
            Event::Recap { hosts, elapsed_ms } => {
                if let Some(b) = &self.bar {
                    b.finish_and_clear();
                }
                let mut s = format!("\nPLAY RECAP {}\n", "*".repeat(60));
                let w = hosts.keys().map(|h| h.len()).max().unwrap_or(0);
                for (h, r) in hosts {
                    s.push_str(&format!(
                        "{h:<w$} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={}\n",
                        r.ok, r.changed, r.unreachable, r.failed, r.skipped, r.rescued, r.ignored
                    ));
                }
                s.push_str(&format!("elapsed: {:.2}s", *elapsed_ms as f64 / 1000.0));
                self.line(&s);
            }
        }
    }
}
