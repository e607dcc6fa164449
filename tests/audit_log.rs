//! The audit log of a real daemon: `spark-ori` mentions the agent with a traceparent tag on
//! a real agentirc, the real codex (offline against the fake model) calls `irc_send`, then
//! answers; the agent's audit lines (docs/telemetry.md "Audit log") tell that story in
//! order, on the mention's trace, in a 0600 `codexd.<date>.jsonl` in a 0700 directory.
//!
//! Peers: agentirc, codex and the OTLP receiver from `scripts/install-peers`; a missing peer
//! is a loud SKIP (a failure under `CI=true`).

#[path = "support/codex_agent.rs"]
mod codex_agent;
#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::Reply;
use otlp::OtlpSink;
use serde_json::{Value, json};
use support::eventually;

/// The mention's trace, as `spark-ori`'s own (unexported) span would send it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const ORI_SPAN_ID: &str = "00f067aa0ba902b7";

/// Every audit line in `dir`, files in name order (a run across midnight has two).
fn audit_lines(dir: &Path) -> Vec<Value> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("the audit directory exists")
        .map(|entry| entry.expect("entry").path())
        .collect();
    names.sort();
    names
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).expect("readable");
            text.lines()
                .map(|line| serde_json::from_str(line).expect("a JSON line"))
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// The position of the one line of `event_type` that `matches`, or a panic showing all.
fn position(lines: &[Value], event_type: &str, matches: impl Fn(&Value) -> bool) -> usize {
    let found: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i]["event_type"] == event_type && matches(&lines[i]["payload"]))
        .collect();
    match found.as_slice() {
        [i] => *i,
        _ => panic!("expected one {event_type} line, found {found:?} in {lines:#?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_is_audited_from_intake_through_the_tool_call_to_the_reply() {
    let sink = match OtlpSink::start() {
        Ok(sink) => sink,
        Err(reason) => return otlp::skip_or_fail(&reason),
    };
    let top = format!(
        "telemetry:\n  enabled: true\n  service_name: codexd-audit\n  otlp_endpoint: {}\n  otlp_protocol: grpc\n  audit_enabled: true\n  audit_dir: '{{home}}/audit'\n",
        sink.grpc_endpoint()
    );
    let script = vec![
        Reply::call(
            "irc_send",
            json!({"channel": "#ops", "message": "audited from the tool"}),
        ),
        Reply::text("sent it"),
    ];
    let extra = Extra {
        top: &top,
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), extra).await else {
        return;
    };
    agent
        .ori
        .send(&format!(
            "@culture.dev/traceparent=00-{TRACE_ID}-{ORI_SPAN_ID}-01 PRIVMSG #general :@{NICK} tell #ops"
        ))
        .await;
    agent.reply("#ops", "audited from the tool").await;
    agent.reply("#general", "sent it").await;
    eventually("the turn has ended", || {
        (agent.runner()?["detail"]["turns_completed"] == 1).then_some(())
    });
    // `codexd status` shows the log: its file and counts, nothing dropped.
    let detail = eventually("the audit service counts the lines", || {
        let status = agent.scratch.status()?;
        let audit = status["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "audit")?;
        let detail = audit["detail"].clone();
        (detail["written"].as_u64()? >= 6).then_some(detail)
    });
    assert_eq!(detail["dropped"], 0, "{detail:#}");
    agent.stop_daemon(); // the writer drains and fsyncs

    let dir = agent.scratch.path("audit");
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&dir), 0o700);
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(
            name.starts_with("codexd.") && name.ends_with(".jsonl"),
            "{name}"
        );
        assert_eq!(mode(&path), 0o600, "{name}");
    }
    let lines: Vec<Value> = audit_lines(&dir)
        .into_iter()
        .filter(|line| line["agent"] == NICK)
        .collect();
    for line in &lines {
        assert_eq!(line["server"], "spark", "{line:#}");
        assert!(
            line["ts"]
                .as_str()
                .is_some_and(|ts| ts.ends_with('Z') && ts.len() == 27),
            "RFC 3339 UTC with microseconds: {line:#}"
        );
        assert_eq!(line["trace_id"], TRACE_ID, "one trace: {line:#}");
        assert_eq!(line["span_id"].as_str().map(str::len), Some(16), "{line:#}");
    }

    let mention = position(&lines, "message.in", |p| p["kind"] == "mention");
    let payload = &lines[mention]["payload"];
    assert_eq!(payload["outcome"], "journaled");
    assert_eq!(payload["from"], "spark-ori");
    assert_eq!(payload["target"], "#general");
    assert_eq!(payload["text"], format!("@{NICK} tell #ops"));
    let start = position(&lines, "turn.start", |p| p["conversation"] == "#general");
    let tool_line = position(&lines, "message.out", |p| p["target"] == "#ops");
    let tool = position(&lines, "tool.call", |p| p["tool"] == "irc_send");
    let reply = position(&lines, "message.out", |p| p["text"] == "sent it");
    let end = position(&lines, "turn.end", |p| p["conversation"] == "#general");
    assert!(
        mention < start && start < tool_line && tool_line < tool && tool < reply && tool < end,
        "mention → turn start → the tool's line → tool call → reply and turn end: {lines:#?}"
    );

    let turn_id = &lines[start]["payload"]["turn_id"];
    assert!(turn_id.is_string(), "{:#}", lines[start]);
    let ended = &lines[end]["payload"];
    assert_eq!(&ended["turn_id"], turn_id);
    assert_eq!(ended["thread_id"], lines[start]["payload"]["thread_id"]);
    assert_eq!(ended["outcome"], "success");
    assert_eq!(
        lines[start]["span_id"], lines[end]["span_id"],
        "the turn's span"
    );
    let call = &lines[tool]["payload"];
    assert_eq!(call["outcome"], "ok");
    assert_eq!(call["arguments"]["channel"], "#ops");
    assert!(call["duration_ms"].is_u64(), "{call:#}");
    assert_eq!(
        lines[tool]["span_id"], lines[tool_line]["span_id"],
        "the tool's line is sent under the tool run's span"
    );
    let out = &lines[tool_line]["payload"];
    assert_eq!(out["command"], "PRIVMSG");
    assert_eq!(out["text"], "audited from the tool");
    assert_eq!(lines[reply]["payload"]["target"], "#general");
}
