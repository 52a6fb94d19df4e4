//! The IPVS table for the `ipvs` module, as pure data: parsing `ipvsadm -Ln`
//! text into [`Service`]s with their [`Real`] servers, planning the minimal
//! `ipvsadm -A/-E/-D/-a/-e/-d` argv lists that turn one table into another,
//! and rendering a table in `ipvsadm-save -n` form (for the rules file).
//! No I/O here; everything is unit-tested against captured text.

use std::collections::BTreeMap;

/// How a service is addressed: `-t`/`-u ADDR:PORT` or `-f MARK`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Tcp(String),
    Udp(String),
    Fwmark(u32),
}

impl Key {
    /// ipvsadm's service options, e.g. `["-t", "10.0.0.1:80"]`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Key::Tcp(a) => vec!["-t".into(), a.clone()],
            Key::Udp(a) => vec!["-u".into(), a.clone()],
            Key::Fwmark(m) => vec!["-f".into(), m.to_string()],
        }
    }
    pub fn label(&self) -> String {
        match self {
            Key::Tcp(a) => format!("tcp {a}"),
            Key::Udp(a) => format!("udp {a}"),
            Key::Fwmark(m) => format!("fwmark {m}"),
        }
    }
}

/// Packet forwarding method of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    Route,
    Masq,
    Tunnel,
}

impl Forward {
    pub fn parse(s: &str) -> Option<Forward> {
        match s.to_ascii_lowercase().as_str() {
            "route" | "gatewaying" | "dr" | "direct" | "local" => Some(Forward::Route),
            "masq" | "masquerading" | "nat" => Some(Forward::Masq),
            "tunnel" | "ipip" | "tun" => Some(Forward::Tunnel),
            _ => None,
        }
    }
    pub fn flag(self) -> &'static str {
        match self {
            Forward::Route => "-g",
            Forward::Masq => "-m",
            Forward::Tunnel => "-i",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Real {
    pub forward: Forward,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub scheduler: String,
    /// Persistence timeout in seconds.
    pub persistent: Option<u32>,
    /// Real servers by `ADDR:PORT`.
    pub reals: BTreeMap<String, Real>,
}

pub type Table = BTreeMap<Key, Service>;

/// Parse `ipvsadm -Ln` output.
pub fn parse(text: &str) -> Result<Table, String> {
    let mut table = Table::new();
    let mut current: Option<Key> = None;
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("ipvsadm -Ln line {}: cannot parse `{line}`", n + 1);
        match f.as_slice() {
            [] => {}
            ["IP", "Virtual", ..] | ["Prot", ..] | ["->", "RemoteAddress:Port", ..] => {}
            ["->", addr, fwd, weight, ..] => {
                let key = current.as_ref().ok_or_else(bad)?;
                let real = Real {
                    forward: Forward::parse(fwd).ok_or_else(bad)?,
                    weight: weight.parse().map_err(|_| bad())?,
                };
                if let Some(s) = table.get_mut(key) {
                    s.reals.insert(addr.to_string(), real);
                }
            }
            [proto, addr, sched, rest @ ..] => {
                let key = match *proto {
                    "TCP" => Key::Tcp(addr.to_string()),
                    "UDP" => Key::Udp(addr.to_string()),
                    "FWM" => Key::Fwmark(addr.parse().map_err(|_| bad())?),
                    _ => return Err(bad()),
                };
                let mut persistent = None;
                if let Some(i) = rest.iter().position(|w| *w == "persistent") {
                    let t = rest.get(i + 1).ok_or_else(bad)?;
                    persistent = Some(t.parse().map_err(|_| bad())?);
                }
                table.insert(
                    key.clone(),
                    Service {
                        scheduler: sched.to_string(),
                        persistent,
                        reals: BTreeMap::new(),
                    },
                );
                current = Some(key);
            }
            _ => return Err(bad()),
        }
    }
    Ok(table)
}

fn service_opts(s: &Service) -> Vec<String> {
    let mut a = vec!["-s".to_string(), s.scheduler.clone()];
    if let Some(p) = s.persistent {
        a.extend(["-p".to_string(), p.to_string()]);
    }
    a
}

fn real_opts(addr: &str, r: &Real) -> Vec<String> {
    vec![
        "-r".into(),
        addr.into(),
        r.forward.flag().into(),
        "-w".into(),
        r.weight.to_string(),
    ]
}

/// One planned ipvsadm call: a summary and its argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub summary: String,
    pub argv: Vec<String>,
}

fn op(summary: String, head: &str, key: &Key, tail: Vec<String>) -> Op {
    let mut argv = vec!["ipvsadm".to_string(), head.to_string()];
    argv.extend(key.argv());
    argv.extend(tail);
    Op { summary, argv }
}

/// The minimal calls that turn `have` into `want` for the services `want`
/// names (`None` = delete that service); services not named are left alone.
pub fn plan(have: &Table, want: &BTreeMap<Key, Option<Service>>) -> Vec<Op> {
    let mut ops = Vec::new();
    for (key, w) in want {
        let h = have.get(key);
        let label = key.label();
        let Some(w) = w else {
            if h.is_some() {
                ops.push(op(format!("delete service {label}"), "-D", key, vec![]));
            }
            continue;
        };
        let empty = BTreeMap::new();
        let have_reals = match h {
            None => {
                ops.push(op(
                    format!("add service {label}"),
                    "-A",
                    key,
                    service_opts(w),
                ));
                &empty
            }
            Some(h) => {
                if h.scheduler != w.scheduler || h.persistent != w.persistent {
                    ops.push(op(
                        format!("edit service {label}"),
                        "-E",
                        key,
                        service_opts(w),
                    ));
                }
                &h.reals
            }
        };
        for addr in have_reals.keys() {
            if !w.reals.contains_key(addr) {
                ops.push(op(
                    format!("delete real server {addr} from {label}"),
                    "-d",
                    key,
                    vec!["-r".into(), addr.clone()],
                ));
            }
        }
        for (addr, wr) in &w.reals {
            match have_reals.get(addr) {
                None => ops.push(op(
                    format!("add real server {addr} to {label}"),
                    "-a",
                    key,
                    real_opts(addr, wr),
                )),
                Some(hr) if hr != wr => ops.push(op(
                    format!("edit real server {addr} of {label}"),
                    "-e",
                    key,
                    real_opts(addr, wr),
                )),
                Some(_) => {}
            }
        }
    }
    ops
}

/// `have` with `want` applied.
pub fn apply(have: &Table, want: &BTreeMap<Key, Option<Service>>) -> Table {
    let mut t = have.clone();
    for (k, w) in want {
        match w {
            Some(s) => {
                t.insert(k.clone(), s.clone());
            }
            None => {
                t.remove(k);
            }
        }
    }
    t
}

/// A table in `ipvsadm-save -n` form (what `ipvsadm-restore` reads).
pub fn render_save(t: &Table) -> String {
    let mut s = String::new();
    for (k, svc) in t {
        let mut a = vec!["-A".to_string()];
        a.extend(k.argv());
        a.extend(service_opts(svc));
        s.push_str(&a.join(" "));
        s.push('\n');
        for (addr, r) in &svc.reals {
            let mut a = vec!["-a".to_string()];
            a.extend(k.argv());
            a.extend(real_opts(addr, r));
            s.push_str(&a.join(" "));
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from ipvsadm 1.31 on Debian 12 (kernel 6.1).
    const LV05: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.77.0.100:80 lc persistent 360
  -> 10.77.0.12:80                Route   100    0          0
  -> 10.77.0.13:80                Route   200    0          0
  -> 10.77.0.14:80                Route   200    0          0
UDP  10.77.0.100:53 rr
  -> 10.77.0.12:53                Masq    1      0          3
FWM  7 wlc
";

    fn svc(sched: &str, p: Option<u32>, reals: &[(&str, Forward, u32)]) -> Service {
        Service {
            scheduler: sched.into(),
            persistent: p,
            reals: reals
                .iter()
                .map(|(a, f, w)| {
                    (
                        a.to_string(),
                        Real {
                            forward: *f,
                            weight: *w,
                        },
                    )
                })
                .collect(),
        }
    }

    fn lv05() -> Service {
        svc(
            "lc",
            Some(360),
            &[
                ("10.77.0.12:80", Forward::Route, 100),
                ("10.77.0.13:80", Forward::Route, 200),
                ("10.77.0.14:80", Forward::Route, 200),
            ],
        )
    }

    #[test]
    fn parses_captured_output() {
        let t = parse(LV05).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[&Key::Tcp("10.77.0.100:80".into())], lv05());
        let udp = &t[&Key::Udp("10.77.0.100:53".into())];
        assert_eq!(udp.scheduler, "rr");
        assert_eq!(udp.persistent, None);
        assert_eq!(udp.reals["10.77.0.12:53"].forward, Forward::Masq);
        assert!(t[&Key::Fwmark(7)].reals.is_empty());
        assert!(parse("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n").unwrap().is_empty());
        assert!(parse("XYZ 1.2.3.4:80 rr\n").is_err());
    }

    #[test]
    fn plans_minimal_changes() {
        let key = Key::Tcp("10.77.0.100:80".into());
        let mut want = BTreeMap::new();
        want.insert(key.clone(), Some(lv05()));
        // From nothing: add the service, then its reals.
        let ops = plan(&Table::new(), &want);
        let argv: Vec<String> = ops.iter().map(|o| o.argv.join(" ")).collect();
        assert_eq!(
            argv,
            [
                "ipvsadm -A -t 10.77.0.100:80 -s lc -p 360",
                "ipvsadm -a -t 10.77.0.100:80 -r 10.77.0.12:80 -g -w 100",
                "ipvsadm -a -t 10.77.0.100:80 -r 10.77.0.13:80 -g -w 200",
                "ipvsadm -a -t 10.77.0.100:80 -r 10.77.0.14:80 -g -w 200",
            ]
        );
        // Already there: nothing (other services are left alone).
        let have = parse(LV05).unwrap();
        assert!(plan(&have, &want).is_empty());
        // One real removed from the vars, one weight changed, scheduler changed.
        let mut w = lv05();
        w.scheduler = "wlc".into();
        w.reals.remove("10.77.0.14:80");
        w.reals.get_mut("10.77.0.13:80").unwrap().weight = 50;
        want.insert(key.clone(), Some(w));
        let argv: Vec<String> = plan(&have, &want)
            .iter()
            .map(|o| o.argv.join(" "))
            .collect();
        assert_eq!(
            argv,
            [
                "ipvsadm -E -t 10.77.0.100:80 -s wlc -p 360",
                "ipvsadm -d -t 10.77.0.100:80 -r 10.77.0.14:80",
                "ipvsadm -e -t 10.77.0.100:80 -r 10.77.0.13:80 -g -w 50",
            ]
        );
        // Absent: delete.
        want.insert(key, None);
        want.insert(Key::Fwmark(9), None);
        let argv: Vec<String> = plan(&have, &want)
            .iter()
            .map(|o| o.argv.join(" "))
            .collect();
        assert_eq!(argv, ["ipvsadm -D -t 10.77.0.100:80"]);
    }

    #[test]
    fn renders_save_format() {
        let t = parse(LV05).unwrap();
        let s = render_save(&t);
        assert!(s.starts_with("-A -t 10.77.0.100:80 -s lc -p 360\n-a -t 10.77.0.100:80 -r 10.77.0.12:80 -g -w 100\n"), "{s}");
        assert!(
            s.contains(
                "-A -u 10.77.0.100:53 -s rr\n-a -u 10.77.0.100:53 -r 10.77.0.12:53 -m -w 1\n"
            ),
            "{s}"
        );
        assert!(s.ends_with("-A -f 7 -s wlc\n"), "{s}");
    }
}
