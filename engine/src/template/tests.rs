//! Tests of the public `Templater` API: strictness, escaping, typed values,
//! no re-templating, Jinja rewrites and errors, conditions.

use super::{has_template, TemplateError, Templater};
use serde_json::{json, Value};
use std::sync::Arc;

fn r(t: &str, vars: Value) -> String {
    Templater::new()
        .render(t, &vars)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
}

fn rv(v: Value, vars: Value) -> Value {
    Templater::new()
        .render_value(&v, &vars)
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn cond(e: &str, vars: Value) -> bool {
    Templater::new()
        .condition(e, &vars)
        .unwrap_or_else(|err| panic!("{e}: {err}"))
}

#[test]
fn plain_variables_and_paths() {
    let v = json!({"x": "a", "n": 5, "h": {"sub": {"y": true}}});
    assert_eq!(r("{{ x }}-{{x}}-{{ n }}-{{ h.sub.y }}", v), "a-a-5-true");
    assert_eq!(
        r("no templates & <stuff>", json!({})),
        "no templates & <stuff>"
    );
}

#[test]
fn undefined_variable_is_an_error() {
    let t = Templater::new();
    let e = t.render("{{ x }}", &json!({}));
    assert!(
        matches!(&e, Err(TemplateError::Undefined { variable, .. }) if variable == "x"),
        "{e:?}"
    );
    let msg = e.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert_eq!(msg, "undefined variable `x` in `{{ x }}`");
    let e = t.render("{{ a.b }}", &json!({"a": {}}));
    assert!(matches!(e, Err(TemplateError::Undefined { variable, .. }) if variable == "a.b"));
    let e = t.render("{{upper nope}}", &json!({}));
    assert!(matches!(e, Err(TemplateError::Undefined { variable, .. }) if variable == "nope"));
    let e = t.render("{{#each xs}}{{this}}{{/each}}", &json!({}));
    assert!(matches!(e, Err(TemplateError::Undefined { variable, .. }) if variable == "xs"));
    let e = t.render("{{#if flag}}y{{/if}}", &json!({}));
    assert!(matches!(e, Err(TemplateError::Undefined { variable, .. }) if variable == "flag"));
}

#[test]
fn html_escaping_is_off() {
    let v = json!({"cmd": "a && b < c", "q": "\"quoted\" 'x'"});
    assert_eq!(
        r("run: {{ cmd }} {{q}}", v),
        "run: a && b < c \"quoted\" 'x'"
    );
}

#[test]
fn if_blocks_use_ansible_truthiness() {
    let v = json!({"on": "true", "off": "false", "no": "no", "zero": 0, "list": []});
    assert_eq!(
        r(
            "{{#if on}}1{{/if}}{{#if off}}2{{/if}}{{#if no}}3{{/if}}{{#if zero}}4{{/if}}",
            v.clone()
        ),
        "1"
    );
    assert_eq!(
        r("{{#unless list}}empty{{else}}full{{/unless}}", v.clone()),
        "empty"
    );
    assert_eq!(r("{{#if off}}a{{else if on}}b{{else}}c{{/if}}", v), "b");
}

#[test]
fn each_and_with_blocks() {
    let v = json!({"xs": ["a", "b"], "m": {"k": "v"}, "sep": ","});
    assert_eq!(
        r(
            "{{#each xs}}{{@index}}={{this}}{{../sep}}{{/each}}",
            v.clone()
        ),
        "0=a,1=b,"
    );
    assert_eq!(r("{{#each m}}{{@key}}:{{this}}{{/each}}", v.clone()), "k:v");
    assert_eq!(
        r("{{#each xs as |x|}}[{{x}}]{{/each}}", v.clone()),
        "[a][b]"
    );
    assert_eq!(r("{{#with m}}{{k}}{{/with}}", v), "v");
}

#[test]
fn render_value_keeps_types() {
    let vars = json!({"n": 5, "b": true, "xs": [1, 2], "m": {"k": "v"}, "s": "a,b",
                      "hostvars": {"h1": {"y": 7}}});
    let v = json!({
        "n": "{{ n }}", "n2": "{{n}}", "b": "{{ b }}", "xs": "{{ xs }}", "m": "{{ m }}",
        "hv": "{{ hostvars.h1.y }}", "split": "{{ (split s \",\") }}", "bare": "{{ split s \",\" }}",
        "mixed": "n={{ n }}", "list": ["{{ n }}", "x", 3], "{{ key }}": "kept", "num": 1.5
    });
    let out = rv(v, vars);
    assert_eq!(
        out,
        json!({
            "n": 5, "n2": 5, "b": true, "xs": [1, 2], "m": {"k": "v"}, "hv": 7,
            "split": ["a", "b"], "bare": ["a", "b"], "mixed": "n=5", "list": [5, "x", 3],
            "{{ key }}": "kept", "num": 1.5
        })
    );
}

#[test]
fn rendered_output_is_never_retemplated() {
    let vars = json!({"evil": "{{ secret }}", "secret": "s"});
    assert_eq!(r("x={{ evil }}", vars.clone()), "x={{ secret }}");
    assert_eq!(
        rv(json!(["{{ evil }}", "a {{ evil }}"]), vars),
        json!(["{{ secret }}", "a {{ secret }}"])
    );
}

#[test]
fn jinja_subscripts_are_rewritten() {
    let vars = json!({
        "hostvars": {"web1.example.com": {"x": "ok"}, "h": {"x": 1}},
        "groups": {"zk": ["z1", "z2"]},
        "inventory_hostname": "h",
        "item": "web1.example.com"
    });
    let t = |s: &str| r(s, vars.clone());
    assert_eq!(t("{{ hostvars['h']['x'] }}"), "1");
    assert_eq!(t("{{ hostvars[\"web1.example.com\"].x }}"), "ok");
    assert_eq!(t("{{ groups['zk'][0] }}-{{ groups.zk[1] }}"), "z1-z2");
    assert_eq!(t("{{ hostvars[inventory_hostname]['x'] }}"), "1");
    assert_eq!(t("{{ hostvars[item].x }}"), "ok");
    assert_eq!(
        rv(json!("{{ groups['zk'] }}"), vars.clone()),
        json!(["z1", "z2"])
    );
    let e = Templater::new().render("{{ hostvars[item].nope }}", &vars);
    assert!(matches!(e, Err(TemplateError::Undefined { .. })), "{e:?}");
    // Outside expressions, brackets are left alone.
    assert_eq!(t("a['b'] {{ groups['zk'][0] }}"), "a['b'] z1");
}

#[test]
fn jinja_filters_are_reported_with_the_helper() {
    let t = Templater::new();
    let e = t.render("{{ x | default('a') }}", &json!({}));
    let Err(TemplateError::JinjaFilter {
        filter, suggestion, ..
    }) = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(filter, "default");
    assert_eq!(suggestion, "{{default x \"a\"}}");
    let msg = e.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(
        msg.starts_with(
            "Jinja filter `default` is not supported; use the helper: {{default x \"a\"}}"
        ),
        "{msg}"
    );
    let e = t
        .render("{{ xs | join(', ') | upper }}", &json!({}))
        .map_err(|e| e.to_string());
    assert!(e.is_err_and(|m| m.contains("{{upper (join xs \", \")}}")));
    let e = t
        .render("{{ hostvars['h'].x | int }}", &json!({}))
        .map_err(|e| e.to_string());
    assert!(e.is_err_and(|m| m.contains("{{int hostvars.[h].x}}")));
    let e = t
        .render("{{ xs | unique }}", &json!({}))
        .map_err(|e| e.to_string());
    assert!(e.is_err_and(|m| m.contains("`unique`") && m.contains("no helper")));
    // `|` inside strings and block params is not a filter.
    assert_eq!(r(r#"{{ replace "a|b" "|" "/" }}"#, json!({})), "a/b");
}

#[test]
fn jinja_statements_are_a_syntax_error() {
    let e = Templater::new().render("{% if x %}y{% endif %}", &json!({"x": 1}));
    let msg = e.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(
        msg.contains("Jinja statements") && msg.contains("{{#if") && msg.contains("{{#each"),
        "{msg}"
    );
    // Not a statement: printf formats survive.
    assert_eq!(
        r("printf '{%s}' {{ x }}", json!({"x": 1})),
        "printf '{%s}' 1"
    );
}

#[test]
fn syntax_errors_name_the_position() {
    let e = Templater::new().render("line1\n{{#if x}}open", &json!({"x": 1}));
    assert!(matches!(&e, Err(TemplateError::Syntax { .. })), "{e:?}");
    let msg = e.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(msg.contains("not closed"), "{msg}");
    let e = Templater::new().render("a\n{{#if x}}b{{/each}}", &json!({"x": 1}));
    let msg = e.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(
        msg.contains("\"if\" was opened, but \"each\" is closing"),
        "{msg}"
    );
    let e = Templater::new().render("a\n{{ x y z ( }}", &json!({"x": 1}));
    let msg = e.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(msg.contains("line 2, column"), "{msg}");
}

#[test]
fn conditions() {
    let v = json!({"zk_id": 1, "is_primary": "yes", "a": true, "b": false, "mem": 4096,
                   "s": "false", "empty": [], "name": "web"});
    assert!(cond("(eq zk_id 1)", v.clone()));
    assert!(!cond("(eq zk_id 2)", v.clone()));
    assert!(cond("is_primary", v.clone()));
    assert!(cond("{{ (and a (not b)) }}", v.clone()));
    assert!(cond("{{ is_primary }}", v.clone()));
    assert!(cond("(gt mem 2048)", v.clone()));
    assert!(cond("not b", v.clone()));
    assert!(cond("eq name \"web\"", v.clone()));
    assert!(!cond("s", v.clone()));
    assert!(!cond("empty", v.clone()));
    assert!(cond("true", v.clone()) && !cond("false", v.clone()) && !cond("False", v.clone()));
    assert!(cond("(defined zk_id)", v.clone()) && !cond("(defined nope)", v.clone()));
    let t = Templater::new();
    assert!(matches!(
        t.condition("nope", &v),
        Err(TemplateError::Undefined { .. })
    ));
    let e = t.condition("zk_id == 1", &v).map_err(|e| e.to_string());
    assert!(e.is_err_and(|m| m.contains("(eq zk_id 1)")));
    let e = t.condition("x is defined", &v).map_err(|e| e.to_string());
    assert!(e.is_err_and(|m| m.contains("(defined x)")));
    let e = t.condition("x | bool", &v);
    assert!(
        matches!(e, Err(TemplateError::JinjaFilter { template, .. }) if template == "x | bool")
    );
}

#[test]
fn cache_is_shared_across_threads() {
    let t = Arc::new(Templater::new());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                (0..250)
                    .map(|n| t.render("{{ host }}:{{ n }}", &json!({"host": i, "n": n})))
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.join().unwrap_or_else(|_| panic!("thread panicked"));
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out[249], format!("{i}:249"));
    }
}

#[test]
fn has_template_detects_expressions() {
    assert!(has_template("a {{ b }}"));
    assert!(!has_template("a { b }"));
}

#[test]
fn jinja_calls_become_subexpressions() {
    let v = json!({"s": "a,b", "t": " x "});
    assert_eq!(
        r("{{ lookup('env', 'DROVER_TPL_NOT_SET') }}|", v.clone()),
        "|"
    );
    assert_eq!(
        r(
            "{{ join(s.split(','), '+') }} {{ t.strip() }}{{ s.upper() }}",
            v.clone()
        ),
        "a+b xA,B"
    );
    assert_eq!(rv(json!("{{ range(2) }}"), v.clone()), json!([0, 1]));
    let j = json!({"j": "[{\"a\": 1}, 2]"});
    assert_eq!(rv(json!("{{ from_json j }}"), j), json!([{"a": 1}, 2]));
    let e = Templater::new().render("{{ s.startswith('a') }}", &v);
    assert!(matches!(e, Err(TemplateError::Syntax { .. })), "{e:?}");
}

#[test]
fn templates_reading_the_whole_context_still_see_it() {
    let v = json!({"a": 1, "b": [2]});
    assert_eq!(r("{{ to_json this }}", v.clone()), r#"{"a":1,"b":[2]}"#);
    assert_eq!(r("{{#each b}}{{../a}}{{this}}{{/each}}", v.clone()), "12");
    // The same text renders against each host's own variables.
    let t = Templater::new();
    for n in 0..3 {
        assert_eq!(
            t.render("{{ a }}", &json!({"a": n, "z": "big"})).ok(),
            Some(n.to_string())
        );
    }
}

#[test]
fn pruned_contexts_keep_every_value_the_template_reads() {
    let v = json!({"hv": {"h1": {"ip": "1", "os": {"name": "deb"}}, "h2": {"ip": "2"}},
                   "g": {"zk": ["z1", "z2"]}, "k": "h2"});
    let t = "{{hv.h1.os.name}} {{#with hv.h1}}{{ip}}{{/with}} {{len hv}} {{g.zk.[1]}} \
             {{hv[k].ip}} {{#each hv as |h n|}}{{n}}={{h.ip}};{{/each}} {{to_json hv.h1.os}}";
    assert_eq!(r(t, v), r#"deb 1 2 z2 2 h1=1;h2=2; {"name":"deb"}"#);
}
