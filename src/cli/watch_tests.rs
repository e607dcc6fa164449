use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::*;

fn line(event_type: &str, payload: Value) -> String {
    json!({
        "ts": "2026-03-01T12:01:02.345678Z",
        "server": "spark",
        "agent": "spark-a",
        "trace_id": "",
        "span_id": "",
        "event_type": event_type,
        "payload": payload,
    })
    .to_string()
}

fn shown(event_type: &str, payload: Value) -> String {
    render(&line(event_type, payload), &TimeZone::UTC)
}

#[test]
fn each_event_of_one_turn_reads_as_one_line() {
    let table = [
        (
            "message.in",
            json!({"kind": "mention", "outcome": "journaled", "from": "ori", "target": "#dev", "text": "@spark-a hi"}),
            "12:01:02 spark-a      ← ori in #dev: \"@spark-a hi\"",
        ),
        (
            "message.in",
            json!({"kind": "dm", "outcome": "refused_rate", "from": "ori", "target": "ori", "text": "psst"}),
            "12:01:02 spark-a      ← ori (dm): \"psst\" [refused_rate]",
        ),
        (
            "turn.start",
            json!({"conversation": "#dev", "thread_id": "t", "turn_id": "u"}),
            "12:01:02 spark-a      turn start #dev",
        ),
        (
            "tool.call",
            json!({"tool": "irc_send", "call_id": "c", "arguments": {}, "outcome": "ok", "duration_ms": 12}),
            "12:01:02 spark-a      tool irc_send ok 12ms",
        ),
        (
            "message.out",
            json!({"command": "PRIVMSG", "target": "#dev", "text": "hello", "lines": 1, "queued": false}),
            "12:01:02 spark-a      → #dev \"hello\"",
        ),
        (
            "message.out",
            json!({"command": "NOTICE", "target": "ori", "text": "a\nb", "lines": 2, "queued": true}),
            "12:01:02 spark-a      → ori notice \"a\\nb\" (2 lines) (queued: IRC is down)",
        ),
        (
            "turn.end",
            json!({"conversation": "#dev", "outcome": "success", "tokens_input": 1200, "tokens_output": 80, "duration_ms": 3210}),
            "12:01:02 spark-a      turn done #dev 3.2s, 1200 in / 80 out tokens",
        ),
        (
            "turn.end",
            json!({"conversation": "#dev", "outcome": "error", "error": "model\u{1b}[2J down", "duration_ms": 500}),
            "12:01:02 spark-a      turn error #dev 0.5s: model\\x1b[2J down",
        ),
        (
            "watch.skipped",
            json!({"skipped": 12}),
            "12:01:02 -- 12 events skipped (this watcher fell behind)",
        ),
    ];
    for (event_type, payload, want) in table {
        assert_eq!(shown(event_type, payload.clone()), want, "{payload}");
    }
}

#[test]
fn a_remote_users_text_cannot_drive_the_terminal() {
    let hostile =
        "hi\r\nQUIT :x \u{1}VERSION\u{1} \u{1b}]0;owned\u{7} \u{9b}2J abc\u{202e}def \"q\" \\x01";
    let payload = json!({"kind": "mention", "outcome": "journaled", "from": "ev\u{1b}[31mil", "target": "#dev", "text": hostile});
    let rendered = shown("message.in", payload);
    assert!(
        !rendered
            .chars()
            .any(|c| c.is_control() || is_bidi_control(c)),
        "{rendered:?}"
    );
    assert_eq!(
        rendered,
        "12:01:02 spark-a      ← ev\\x1b[31mil in #dev: \"hi\\r\\nQUIT :x \\x01VERSION\\x01 \\x1b]0;owned\\x07 \\x9b2J abc\\u{202e}def \\\"q\\\" \\\\x01\""
    );
}

#[test]
fn long_texts_are_cut_and_counted_and_other_lines_are_escaped_as_they_are() {
    let long = "x".repeat(250);
    let rendered = shown(
        "message.out",
        json!({"command": "PRIVMSG", "target": "#dev", "text": long, "lines": 1, "queued": false}),
    );
    assert!(rendered.ends_with("\"… (+50 chars)"), "{rendered}");
    assert_eq!(
        render("not json \u{1b}[2J", &TimeZone::UTC),
        "not json \\x1b[2J"
    );
    assert_eq!(
        shown("turn.later", json!({"a": 1})),
        "12:01:02 spark-a      turn.later \"{\\\"a\\\":1}\""
    );
}
