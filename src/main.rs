//! The `drover` command line: parses arguments, loads the playbook and the
//! inventory through the engine, draws events, and maps outcomes to
//! ansible-playbook's exit codes (0 ok, 1 error, 2 host failed, 4 host
//! unreachable, 5 bad options, 99 interrupted).

mod report;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use drover_engine::connection::ssh::HostKeyChecking;
use drover_engine::exec::{prepare, Prepared, RunOptions};
use drover_engine::inventory::Inventory;
use drover_engine::model::load_playbook;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "drover",
    version,
    about = "Run Ansible-shaped playbooks; every ready task at once"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct InvArgs {
    /// Inventory file or directory (repeatable). Default: localhost only.
    #[arg(short = 'i', long = "inventory")]
    inventory: Vec<PathBuf>,
}

#[derive(Args, Clone)]
struct PlayArgs {
    /// The playbook file.
    playbook: PathBuf,
    #[command(flatten)]
    inv: InvArgs,
    /// Limit to hosts matching this pattern.
    #[arg(short = 'l', long)]
    limit: Option<String>,
    /// Only tasks with these tags (comma separated, repeatable).
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    skip_tags: Vec<String>,
    /// Extra variables: key=value, @file.yml, or a YAML/JSON mapping (repeatable).
    #[arg(short = 'e', long = "extra-vars")]
    extra_vars: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a playbook.
    Run {
        #[command(flatten)]
        play: PlayArgs,
        /// Dry run: report what would change, change nothing.
        #[arg(short = 'C', long)]
        check: bool,
        /// Show the content of changes.
        #[arg(short = 'D', long)]
        diff: bool,
        /// Hosts worked on at once.
        #[arg(short = 'f', long, default_value_t = 50)]
        forks: usize,
        /// One JSON event per line; the last line is the recap.
        #[arg(long)]
        json: bool,
        /// More output (-v changes, -vv results).
        #[arg(short = 'v', action = clap::ArgAction::Count)]
        verbose: u8,
        /// Host key policy: strict, accept-new or off.
        #[arg(long, default_value = "strict")]
        host_key_checking: String,
        /// Extra known_hosts file (repeatable).
        #[arg(long)]
        known_hosts: Vec<PathBuf>,
        /// SSH connect timeout in seconds.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Show the inventory like ansible-inventory.
    Inventory {
        #[command(flatten)]
        inv: InvArgs,
        #[arg(long)]
        list: bool,
        /// Print the group tree (optionally from GROUP).
        #[arg(long, num_args = 0..=1, default_missing_value = "all")]
        graph: Option<String>,
        /// Variables of one host.
        #[arg(long)]
        host: Option<String>,
    },
    /// Print the task DAG as Graphviz DOT.
    Graph {
        #[command(flatten)]
        play: PlayArgs,
    },
    /// Check a playbook (syntax, modules, arguments, variables, DAG) without running it.
    SyntaxCheck {
        #[command(flatten)]
        play: PlayArgs,
    },
    /// List the hosts each play would run on.
    ListHosts {
        #[command(flatten)]
        play: PlayArgs,
    },
    /// List the tasks of each play.
    ListTasks {
        #[command(flatten)]
        play: PlayArgs,
    },
}

fn load_inventory(inv: &InvArgs, playbook_dir: Option<&Path>) -> Result<Inventory> {
    let mut i = if inv.inventory.is_empty() {
        Inventory::localhost_default()
    } else {
        Inventory::load(&inv.inventory).map_err(|e| anyhow!("{e}"))?
    };
    if let Some(d) = playbook_dir {
        i.add_playbook_vars_dir(d).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(i)
}

fn extra_vars(items: &[String]) -> Result<drover_engine::vars::Vars> {
    let mut out = drover_engine::vars::Vars::new();
    for e in items {
        let e = e.trim();
        let v = if let Some(f) = e.strip_prefix('@') {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("extra vars file {f}"))?;
            drover_engine::yaml::parse_value(&text, Path::new(f)).map_err(|x| anyhow!("{x}"))?
        } else if e.starts_with('{') {
            drover_engine::yaml::parse_value(e, Path::new("<-e>")).map_err(|x| anyhow!("{x}"))?
        } else {
            let mut m = serde_json::Map::new();
            for w in shell_split(e)? {
                let (k, v) = w
                    .split_once('=')
                    .ok_or_else(|| anyhow!("-e `{w}`: expected key=value, @file or a mapping"))?;
                m.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            serde_json::Value::Object(m)
        };
        match v {
            serde_json::Value::Object(m) => out.extend(m),
            other => return Err(anyhow!("-e `{e}`: expected a mapping, got {other}")),
        }
    }
    Ok(out)
}

fn shell_split(s: &str) -> Result<Vec<String>> {
    // Minimal: split on whitespace outside quotes.
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q: Option<char> = None;
    for c in s.chars() {
        match (q, c) {
            (None, '\'' | '"') => q = Some(c),
            (Some(x), c) if c == x => q = None,
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if q.is_some() {
        return Err(anyhow!("unbalanced quote in `{s}`"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Errors that are the user's input: exit 1 with the message.
struct InputError(anyhow::Error);

fn prepared(p: &PlayArgs, opts: RunOptions) -> Result<Prepared, InputError> {
    let registry = drover_modules::registry();
    let pb = load_playbook(&p.playbook, &registry).map_err(|e| InputError(anyhow!("{e}")))?;
    let inv = load_inventory(&p.inv, Some(&pb.dir)).map_err(InputError)?;
    let mut opts = opts;
    opts.limit = p.limit.clone();
    opts.tags = p.tags.clone();
    opts.skip_tags = p.skip_tags.clone();
    opts.extra_vars = extra_vars(&p.extra_vars).map_err(InputError)?;
    prepare(pb, inv, registry, opts).map_err(|e| InputError(anyhow!("{e}")))
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 5 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match run(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ERROR: {}", e.0);
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32, InputError> {
    match cli.cmd {
        Cmd::Run {
            play,
            check,
            diff,
            forks,
            json,
            verbose,
            host_key_checking,
            known_hosts,
            timeout,
        } => {
            let mut opts = RunOptions {
                check,
                diff,
                forks,
                verbosity: verbose,
                ..Default::default()
            };
            opts.ssh.host_key_checking = match host_key_checking.as_str() {
                "strict" | "yes" | "true" => HostKeyChecking::Strict,
                "accept-new" => HostKeyChecking::AcceptNew,
                "off" | "no" | "false" => HostKeyChecking::Off,
                other => {
                    eprintln!(
                        "ERROR: --host-key-checking `{other}`: expected strict, accept-new or off"
                    );
                    return Ok(5);
                }
            };
            for k in known_hosts.into_iter().rev() {
                opts.ssh.known_hosts.insert(0, k);
            }
            opts.ssh.connect_timeout = std::time::Duration::from_secs(timeout);
            let prep = prepared(&play, opts)?;
            let total = prep
                .dag
                .graph
                .node_weights()
                .filter(|n| !matches!(n, drover_engine::dag::NodeKind::Barrier { .. }))
                .count();
            let reporter = Arc::new(report::Cli::new(json, verbose, diff, total as u64));
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| InputError(anyhow!("cannot start the runtime: {e}")))?;
            let cancel = Arc::new(AtomicBool::new(false));
            let summary = rt.block_on(async {
                let c = cancel.clone();
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        c.store(true, Ordering::SeqCst);
                    }
                });
                prep.run(reporter, cancel.clone()).await
            });
            Ok(summary.exit_code())
        }
        Cmd::Inventory {
            inv,
            list,
            graph,
            host,
        } => {
            let i = load_inventory(&inv, None).map_err(InputError)?;
            let out = if let Some(h) = host {
                serde_json::to_string_pretty(
                    &i.host_json(&h).map_err(|e| InputError(anyhow!("{e}")))?,
                )
                .unwrap_or_default()
            } else if let Some(g) = graph {
                i.graph(Some(&g)).map_err(|e| InputError(anyhow!("{e}")))?
            } else if list {
                serde_json::to_string_pretty(&i.list_json()).unwrap_or_default()
            } else {
                eprintln!("ERROR: one of --list, --graph or --host is required");
                return Ok(5);
            };
            println!("{}", out.trim_end());
            Ok(0)
        }
        Cmd::Graph { play } => {
            let p = prepared(&play, RunOptions::default())?;
            print!("{}", drover_engine::dag::to_dot(&p.playbook, &p.dag));
            Ok(0)
        }
        Cmd::SyntaxCheck { play } => {
            prepared(&play, RunOptions::default())?;
            println!("\nplaybook: {}", play.playbook.display());
            Ok(0)
        }
        Cmd::ListHosts { play } => {
            let p = prepared(&play, RunOptions::default())?;
            for (pl, hosts) in p.playbook.plays.iter().zip(&p.play_hosts) {
                println!("\n  play #{} ({}): {}\tTAGS: []", 1, pl.hosts, pl.name);
                println!("    pattern: ['{}']", pl.hosts);
                println!("    hosts ({}):", hosts.len());
                for h in hosts {
                    println!("      {h}");
                }
            }
            Ok(0)
        }
        Cmd::ListTasks { play } => {
            let p = prepared(&play, RunOptions::default())?;
            for (pi, pl) in p.playbook.plays.iter().enumerate() {
                println!("\n  play #{} ({}): {}", pi + 1, pl.hosts, pl.name);
                println!("    tasks:");
                for (ti, t) in pl.tasks.iter().enumerate() {
                    if p.selected[pi][ti] && t.module != "meta" {
                        println!("      {}\tTAGS: [{}]", t.name, t.tags.join(", "));
                    }
                }
            }
            Ok(0)
        }
    }
}
