//! One trace from a mention to the line the agent's tool sends, checked at a real OTLP
//! receiver: `spark-ori` mentions the agent with a traceparent tag on a real agentirc, the
//! real codex (offline against the fake model) calls `irc_send`, and the `#ops` line that
//! `spark-ori` receives continues the chain (docs/telemetry.md, `codexd.tool.run`).
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

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::Reply;
use irc_client::split_tags;
use otlp::{OtlpSink, ReceivedSpan};
use serde_json::json;
use support::eventually;

/// The mention's trace, as `spark-ori`'s own (unexported) span would send it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const ORI_SPAN_ID: &str = "00f067aa0ba902b7";

/// The one span named `name` under `parent` whose attribute `key` is `value`, or a panic
/// showing every span of the trace.
fn child_of<'a>(
    spans: &'a [ReceivedSpan],
    parent: &str,
    name: &str,
    (key, value): (&str, &str),
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name == name && s.parent_span_id == parent)
        .filter(|s| s.attr(key).as_deref() == Some(value))
        .collect();
    match found.as_slice() {
        [span] => span,
        _ => panic!("expected one {name} under {parent}, found {found:#?} in {spans:#?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_traces_through_the_tool_call_to_the_line_it_sends() {
    let sink = match OtlpSink::start() {
        Ok(sink) => sink,
        Err(reason) => return otlp::skip_or_fail(&reason),
    };
    let top = format!(
        "telemetry:\n  enabled: true\n  service_name: codexd-tools-trace\n  otlp_endpoint: {}\n  otlp_protocol: grpc\n",
        sink.grpc_endpoint()
    );
    let script = vec![
        Reply::call(
            "irc_send",
            json!({"channel": "#ops", "message": "traced from the tool"}),
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
    assert!(
        agent.ori.acked_caps().iter().any(|c| c == "message-tags"),
        "spark-ori can send and see trace tags"
    );
    agent
        .ori
        .send(&format!(
            "@culture.dev/traceparent=00-{TRACE_ID}-{ORI_SPAN_ID}-01 PRIVMSG #general :@{NICK} tell #ops"
        ))
        .await;
    let line = agent.reply_line("#ops", "traced from the tool").await;
    agent.reply("#general", "sent it").await;
    eventually("the turn has ended", || {
        (agent.runner()?["detail"]["turns_completed"] == 1).then_some(())
    });
    agent.stop_daemon(); // flushes every span to the receiver

    let all = sink.spans();
    let spans: Vec<ReceivedSpan> = all
        .iter()
        .filter(|s| s.trace_id == TRACE_ID)
        .cloned()
        .collect();
    // agentirc's mention NOTICE to the agent carries the same traceparent: the PRIVMSG.
    let handle = child_of(
        &spans,
        ORI_SPAN_ID,
        "harness.irc.message.handle",
        ("irc.command", "PRIVMSG"),
    );
    assert_eq!(
        handle.attr("culture.trace.origin").as_deref(),
        Some("remote")
    );
    let turn = child_of(
        &spans,
        &handle.span_id,
        "harness.llm.call",
        ("harness.nick", NICK),
    );
    assert_eq!(turn.attr("outcome").as_deref(), Some("success"));
    // The GenAI semantic conventions, next to Culture's names.
    let genai_turn = [
        ("gen_ai.operation.name", "invoke_agent".to_owned()),
        ("gen_ai.provider.name", "openai".to_owned()),
        ("gen_ai.system", "openai".to_owned()),
        ("gen_ai.request.model", "fake-model".to_owned()),
        ("gen_ai.agent.name", NICK.to_owned()),
        (
            "gen_ai.conversation.id",
            turn.attr("codex.thread_id").unwrap_or_default(),
        ),
        (
            "gen_ai.usage.input_tokens",
            turn.attr("tokens.input").unwrap_or_default(),
        ),
        (
            "gen_ai.usage.output_tokens",
            turn.attr("tokens.output").unwrap_or_default(),
        ),
    ];
    for (key, want) in genai_turn {
        assert!(!want.is_empty(), "{key}: nothing to compare in {turn:#?}");
        assert_eq!(turn.attr(key), Some(want), "{key} on {turn:#?}");
    }
    for key in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
        let value = &turn.attributes[key];
        assert!(value.get("intValue").is_some(), "{key} is an int: {value}");
    }
    let call = child_of(
        &spans,
        &turn.span_id,
        "codexd.tool.call",
        ("tool.name", "irc_send"),
    );
    assert_eq!(call.attr("tool.type").as_deref(), Some("dynamicToolCall"));
    assert_eq!(call.attr("tool.status").as_deref(), Some("completed"));
    let genai_call = [
        ("gen_ai.operation.name", Some("execute_tool".to_owned())),
        ("gen_ai.tool.name", Some("irc_send".to_owned())),
        ("gen_ai.tool.call.id", call.attr("tool.id")),
        ("gen_ai.tool.type", Some("function".to_owned())),
    ];
    for (key, want) in genai_call {
        assert!(want.is_some(), "{key}: nothing to compare in {call:#?}");
        assert_eq!(call.attr(key), want, "{key} on {call:#?}");
    }
    let run = child_of(
        &spans,
        &call.span_id,
        "codexd.tool.run",
        ("tool.name", "irc_send"),
    );
    assert_eq!(run.attr("tool.call_id"), call.attr("tool.id"), "{run:#?}");
    assert_eq!(run.attr("tool.outcome").as_deref(), Some("ok"));
    assert_eq!(run.attr("agent.nick").as_deref(), Some(NICK));
    assert_eq!(
        run.attr("gen_ai.tool.call.id"),
        call.attr("tool.id"),
        "{run:#?}"
    );
    assert_eq!(run.attr("gen_ai.tool.name").as_deref(), Some("irc_send"));
    let duration = run.attr("tool.duration_ms").unwrap_or_default();
    assert!(
        duration.parse::<u64>().is_ok(),
        "tool.duration_ms: {run:#?}"
    );

    let (tags, _) = split_tags(&line);
    let traceparent = tags
        .iter()
        .find(|(key, _)| key == "culture.dev/traceparent")
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| panic!("the tool's line carries no trace: {line}"));
    assert_eq!(
        traceparent,
        format!("00-{TRACE_ID}-{}-01", run.span_id),
        "the line others see names the tool run as its parent: {line}"
    );

    // The mention was counted by the intake, and the count reached the collector too.
    let metrics = sink.metrics();
    let intake = metrics.iter().find(|m| m.name == "codexd.intake.messages");
    assert_eq!(
        intake.map(|m| m.scope.as_str()),
        Some("codexd"),
        "codexd.intake.messages exported"
    );
    // The turn's tokens in the GenAI histogram, one sample per token type.
    let usage = sink.latest_points("gen_ai.client.token.usage");
    for (kind, span_key) in [("input", "tokens.input"), ("output", "tokens.output")] {
        let point = usage
            .iter()
            .find(|p| p.attr("gen_ai.token.type").as_deref() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} tokens in {usage:#?}"));
        assert_eq!(point.count, Some(1), "{point:#?}");
        let sum = point.value.map(|v| v.to_string());
        assert_eq!(sum, turn.attr(span_key), "{point:#?}");
        assert_eq!(
            point.attr("gen_ai.operation.name").as_deref(),
            Some("invoke_agent")
        );
        assert_eq!(
            point.attr("gen_ai.provider.name").as_deref(),
            Some("openai")
        );
        assert_eq!(
            point.attr("gen_ai.request.model").as_deref(),
            Some("fake-model")
        );
    }
}
