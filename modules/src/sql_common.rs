//! Shared plumbing of the `mysql_*` modules (MariaDB/MySQL): SQL quoting,
//! the login options, and how a probe or step talks to the server.
//!
//! Every module runs the `mysql` client **on the host**, over drover's SSH
//! connection, with its SQL on stdin. Why: no new port forwarding and no
//! network exposure of the server; root's unix-socket authentication (the
//! default on Debian/Ubuntu MariaDB) just works; a task costs one exec (its
//! probes ride in the task's batched probe script, see
//! [`Probe::ExecStdin`]); and no value, least of all a password, is ever put
//! in argv (`ps` on the host shows only the fixed runner script).
//!
//! Login: by default the client connects as the SSH (or `become`) user over
//! the unix socket and reads `~/.my.cnf` as it always does. `login_user`,
//! `login_password`, `login_host`, `login_port`, `login_unix_socket` and an
//! explicit `config_file` (`!include`d) become a client option file that is
//! sent as the first bytes of stdin. The runner script reads exactly that
//! many bytes into a shell variable and hands them to the client through a
//! pipe on fd 3 (`--defaults-extra-file=/dev/fd/3`), restoring the rest of
//! stdin (the SQL) as fd 0: the password never touches the disk, argv or
//! the environment. `MYSQL_PWD` was rejected (visible in
//! `/proc/PID/environ`, deprecated by MySQL), so was a temp file (it would
//! reach the disk). A plain exec cannot pass fd 3, hence the script.

use drover_engine::module::{ExecOutput, ModuleError, Observed, Probe, Step};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Login parameters every `mysql_*` module accepts (Ansible's names).
#[macro_export]
macro_rules! sql_params {
    ($($p:expr),* $(,)?) => {
        &[
            $($p,)*
            Param::new("login_user", Kind::Str),
            Param::new("login_password", Kind::Str),
            Param::new("login_host", Kind::Str),
            Param::new("login_port", Kind::Int),
            Param::new("login_unix_socket", Kind::Str),
            Param::new("config_file", Kind::Str),
            Param::new("connect_timeout", Kind::Int),
        ]
    };
}

/// Runs `"$@"` (a client command line) with the option file on fd 3 and the
/// SQL (rest of stdin) on fd 0. `$1` = length of the option file.
pub const RUNNER: &str =
    "exec 4<&0; c=$(head -c \"$1\"; echo .); shift; printf %s \"${c%.}\" | \"$@\" 3<&0 0<&4 4<&-";

/// Quote an identifier (database, table, column): backticks, doubled inside.
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Quote a string literal. Backslash and quote are escaped, NUL, newline,
/// CR and ^Z too; generated scripts also clear `NO_BACKSLASH_ESCAPES`
/// (see [`PRELUDE`]) so this quoting means what it says.
pub fn lit(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('\'');
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '\0' => o.push_str("\\0"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\u{1a}' => o.push_str("\\Z"),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

/// First statement of every generated script.
pub const PRELUDE: &str =
    "SET SESSION sql_mode=REPLACE(@@SESSION.sql_mode,'NO_BACKSLASH_ESCAPES','');\n";

/// Section marker row between the queries of one probe.
const SECTION: &str = "@@drover-section";

/// Quote a value for a client option file (`key="value"`).
fn cnf_value(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A secret string argument: like `get_str`, but a bad value is never echoed.
pub fn get_secret(args: &Map<String, Value>, name: &str) -> Result<Option<String>, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ Value::Number(_)) => Ok(Some(v.to_string())),
        Some(_) => Err(ModuleError::BadArg {
            name: name.into(),
            value: "<hidden>".into(),
            message: "expected a string".into(),
        }),
    }
}

/// How to log in. Its option file is sent on stdin, never shown.
#[derive(Clone, Default, PartialEq)]
pub struct Login {
    cnf: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Login(<hidden>)")
    }
}

impl Login {
    pub fn from_args(args: &Map<String, Value>) -> Result<Login, ModuleError> {
        let s = |k: &str| drover_engine::args::get_str(args, k);
        let mut cnf = String::new();
        if let Some(f) = s("config_file")? {
            if f != "~/.my.cnf" {
                if !f.starts_with('/') {
                    return Err(ModuleError::BadArg {
                        name: "config_file".into(),
                        value: f,
                        message: "must be an absolute path (or ~/.my.cnf, read anyway)".into(),
                    });
                }
                cnf.push_str(&format!("!include {f}\n"));
            }
        }
        cnf.push_str("[client]\n");
        if let Some(u) = s("login_user")? {
            cnf.push_str(&format!("user={}\n", cnf_value(&u)));
        }
        if let Some(p) = get_secret(args, "login_password")? {
            cnf.push_str(&format!("password={}\n", cnf_value(&p)));
        }
        if let Some(h) = s("login_host")? {
            cnf.push_str(&format!("host={}\n", cnf_value(&h)));
        }
        if let Some(p) = drover_engine::args::get_int(args, "login_port")? {
            cnf.push_str(&format!("port={p}\n"));
        }
        if let Some(p) = s("login_unix_socket")? {
            cnf.push_str(&format!("socket={}\n", cnf_value(&p)));
        }
        if let Some(t) = drover_engine::args::get_int(args, "connect_timeout")? {
            cnf.push_str(&format!("connect-timeout={t}\n"));
        }
        Ok(Login { cnf })
    }

    /// argv for the runner: `sh -c RUNNER drover-sql LEN prog --defaults-extra-file=/dev/fd/3 opts…`.
    pub fn argv(&self, prog: &str, opts: &[&str]) -> Vec<String> {
        self.argv_with(RUNNER, &[], prog, opts)
    }

    /// As [`Login::argv`] with another script; `extra` go between LEN and prog.
    pub fn argv_with(
        &self,
        script: &str,
        extra: &[&str],
        prog: &str,
        opts: &[&str],
    ) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            script.into(),
            "drover-sql".into(),
            self.cnf.len().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push(prog.into());
        v.push("--defaults-extra-file=/dev/fd/3".into());
        v.extend(opts.iter().map(|s| s.to_string()));
        v
    }

    fn input(&self, sql: &str) -> Vec<u8> {
        let mut b = self.cnf.clone().into_bytes();
        b.extend_from_slice(sql.as_bytes());
        b
    }

    /// A probe running `queries` (each its own result section).
    pub fn probe(&self, queries: &[String]) -> Probe {
        let mut sql = String::from(PRELUDE);
        for q in queries {
            sql.push_str(&format!("SELECT '{SECTION}';\n{q};\n"));
        }
        Probe::ExecStdin {
            argv: self.argv("mysql", &["--batch", "--skip-column-names", "--force"]),
            stdin: self.input(&sql),
        }
    }

    /// A probe with a custom script and the option file only on stdin.
    pub fn probe_script(&self, script: &str, extra: &[&str], opts: &[&str]) -> Probe {
        Probe::ExecStdin {
            argv: self.argv_with(script, extra, "mysql", opts),
            stdin: self.input(""),
        }
    }

    /// A step running `statements` (generated SQL) in one client session.
    pub fn step(&self, statements: &[String], opts: &[&str]) -> Step {
        let mut sql = String::from(PRELUDE);
        for s in statements {
            sql.push_str(s);
            sql.push_str(";\n");
        }
        self.raw_step(&sql, opts, false)
    }

    /// A step feeding `sql` as given (mysql_query); `capture` keeps its output.
    pub fn raw_step(&self, sql: &str, opts: &[&str], capture: bool) -> Step {
        let mut o = vec!["--batch"];
        o.extend_from_slice(opts);
        Step::Exec {
            argv: self.argv("mysql", &o),
            stdin: Some(self.input(sql)),
            cwd: None,
            env: BTreeMap::new(),
            capture,
            allow_fail: false,
        }
    }

    /// A step with a custom script (import, dump): stdin is the option file.
    pub fn script_step(&self, script: &str, extra: &[&str], prog: &str, opts: &[&str]) -> Step {
        Step::Exec {
            argv: self.argv_with(script, extra, prog, opts),
            stdin: Some(self.input("")),
            cwd: None,
            env: BTreeMap::new(),
            capture: false,
            allow_fail: false,
        }
    }
}

/// Unescape one field of `mysql --batch` output; `NULL` becomes None.
pub fn field(s: &str) -> Option<String> {
    if s == "NULL" {
        return None;
    }
    let mut o = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            o.push(c);
            continue;
        }
        match it.next() {
            Some('n') => o.push('\n'),
            Some('t') => o.push('\t'),
            Some('0') => o.push('\0'),
            Some('\\') => o.push('\\'),
            Some(x) => {
                o.push('\\');
                o.push(x);
            }
            None => o.push('\\'),
        }
    }
    Some(o)
}

/// Rows of batch output (tab-separated, escaped).
pub fn rows(text: &str) -> Vec<Vec<Option<String>>> {
    text.lines()
        .map(|l| l.split('\t').map(field).collect())
        .collect()
}

/// A row's column as text ("" for NULL or missing).
pub fn col(row: &[Option<String>], i: usize) -> &str {
    row.get(i).and_then(|c| c.as_deref()).unwrap_or("")
}

/// The exec output of probe `i`.
pub fn exec_out(observed: &[Observed], i: usize) -> Result<&ExecOutput, ModuleError> {
    match observed.get(i) {
        Some(Observed::Exec(o)) => Ok(o),
        _ => Err(ModuleError::Probe(format!("mysql probe {i} missing"))),
    }
}

fn client_error(o: &ExecOutput) -> ModuleError {
    let e = o.stderr_str();
    let e = e.trim();
    ModuleError::Failed(format!(
        "mysql client failed (exit {:?}): {}",
        o.status,
        if e.is_empty() { "no message" } else { e }
    ))
}

/// Result sections of a [`Login::probe`], one per query. A query may fail
/// only when `tolerate` allows it (its section then holds what it printed).
pub fn sections(
    o: &ExecOutput,
    n: usize,
    tolerate: bool,
) -> Result<Vec<Vec<Vec<Option<String>>>>, ModuleError> {
    let text = o.stdout_str();
    let mut out: Vec<Vec<Vec<Option<String>>>> = Vec::new();
    for l in text.lines() {
        if l == SECTION {
            out.push(Vec::new());
        } else if let Some(cur) = out.last_mut() {
            cur.push(l.split('\t').map(field).collect());
        }
    }
    if out.len() != n || (!o.success() && !tolerate) {
        return Err(client_error(o));
    }
    Ok(out)
}

/// Plain success check of a probe with a custom script.
pub fn ok_text(o: &ExecOutput) -> Result<String, ModuleError> {
    if o.success() {
        Ok(o.stdout_str())
    } else {
        Err(client_error(o))
    }
}

/// `mysql_native_password` hash: `*` + upper hex SHA1(SHA1(password)).
pub fn native_hash(password: &str) -> String {
    use sha1::{Digest, Sha1};
    let h2 = Sha1::digest(Sha1::digest(password.as_bytes()));
    let mut s = String::from("*");
    for b in h2.iter() {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// A name that must be a plain word (system variables).
pub fn check_word(name: &str, v: &str) -> Result<(), ModuleError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ModuleError::BadArg {
            name: name.into(),
            value: v.into(),
            message: "must be letters, digits and `_` only".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("db"), "`db`");
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(ident("x`; DROP"), "`x``; DROP`");
        assert_eq!(lit("it's"), r"'it\'s'");
        assert_eq!(lit(r"a\b"), r"'a\\b'");
        assert_eq!(lit(r"\'; DROP x; --"), r"'\\\'; DROP x; --'");
        assert_eq!(lit("l1\nl2\0"), r"'l1\nl2\0'");
        assert_eq!(cnf_value(r#"p"w\x#y"#), r#""p\"w\\x#y""#);
    }

    #[test]
    fn batch_fields() {
        assert_eq!(field("a\\tb\\nc\\\\d"), Some("a\tb\nc\\d".into()));
        assert_eq!(field("NULL"), None);
        let r = rows("x\ty\nNULL\tz\n");
        assert_eq!(col(&r[1], 0), "");
        assert_eq!(col(&r[1], 1), "z");
    }

    #[test]
    fn native_password_hash() {
        // SELECT PASSWORD('password') on MariaDB.
        assert_eq!(
            native_hash("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }

    #[test]
    fn login_never_in_argv() {
        let mut a = Map::new();
        a.insert("login_user".into(), "admin".into());
        a.insert("login_password".into(), "Canary\"pw".into());
        let l = Login::from_args(&a).unwrap();
        let p = l.probe(&["SELECT 1".into()]);
        let Probe::ExecStdin { argv, stdin } = p else {
            panic!()
        };
        assert!(!argv.join(" ").contains("Canary"));
        let s = String::from_utf8(stdin).unwrap();
        assert!(s.starts_with("[client]\nuser=\"admin\"\npassword=\"Canary\\\"pw\"\n"));
        assert_eq!(argv[4], s.find("SET SESSION").unwrap().to_string());
        assert!(!format!("{l:?}").contains("Canary"));
    }
}
