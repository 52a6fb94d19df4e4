//! Unit tests of lineinfile's pure text transforms.

use super::*;

fn ed(line: &str) -> LineEdit {
    LineEdit {
        present: true,
        line: Some(line.into()),
        matcher: Matcher::Exact,
        insert: Insert::Eof,
        backrefs: false,
        firstmatch: false,
        create: false,
    }
}

fn run(e: &LineEdit, text: &str) -> (String, String) {
    let out = e.edit("/f", Some(text)).unwrap();
    (out.after.unwrap(), out.msg)
}

fn re(s: &str) -> Regex {
    Regex::new(s).unwrap()
}

#[test]
fn appends_and_fixes_missing_newline() {
    assert_eq!(run(&ed("c"), "a\nb").0, "a\nb\nc\n");
    assert_eq!(run(&ed("c"), "").0, "c\n");
    assert_eq!(
        run(&ed("b"), "a\nb\n"),
        ("a\nb\n".into(), "line already present".into())
    );
}

#[test]
fn regexp_replaces_last_match_or_first_with_firstmatch() {
    let mut e = ed("x=9");
    e.matcher = Matcher::Regexp(re("^x="));
    assert_eq!(run(&e, "x=1\ny\nx=2\n").0, "x=1\ny\nx=9\n");
    e.firstmatch = true;
    assert_eq!(run(&e, "x=1\ny\nx=2\n").0, "x=9\ny\nx=2\n");
    // `$` sees the line without its newline, as in Python.
    e.matcher = Matcher::Regexp(re("^y$"));
    assert_eq!(run(&e, "x=1\ny\n").0, "x=1\nx=9\n");
    // A replaced last line gains its newline.
    e.matcher = Matcher::Regexp(re("^x"));
    assert_eq!(run(&e, "x=1").0, "x=9\n");
}

#[test]
fn regexp_without_match_but_exact_line_is_no_change() {
    let mut e = ed("x=9");
    e.matcher = Matcher::Regexp(re("^nomatch"));
    assert_eq!(run(&e, "x=9\n").0, "x=9\n");
}

#[test]
fn backrefs_expand_and_never_insert() {
    let mut e = ed(r"port=\1\g<1>0 \g<name>");
    e.matcher = Matcher::Regexp(re(r"^port=(?P<name>\d+)$"));
    e.backrefs = true;
    assert_eq!(run(&e, "port=8\n").0, "port=880 8\n");
    assert_eq!(run(&e, "nothing\n").0, "nothing\n");
}

#[test]
fn insert_positions() {
    let mut e = ed("new");
    e.insert = Insert::Bof;
    assert_eq!(run(&e, "a\n").0, "new\na\n");
    e.insert = Insert::After(re("^a"));
    assert_eq!(run(&e, "a1\nb\na2\nc\n").0, "a1\nb\na2\nnew\nc\n");
    e.firstmatch = true;
    assert_eq!(run(&e, "a1\nb\na2\nc\n").0, "a1\nnew\nb\na2\nc\n");
    e.firstmatch = false;
    e.insert = Insert::Before(re("^a"));
    assert_eq!(run(&e, "a1\nb\na2\n").0, "a1\nb\nnew\na2\n");
    // No insertafter match: EOF.
    e.insert = Insert::After(re("^zzz"));
    assert_eq!(run(&e, "a\n").0, "a\nnew\n");
    // insertafter the last line, which lacks its newline.
    e.insert = Insert::After(re("^a"));
    assert_eq!(run(&e, "b\na").0, "b\na\nnew\n");
}

#[test]
fn absent_removes_every_match() {
    let mut e = ed("x");
    e.present = false;
    assert_eq!(
        run(&e, "x\ny\nx\n"),
        ("y\n".into(), "2 line(s) removed".into())
    );
    e.matcher = Matcher::Search("y".into());
    assert_eq!(run(&e, "xy\nz\n").0, "z\n");
    assert!(e.edit("/f", None).unwrap().after.is_none());
}

#[test]
fn missing_file_needs_create() {
    let mut e = ed("a");
    assert!(e
        .edit("/f", None)
        .unwrap_err()
        .to_string()
        .contains("does not exist"));
    e.create = true;
    assert_eq!(e.edit("/f", None).unwrap().after.as_deref(), Some("a\n"));
}

#[test]
fn expand_escapes() {
    let r = re("(a)(b)?");
    let c = r.captures("a").unwrap();
    assert_eq!(expand(&c, r"\1-\2-\\-\n"), "a--\\-\n");
}
