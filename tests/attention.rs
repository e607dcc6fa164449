//! Attention with the real `codex app-server` (offline, against the in-repo fake model) on
//! a real agentirc, through `codexd run`: unread channel traffic becomes Culture's poll
//! turn, answered in the channel; the agent's own lines never come back to it in a poll;
//! status shows each target's band.
//!
//! Peers: agentirc and codex from `scripts/install-peers`; a missing peer is a loud SKIP
//! (a failure under `CI=true`).

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
use serde_json::Value;
use support::{child, eventually};

/// Short bands so a test sees polls within seconds.
const QUICK_BANDS: &str = "attention:\n  tick_s: 1\n  bands:\n    hot: {interval_s: 1, hold_s: 60}\n    warm: {interval_s: 2, hold_s: 60}\n    cool: {interval_s: 2, hold_s: 60}\n    idle: {interval_s: 2}\n";

/// The user input texts of a model request (what codex sent as the prompt), newest last.
fn user_texts(request: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    for item in request["input"].as_array().into_iter().flatten() {
        if item["role"] != "user" {
            continue;
        }
        for part in item["content"].as_array().into_iter().flatten() {
            if let Some(text) = part["text"].as_str() {
                texts.push(text.to_owned());
            }
        }
    }
    texts
}

fn attention(agent: &CodexAgent) -> Option<Value> {
    let status = agent.scratch.status()?;
    child(&status, NICK, "attention").map(|c| c["detail"].clone())
}

fn band(agent: &CodexAgent, target: &str) -> Option<String> {
    let detail = attention(agent)?;
    detail["targets"]
        .as_array()?
        .iter()
        .find(|t| t["target"] == target)
        .and_then(|t| t["band"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread")]
async fn unread_channel_lines_become_a_poll_turn_without_the_agents_own_lines() {
    let script = vec![
        Reply::text("poll answer one"),
        Reply::text("poll answer two"),
    ];
    let extra = Extra {
        top: QUICK_BANDS,
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), extra).await else {
        return;
    };
    agent.say("#general", "anyone around?").await;
    agent.reply("#general", "poll answer one").await;
    agent.say("#general", "second line").await;
    agent.reply("#general", "poll answer two").await;

    let model = agent.model.as_ref().expect("fake model");
    let requests = model.wait_requests(2).await;
    let first = user_texts(&requests[0]);
    assert_eq!(
        first.last().map(String::as_str),
        Some(
            "[IRC Channel Poll: #general] Recent unread messages:\n  <spark-ori> anyone around?\n\nRespond naturally if any messages need your attention."
        ),
        "Culture's poll prompt: {first:?}"
    );
    let second = user_texts(&requests[1]);
    assert_eq!(
        second.last().map(String::as_str),
        Some(
            "[IRC Channel Poll: #general] Recent unread messages:\n  <spark-ori> second line\n\nRespond naturally if any messages need your attention."
        ),
        "the agent's own reply is not polled back to it (upstream defect 7.2-a): {second:?}"
    );
    eventually("two poll turns counted", || {
        let detail = attention(&agent)?;
        let runner = agent.runner()?;
        (detail["polls"] == 2 && runner["detail"]["pending"] == 0).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mention_makes_its_channel_hot_and_status_shows_every_band() {
    let script = vec![Reply::text("hi back")];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), Extra::default()).await else {
        return;
    };
    eventually("both configured channels tracked as IDLE", || {
        (band(&agent, "#general")? == "IDLE" && band(&agent, "#ops")? == "IDLE").then_some(())
    });
    agent.say("#general", &format!("@{NICK} hello")).await;
    agent.reply("#general", "hi back").await;
    eventually("#general is HOT, #ops still IDLE", || {
        (band(&agent, "#general")? == "HOT" && band(&agent, "#ops")? == "IDLE").then_some(())
    });
    let detail = attention(&agent).expect("attention status");
    assert_eq!(detail["mode"], "bands");
    assert_eq!(
        detail["sleep"],
        Value::Null,
        "no sleep window unless configured"
    );
    assert_eq!(
        detail["polls"], 0,
        "a mention is a turn of its own, not a poll"
    );

    // A panic and a hang restart only the attention actor, which keeps its bands.
    for (kind, restarts) in [("panic", 1), ("hang:30", 2)] {
        let socket = agent.scratch.socket();
        let out = agent.scratch.cli(&[
            "fault",
            "--socket",
            socket.to_str().expect("utf-8"),
            NICK,
            "attention",
            kind,
        ]);
        assert!(out.status.success(), "fault {kind}: {out:?}");
        eventually(&format!("attention restarted after {kind}"), || {
            let status = agent.scratch.status()?;
            let attention = child(&status, NICK, "attention")?;
            (attention["restarts"] == restarts && attention["state"] == "running").then_some(())
        });
        assert_eq!(
            band(&agent, "#general").as_deref(),
            Some("HOT"),
            "after {kind}"
        );
    }
    let runner = agent.runner().expect("runner");
    assert_eq!(runner["restarts"], 0, "siblings untouched");
}
