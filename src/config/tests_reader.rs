//! Tests of the path-tracking reader.

use std::time::Duration;

use serde_yaml_ng::Value;

use super::reader::*;

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("test YAML parses")
}

const KEYS: Keys = Keys {
    known: &["channels", "nick", "tick_s"],
    ignored: &[
        Ignored {
            key: "suffix",
            why: "Culture-only",
        },
        Ignored {
            key: "token_budget*",
            why: "budgets",
        },
    ],
};

#[test]
fn suggests_close_keys_only() {
    let cases = [
        ("chanels", Some("channels")),
        ("Nick", Some("nick")),
        ("nikc", Some("nick")),
        ("tick", Some("tick_s")),
        ("colour", None),
        ("port", None),
    ];
    for (key, want) in cases {
        assert_eq!(did_you_mean(key, KEYS.known), want, "{key}");
    }
}

#[test]
fn mapping_reports_unknown_and_ignored_keys_with_paths() {
    let value = yaml("nick: a\nchanels: []\nsuffix: x\ntoken_budget_daily: 3\n1: y\n");
    let mut report = Report::default();
    Node::root(&value).mapping(&mut report, &KEYS);
    let (errors, warnings) = report.finish();
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "chanels: unknown key; did you mean \"channels\"?",
            "1: keys must be strings, got 1"
        ]
    );
    assert_eq!(
        warnings,
        [
            "suffix: ignored: Culture-only",
            "token_budget_daily: ignored: budgets"
        ]
    );
}

#[test]
fn durations_need_a_unit_and_a_sane_size() {
    let cases = [
        ("d: 300s", Ok(Duration::from_secs(300))),
        ("d: 1m 30s", Ok(Duration::from_secs(90))),
        (
            "d: 300",
            Err(
                "d: expected a duration such as \"300s\" or \"5m\", got 300 (add a unit: \"300s\")",
            ),
        ),
        (
            "d: \"300\"",
            Err("d: expected a duration such as \"300s\" or \"5m\", got \"300\""),
        ),
        ("d: 0s", Err("d: must be greater than 0")),
        (
            "d: 5M",
            Err(
                "d: must be at most 30 days (\"M\" means months; use \"m\" for minutes), got \"5M\"",
            ),
        ),
        ("d: 40days", Err("d: must be at most 30 days")),
    ];
    for (text, want) in cases {
        let value = yaml(text);
        let mut report = Report::default();
        let fields = Node::root(&value).fields(&mut report);
        let got = fields.get("d").duration(&mut report);
        let (errors, _) = report.finish();
        match want {
            Ok(duration) => assert_eq!((got, errors.len()), (Some(duration), 0), "{text}"),
            Err(message) => assert_eq!(errors[0].to_string(), message, "{text}"),
        }
    }
}

#[test]
fn errors_come_out_in_file_order() {
    let value = yaml("b: 1\na: [x, 2]\n");
    let mut report = Report::default();
    let fields = Node::root(&value).fields(&mut report);
    fields
        .get("missing")
        .expected::<()>(&mut report, "something");
    fields.get("a").strings(&mut report);
    fields.get("b").string(&mut report);
    let (errors, _) = report.finish();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["b", "a[1]", "missing"]);
}

#[test]
fn describes_values_for_messages() {
    let cases = [
        ("null", "null"),
        ("true", "true"),
        ("3.5", "3.5"),
        ("abc", "\"abc\""),
        ("[1]", "a list"),
        ("{a: 1}", "a mapping"),
        ("!x 1", "a value tagged !x"),
    ];
    for (text, want) in cases {
        assert_eq!(describe(&yaml(text)), want, "{text}");
    }
    assert_eq!(quote(&"x".repeat(70)), format!("\"{}\"...", "x".repeat(60)));
}
