//! Unit tests of ini_file's pure text transform.

use super::*;

fn ed(section: Option<&str>, option: Option<&str>, value: Option<&str>) -> IniEdit {
    IniEdit {
        section: section.map(str::to_string),
        option: option.map(str::to_string),
        values: value.map(|v| vec![v.to_string()]).unwrap_or_default(),
        present: true,
        exclusive: true,
        no_extra_spaces: false,
        ignore_spaces: false,
        allow_no_value: false,
        modify_inactive_option: true,
        create: true,
    }
}

fn run(e: &IniEdit, text: &str) -> (String, bool, &'static str) {
    edit_ini(e, text).unwrap()
}

#[test]
fn new_file_and_new_section() {
    let e = ed(Some("main"), Some("a"), Some("1"));
    assert_eq!(
        run(&e, ""),
        ("[main]\na = 1\n".into(), true, "section and option added")
    );
    assert_eq!(
        run(&e, "[other]\nx = 1\n").0,
        "[other]\nx = 1\n[main]\na = 1\n"
    );
}

#[test]
fn existing_option_is_rewritten_in_place_keeping_the_rest() {
    let text = "; top comment\n[main]\n# note\na=0   \nb = 2\n\n[z]\na = 9\n";
    let e = ed(Some("main"), Some("a"), Some("1"));
    let (out, changed, msg) = run(&e, text);
    assert_eq!(
        out,
        "; top comment\n[main]\n# note\na = 1\nb = 2\n\n[z]\na = 9\n"
    );
    assert!(changed);
    assert_eq!(msg, "option changed");
    assert_eq!(run(&e, &out), (out.clone(), false, "OK"));
}

#[test]
fn new_option_goes_after_last_real_line_of_section() {
    let text = "[main]\nb = 2\n\n# trailing comment\n[z]\n";
    let e = ed(Some("main"), Some("a"), Some("1"));
    assert_eq!(
        run(&e, text).0,
        "[main]\nb = 2\na = 1\n\n# trailing comment\n[z]\n"
    );
}

#[test]
fn commented_option_is_activated_and_duplicates_dropped() {
    let text = "[main]\n#a = 1\na = 2\n";
    let e = ed(Some("main"), Some("a"), Some("1"));
    assert_eq!(run(&e, text).0, "[main]\na = 1\n");
    let mut e = ed(Some("main"), Some("a"), Some("1"));
    e.modify_inactive_option = false;
    assert_eq!(run(&e, text).0, "[main]\n#a = 1\na = 1\n");
}

#[test]
fn no_extra_spaces_and_ignore_spaces() {
    let mut e = ed(Some("s"), Some("a"), Some("1"));
    e.no_extra_spaces = true;
    assert_eq!(run(&e, "[s]\na = 1\n").0, "[s]\na=1\n");
    e.no_extra_spaces = false;
    e.ignore_spaces = true;
    assert!(!run(&e, "[s]\na=1\n").1);
}

#[test]
fn missing_final_newline_is_a_change() {
    let e = ed(Some("s"), Some("a"), Some("1"));
    assert_eq!(run(&e, "[s]\na = 1"), ("[s]\na = 1\n".into(), true, "OK"));
}

#[test]
fn absent_option_and_section() {
    let mut e = ed(Some("s"), Some("a"), None);
    e.present = false;
    assert_eq!(
        run(&e, "[s]\n#a = 0\na = 1\nb = 2\n").0,
        "[s]\n#a = 0\nb = 2\n"
    );
    e.option = None;
    assert_eq!(run(&e, "x = 0\n[s]\nb = 2\n[t]\n").0, "x = 0\n[t]\n");
    assert_eq!(run(&e, "[t]\n"), ("[t]\n".into(), false, "OK"));
}

#[test]
fn option_without_section_goes_to_the_top() {
    let e = ed(None, Some("a"), Some("1"));
    assert_eq!(run(&e, "# c\n[s]\nb = 2\n").0, "a = 1\n# c\n[s]\nb = 2\n");
    assert_eq!(run(&e, "x = 0\n[s]\n").0, "x = 0\na = 1\n[s]\n");
}

#[test]
fn allow_no_value() {
    let mut e = ed(Some("s"), Some("skip-name-resolve"), None);
    e.allow_no_value = true;
    let (out, changed, _) = run(&e, "[s]\nport = 1\n");
    assert_eq!(out, "[s]\nport = 1\nskip-name-resolve\n");
    assert!(changed);
    assert!(!run(&e, &out).1);
}
