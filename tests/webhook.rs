//! Alerts end to end: `codexd run` on a real agentirc with the scripted fake app-server, a
//! loopback webhook receiver (tests/support/webhook_receiver.rs) and `spark-watch`, a raw
//! client in `#alerts`. A codex crash loop raises exactly one `circuit_open` (HTTP and
//! IRC) and, once its process comes back, one `circuit_closed`; a hanging receiver and the
//! `blackhole` fault never delay the agent's replies; a turn timeout raises `agent_timeout`.
//! With `HTTP_PROXY` set, deliveries go through that proxy (tests/support/http_proxy.rs);
//! secrets in an alert's text or in codex's stderr reach no alert, status or log line.

#[path = "support/codex_agent.rs"]
mod codex_agent;
#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/http_proxy.rs"]
mod http_proxy;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use http_proxy::HttpProxy;
use irc_client::{RawClient, command_and_params};
use serde_json::json;
use support::{child, eventually};
use webhook_receiver::{Answer, WebhookReceiver};

/// `webhooks:` pointing at `receiver`, generic bodies (so requests carry their event); the
/// agent joins `#alerts` (agentirc refuses messages from non-members).
fn webhooks(receiver: &WebhookReceiver, timeout: &str) -> String {
    format!(
        "webhooks:\n  url: {}\n  format: generic\n  timeout: {timeout}\n  max_attempts: 3\n  join_channel: true\n",
        receiver.url()
    )
}

/// A raw client in `#alerts`.
async fn watcher(agent: &CodexAgent) -> RawClient {
    let mut watch =
        RawClient::connect(agent.ircd.host(), agent.ircd.port(), "spark-watch", &[]).await;
    watch.join("#alerts").await;
    watch
}

/// True for a PRIVMSG to `#alerts` containing `needle`.
fn alert_line(line: &str, needle: &str) -> bool {
    let (command, params) = command_and_params(line);
    command == "PRIVMSG"
        && params.first().map(String::as_str) == Some("#alerts")
        && params.get(1).is_some_and(|text| text.contains(needle))
}

/// `codexd fault <nick> <child> <kind>`.
fn fault(agent: &CodexAgent, child: &str, kind: &str) {
    let socket = agent.scratch.socket();
    let out = agent.scratch.cli(&[
        "fault",
        "--socket",
        socket.to_str().expect("utf-8"),
        NICK,
        child,
        kind,
    ]);
    assert!(out.status.success(), "fault {child} {kind}: {out:?}");
}

/// The webhook child's status detail.
fn webhook_detail(agent: &CodexAgent) -> Option<serde_json::Value> {
    let status = agent.scratch.status()?;
    Some(child(&status, NICK, "webhook")?["detail"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loop_raises_one_circuit_open_and_one_circuit_closed() {
    let receiver = WebhookReceiver::start().await;
    let top = webhooks(&receiver, "2s");
    let extra = Extra {
        top: &top,
        restart: "  backoff_base: 100ms\n  backoff_cap: 200ms\n  max_restarts: 3\n  window: 60s\n  cooldown: 3s\n  cooldown_cap: 3s\n  stable_after: 2s\n",
        ..Extra::default()
    };
    let Some(agent) = CodexAgent::start(Codex::Fake("sick_at_start"), extra).await else {
        return;
    };
    let mut watch = watcher(&agent).await;
    let state = agent.scratch.path("fake-app-server-state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("sick"), "").expect("sick");
    fault(&agent, "runner", "kill");
    eventually("the codex process's circuit opens", || {
        (agent.codex_process()?["circuit"] == "open").then_some(())
    });
    std::fs::remove_file(state.join("sick")).expect("healed");
    watch
        .expect("circuit_open in #alerts", |l| alert_line(l, "circuit open"))
        .await;
    let closed = watch
        .expect("circuit_closed in #alerts", |l| {
            alert_line(l, "circuit closed")
        })
        .await;
    assert!(
        closed.contains("codex process-0 is stable again"),
        "{closed}"
    );
    eventually("the circuit_closed request arrives", || {
        (receiver.count_event("circuit_closed") == 1).then_some(())
    });
    let opens: Vec<_> = watch
        .received()
        .iter()
        .filter(|l| alert_line(l, "circuit open"))
        .collect();
    assert_eq!(opens.len(), 1, "one alerts-channel line: {opens:?}");
    assert_eq!(
        receiver.count_event("circuit_open"),
        1,
        "one circuit_open request"
    );
    let open = receiver
        .requests()
        .into_iter()
        .find(|r| r.event().as_deref() == Some("circuit_open"))
        .expect("circuit_open");
    let body = open.json();
    assert_eq!(body["nick"], NICK);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "Agent {NICK}: codex process-0 failed 3 times; circuit open"
        )),
        "{message}"
    );
    assert!(
        message.contains("exited with code 4"),
        "the last error: {message}"
    );
    // Culture's crash-loop alert rides along.
    let spiraling: Vec<_> = receiver
        .requests()
        .iter()
        .filter(|r| r.event().as_deref() == Some("agent_spiraling"))
        .map(|r| r.json()["message"].clone())
        .collect();
    assert_eq!(
        spiraling,
        [format!(
            "Agent {NICK} has crashed 3 times in 60s \u{2014} escalating, not restarting."
        )]
    );
    // The kill (exit -9) and the crashes (exit 4, deduplicated) are agent_error alerts.
    let errors: Vec<String> = receiver
        .requests()
        .iter()
        .filter(|r| r.event().as_deref() == Some("agent_error"))
        .map(|r| r.json()["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        errors,
        [
            format!("Agent {NICK} crashed (exit -9)."),
            format!("Agent {NICK} crashed (exit 4).")
        ]
    );
    let detail = webhook_detail(&agent).expect("webhook status");
    assert_eq!(detail["suppressed"], 1, "{detail}");
    assert_eq!(
        detail["url"],
        format!("http://127.0.0.1:{}", open_port(&receiver))
    );
}

fn open_port(receiver: &WebhookReceiver) -> String {
    let url = receiver.url();
    let rest = url.trim_start_matches("http://127.0.0.1:");
    rest.split('/').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_and_blackhole_do_not_delay_replies() {
    let receiver = WebhookReceiver::start().await;
    receiver.set(Answer::Hang);
    let top = webhooks(&receiver, "30s");
    let extra = Extra {
        top: &top,
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Fake(""), extra).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} baseline")).await;
    let normal = agent.reply("#general", "fake reply to:").await;
    // An alert whose delivery hangs, then more alerts queued behind it.
    for n in 0..3 {
        let ask = json!({"type": "irc_ask", "id": format!("q{n}"), "channel": "#ops", "message": format!("question {n}?"), "timeout": 5});
        let answer = agent.ipc(ask).expect("ipc answers");
        assert_eq!(answer["ok"], true, "{answer}");
    }
    receiver.wait_requests(1).await;
    fault(&agent, "webhook", "blackhole");
    eventually("the webhook is blackholed with alerts waiting", || {
        let detail = webhook_detail(&agent)?;
        (detail["blackhole"] == true && detail["queued"] == 2).then_some(())
    });
    agent
        .say("#general", &format!("@{NICK} still there?"))
        .await;
    let reply = agent.reply("#general", "fake reply to:").await;
    assert!(reply.contains("still there?"), "{reply}");
    assert_eq!(
        normal.split(':').next(),
        reply.split(':').next(),
        "the same kind of reply as before the alerts"
    );
    let detail = webhook_detail(&agent).expect("status");
    assert_eq!(detail["delivered"], 0, "{detail}");
    assert_eq!(
        receiver.requests().len(),
        1,
        "nothing else reached the receiver"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_timeout_raises_agent_timeout() {
    let receiver = WebhookReceiver::start().await;
    let top = webhooks(&receiver, "5s");
    let extra = Extra {
        top: &top,
        agent: "    turn_timeout_seconds: 1\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Fake("hang"), extra).await else {
        return;
    };
    let mut watch = watcher(&agent).await;
    agent
        .say("#general", &format!("@{NICK} take forever"))
        .await;
    agent
        .reply("#general", "Sorry, I encountered an error")
        .await;
    let text = format!("Agent {NICK} turn timed out after 1s.");
    let line = watch
        .expect("agent_timeout in #alerts", |l| alert_line(l, "timed out"))
        .await;
    assert!(line.ends_with(&text), "{line}");
    eventually("the agent_timeout request arrives", || {
        (receiver.count_event("agent_timeout") == 1).then_some(())
    });
    let request = receiver
        .requests()
        .into_iter()
        .find(|r| r.event().as_deref() == Some("agent_timeout"))
        .expect("request");
    assert_eq!(request.json()["message"], text);
}

/// What must never show: tests/support/fake_app_server.py's `stderr_leak` line and the
/// question below carry these (a URL's password and query, an API key).
const SECRETS: [&str; 3] = ["secret", "token=abc", "sk-proj-"];

fn assert_no_secrets(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret:?} in {what}: {text}");
    }
}

/// The first request for `event` the receiver got.
fn request_for(receiver: &WebhookReceiver, event: &str) -> webhook_receiver::Request {
    eventually(&format!("the {event} request arrives"), || {
        receiver
            .requests()
            .into_iter()
            .find(|r| r.event().as_deref() == Some(event))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_go_through_the_environments_proxy_with_their_secrets_masked() {
    let receiver = WebhookReceiver::start().await;
    let proxy = HttpProxy::start().await;
    let top = webhooks(&receiver, "5s");
    let env = [("HTTP_PROXY".to_owned(), proxy.url())];
    let extra = Extra {
        top: &top,
        env: &env,
        ..Extra::default()
    };
    let Some(agent) = CodexAgent::start(Codex::Fake(""), extra).await else {
        return;
    };
    let question = "may I use https://user:secret@host.test/x?token=abc with sk-proj-abcdefghijklmnopqrstuvwx?";
    let ask = json!({"type": "irc_ask", "id": "q1", "channel": "#ops", "message": question, "timeout": 5});
    let answer = agent.ipc(ask).expect("ipc answers");
    assert_eq!(answer["ok"], true, "{answer}");
    let request = request_for(&receiver, "agent_question");
    assert!(
        proxy.targets().contains(&receiver.url()),
        "the POST went through the proxy, in absolute form: {:?}",
        proxy.targets()
    );
    let message = request.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("may I use https://host.test/x with sk-[redacted]?"),
        "{message}"
    );
    assert_no_secrets("the alert", &message);
    assert_no_secrets("the daemon's log", &agent.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_stderr_reaches_status_alerts_and_logs_summarised_and_redacted() {
    let receiver = WebhookReceiver::start().await;
    let top = webhooks(&receiver, "5s");
    let extra = Extra {
        top: &top,
        ..Extra::default()
    };
    let Some(agent) = CodexAgent::start(Codex::Fake("stderr_leak,sick_at_start"), extra).await
    else {
        return;
    };
    let mut watch = watcher(&agent).await;
    let tail = eventually("codex's stderr in status", || {
        let process = agent.codex_process()?;
        let tail = process["stderr_tail"].as_str()?;
        tail.contains("fake: ERROR").then(|| tail.to_owned())
    });
    let redacted =
        "fake: ERROR request to https://host.test/x failed; OPENAI_API_KEY sk-[redacted]";
    assert_eq!(tail, redacted);
    // A crash loop: the circuit_open alert quotes the last exit with its stderr.
    let state = agent.scratch.path("fake-app-server-state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("sick"), "").expect("sick");
    fault(&agent, "runner", "kill");
    let line = watch
        .expect("circuit_open in #alerts", |l| alert_line(l, "circuit open"))
        .await;
    let message = request_for(&receiver, "circuit_open").json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains(&format!("exited with code 4; stderr: {redacted}")),
        "{message}"
    );
    assert_no_secrets("status's stderr_tail", &tail);
    assert_no_secrets("the #alerts line", &line);
    assert_no_secrets("the webhook alert", &message);
    let log = agent.log();
    assert!(log.contains("codex stderr"), "stderr lines are logged");
    assert_no_secrets("the daemon's log", &log);
}
