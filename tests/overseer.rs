//! The overseer with the real `codex`, offline against the in-repo fake model, on a real
//! agentirc, driven through `codexd run`: the agent answers a mention, the overseer's
//! `codex exec` (same binary, CODEX_HOME and HOME as the agent's) gets the evaluation
//! prompt, and its verdict acts: a CORRECTION reaches Culture's skill client as a whisper;
//! ESCALATIONs pause the agent once the threshold is reached.
//!
//! Peers: agentirc, codex and Culture's clients from `scripts/install-peers`; a missing
//! peer is a loud SKIP (a failure under `CI=true`).

#[path = "support/codex_agent.rs"]
mod codex_agent;
#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/culture.rs"]
mod culture;
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
use codexd_actors::overseer::prompt::Template;
use culture::Culture;
use fake_model::Reply;
use serde_json::{Value, json};
use support::{child, eventually};

/// The overseer's status detail.
fn overseer(agent: &CodexAgent) -> Option<Value> {
    let status = agent.scratch.status()?;
    child(&status, NICK, "overseer").map(|c| c["detail"].clone())
}

/// Every text the model request carried as input, in order.
fn input_texts(request: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    for item in request["input"].as_array().into_iter().flatten() {
        for part in item["content"].as_array().into_iter().flatten() {
            if let Some(text) = part["text"].as_str() {
                texts.push(text.to_owned());
            }
        }
    }
    texts
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correction_reaches_the_skill_client_as_a_whisper() {
    let Some(culture) = Culture::find_or_skip() else {
        return;
    };
    let script = vec![
        Reply::text("I will rewrite the whole codebase in COBOL"),
        Reply::text("CORRECTION stay on the failing test"),
    ];
    let extra = Extra {
        top: "supervisor: {eval_interval: 1, model: fake-judge}\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), extra).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} what next?")).await;
    agent.reply("#general", "COBOL").await;
    let replied = std::time::Instant::now();

    let detail = eventually("the overseer's verdict", || {
        let detail = overseer(&agent)?;
        (detail["evaluations"] == 1).then_some(detail)
    });
    assert_eq!(detail["last_verdict"], "CORRECTION", "{detail}");
    assert_eq!(detail["evaluations_failed"], 0, "{detail}");
    eprintln!(
        "overseer: reply relayed → verdict recorded in {:?} (codex exec, offline)",
        replied.elapsed()
    );

    let model = agent.model.as_ref().expect("fake model");
    let requests = model.wait_requests(2).await;
    let prompt =
        Template::default_prompt().render("Agent: I will rewrite the whole codebase in COBOL");
    let exec = input_texts(&requests[1]);
    assert!(
        exec.iter().any(|text| text == &prompt),
        "the exec request carries the default prompt as is: {exec:?}"
    );
    assert_eq!(requests[1]["model"], "fake-judge");
    let responses: Vec<_> = model
        .received()
        .into_iter()
        .filter(|r| r.path.ends_with("/responses"))
        .collect();
    assert_eq!(responses.len(), 2, "one turn, one evaluation");

    eventually("the whisper waits for a client", || {
        let status = agent.scratch.status()?;
        (child(&status, NICK, "socket")?["detail"]["whispers_queued"] == 1).then_some(())
    });
    let dir = agent.scratch.path("run");
    let out = tokio::task::spawn_blocking(move || culture.skill(&dir, NICK, &["channels"]))
        .await
        .expect("client");
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(
        out.stderr, "[whisper:CORRECTION] stay on the failing test\n",
        "{out:?}"
    );
    assert_eq!(
        out.json()["data"]["channels"],
        json!(["#general", "#ops", "#alerts"])
    );

    // A status query is a turn too, but its answer is not agent activity.
    let status = agent
        .ipc(json!({"type": "status", "query": true}))
        .expect("ipc status");
    assert_eq!(status["data"]["description"], "ok", "{status}");
    let detail = overseer(&agent).expect("overseer status");
    assert_eq!(detail["observed"], 1, "{detail}");
    assert_eq!(detail["evaluations"], 1, "{detail}");

    // A panic restarts the overseer; its window and counters survive.
    let socket = agent.scratch.socket();
    let out = agent.scratch.cli(&[
        "fault",
        "--socket",
        socket.to_str().expect("utf-8"),
        NICK,
        "overseer",
        "panic",
    ]);
    assert!(out.status.success(), "fault: {out:?}");
    let restarted = eventually("the overseer restarted", || {
        let status = agent.scratch.status()?;
        let overseer = child(&status, NICK, "overseer")?;
        (overseer["restarts"] == 1 && overseer["state"] == "running").then(|| overseer.clone())
    });
    assert_eq!(restarted["detail"]["observed"], 1, "{restarted}");
    assert_eq!(
        restarted["detail"]["last_verdict"], "CORRECTION",
        "{restarted}"
    );

    // The model reads the whisper too (a sandboxed agent's skill client cannot reach the
    // socket): at the start of its next turn for a mention.
    agent.say("#general", &format!("@{NICK} and now?")).await;
    agent.reply("#general", "ok").await;
    let model = agent.model.as_ref().expect("fake model");
    let whispered = model.requests().iter().any(|request| {
        let texts = input_texts(request);
        texts.iter().any(|t| {
            t.contains("[whisper:CORRECTION] stay on the failing test") && t.contains("and now?")
        })
    });
    assert!(whispered, "the mention's turn carries the whisper");
}

#[tokio::test(flavor = "multi_thread")]
async fn escalations_pause_the_agent_once_the_threshold_is_reached() {
    let script = vec![
        Reply::text("trying again"),
        Reply::text("ESCALATION loops on the same error"),
        Reply::text("trying once more"),
        Reply::text("ESCALATION still looping"),
    ];
    let extra = Extra {
        top: "supervisor: {eval_interval: 1, escalation_threshold: 2, model: fake-judge}\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), extra).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} fix it")).await;
    agent.reply("#general", "trying again").await;
    eventually("the first escalation", || {
        let detail = overseer(&agent)?;
        (detail["escalations"] == 1).then_some(())
    });
    let status = agent.ipc(json!({"type": "status"})).expect("ipc status");
    assert_eq!(status["data"]["paused"], false, "{status}");

    agent.say("#general", &format!("@{NICK} and now?")).await;
    agent.reply("#general", "trying once more").await;
    let detail = eventually("the second escalation", || {
        let detail = overseer(&agent)?;
        (detail["escalations"] == 2).then_some(detail)
    });
    assert_eq!(detail["last_verdict"], "ESCALATION", "{detail}");
    let status = agent.ipc(json!({"type": "status"})).expect("ipc status");
    assert_eq!(status["data"]["paused"], true, "{status}");
    assert_eq!(status["data"]["activity"], "paused", "{status}");
    let log = agent.log();
    assert_eq!(
        log.matches("paused after 2 consecutive overseer escalations")
            .count(),
        1,
        "{log}"
    );
    // The webhook actor takes the one alert raised.
    assert_eq!(
        log.matches("escalation alert not delivered").count(),
        0,
        "{log}"
    );
    let alerts = log
        .lines()
        .filter(|l| l.contains("alert.event=\"agent_spiraling\"") && l.contains("[ESCALATION]"))
        .count();
    assert_eq!(alerts, 1, "{log}");
}
