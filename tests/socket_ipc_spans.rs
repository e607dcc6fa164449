//! Request and whisper spans of the `socket` actor, parented to the agent's turn. In a
//! binary of its own: the spans are captured by a thread-local subscriber, and tests on
//! other threads of the same binary made span callsites flip to disabled now and then
//! (tracing's interest cache), which dropped this test's spans about one run in three.

#[path = "support/fake_ircd.rs"]
mod fake_ircd;
#[path = "support/ipc_agent.rs"]
mod ipc_agent;
#[path = "support/irc_agent.rs"]
mod irc_agent;
#[path = "support/spans.rs"]
mod spans;

use codexd_actors::runner::TurnScope;
use codexd_actors::socket::{SocketMessage, Whisper};
use codexd_actors::trace::TraceCtx;
use fake_ircd::{Behaviour, FakeIrcd};
use ipc_agent::IpcAgent;
use serde_json::{Value, json};
use spans::{Spans, attr};

async fn started() -> (FakeIrcd, IpcAgent) {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let mut settings = irc_agent::settings("127.0.0.1", fake.port(), "fake", "fake-bot");
    settings.channels = vec!["#general".to_owned()];
    let agent = IpcAgent::start(settings).await;
    agent.wait_irc_connected().await;
    (fake, agent)
}

fn assert_ok(answer: &Value) {
    assert_eq!(answer["ok"], json!(true), "{answer}");
}

/// A request made from inside the agent's codex process (here: this test process, standing
/// in for it) during a turn is a child of the turn's span; outside a turn it is a root.
#[tokio::test(flavor = "current_thread")]
async fn request_spans_are_children_of_the_running_turn() {
    let spans = Spans::capture();

    let (fake, agent) = started().await;
    let mut c = agent.client().await;
    assert_ok(&c.request("irc_channels", json!({})).await);
    let turn = TraceCtx {
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
        tracestate: None,
    };
    agent.turn.set(
        "#general",
        TurnScope {
            pid: std::process::id(),
            trace: turn,
            conversation: Some("#general".into()),
        },
    );
    assert_ok(
        &c.request(
            "irc_send",
            json!({"channel": "#general", "message": "traced"}),
        )
        .await,
    );
    fake.wait_for_line("traced PRIVMSG", |_, l| {
        l.ends_with("PRIVMSG #general :traced")
    })
    .await;
    agent.turn.clear("#general");
    assert_ok(&c.request("status", json!({})).await);
    let evaluation = TraceCtx {
        traceparent: Some("00-1bf7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01".to_owned()),
        tracestate: None,
    };
    let socket = agent.socket.get().expect("socket");
    socket
        .cast(SocketMessage::Whisper(Whisper {
            message: "traced whisper".to_owned(),
            kind: "THINK_DEEPER".to_owned(),
            trace: evaluation,
        }))
        .expect("cast");
    assert!(
        c.next_raw()
            .await
            .is_some_and(|l| l.contains("traced whisper"))
    );
    let whispers = spans.named("codexd.ipc.whisper");
    let whisper = whispers.first().expect("a whisper span");
    assert_eq!(whisper.parent_span_id.to_string(), "c7ad6b7169203331");

    let requests = spans.named("codexd.ipc.request");
    let verbs: Vec<String> = requests
        .iter()
        .map(|s| attr(s, "ipc.verb").unwrap_or_default())
        .collect();
    assert_eq!(verbs, ["irc_channels", "irc_send", "status"]);
    assert_eq!(
        requests[1].span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(requests[1].parent_span_id.to_string(), "b7ad6b7169203331");
    for outside in [&requests[0], &requests[2]] {
        assert_eq!(
            outside.parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "a root"
        );
    }
    // The wire line the request produced carries the request's trace.
    let sent = fake
        .all_lines()
        .await
        .into_iter()
        .find(|l| l.ends_with("PRIVMSG #general :traced"))
        .expect("sent");
    assert!(sent.contains("0af7651916cd43dd8448eb211c80319c"), "{sent}");
    agent.stop().await;
}
