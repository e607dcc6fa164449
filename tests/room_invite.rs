//! Room invitations (codexd-spec §7.5): agentirc's `ROOMINVITE` reaches the agent, which
//! evaluates it with Culture's prompt on a short-lived thread of its own (the real codex
//! binary, offline against the fake model), joins on YES, stays out on NO, keeps the room
//! across a restart, and refuses an invitation flood like a mention flood.

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
use fake_model::{Reply, user_texts};
use otlp::OtlpSink;
use serde_json::Value;
use support::eventually;

/// The prompt's first line (Culture's text).
const INVITED: &str = "You've been invited to join IRC room";

fn invitations(agent: &CodexAgent) -> Option<Value> {
    let runner = agent.runner()?;
    (runner["detail"]["pending"] == 0).then(|| runner["detail"]["invitations"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_evaluated_apart_joined_on_yes_declined_on_no_and_kept_after_a_restart() {
    let sink = match OtlpSink::start() {
        Ok(sink) => sink,
        Err(reason) => return otlp::skip_or_fail(&reason),
    };
    let top = format!(
        "telemetry:\n  enabled: true\n  service_name: codexd-invite-test\n  otlp_endpoint: {}\n  otlp_protocol: grpc\n",
        sink.grpc_endpoint()
    );
    let extra = Extra {
        top: &top,
        // No tag in common with the room: agentirc sends no invitation of its own.
        agent: "    tags: [rust, go]\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), extra).await else {
        return;
    };
    let model = agent.model.as_ref().expect("fake model");
    model.when("the word is banana", Reply::text("noted"));
    model.when(
        &format!("{INVITED} #release"),
        Reply::text("This room fits my work.\n\nYES"),
    );
    model.when(&format!("{INVITED} #cooking"), Reply::text("**NO**"));
    model.when("anything else", Reply::text("nothing else"));

    // A conversation first: the invitation must not see it, nor it the invitation.
    agent
        .say("#general", &format!("@{NICK} the word is banana"))
        .await;
    agent.reply("#general", "noted").await;

    agent
        .ori
        .room_create(
            "#release",
            "purpose=Ship the release;tags=ops;instructions=Be brief; use threads",
        )
        .await;
    agent.ori.room_invite("#release", NICK).await;
    agent
        .ori
        .expect("the agent joins #release", |line| {
            line.contains(&format!(":{NICK}!")) && line.contains("JOIN #release")
        })
        .await;
    agent.ori.room_create("#cooking", "purpose=Recipes").await;
    agent.ori.room_invite("#cooking", NICK).await;
    let counts = eventually("both invitations evaluated", || {
        invitations(&agent).filter(|i| i["declined"] == 1)
    });
    assert_eq!(counts["joined"], 1, "{counts}");
    assert_eq!(counts["last"]["channel"], "#cooking", "{counts}");
    assert_eq!(counts["last"]["verdict"], "declined", "{counts}");
    let channels = agent.irc_channels().expect("irc status");
    assert!(channels.contains(&"#release".to_owned()), "{channels:?}");
    assert!(!channels.contains(&"#cooking".to_owned()), "{channels:?}");

    agent
        .say("#general", &format!("@{NICK} anything else?"))
        .await;
    agent.reply("#general", "nothing else").await;
    let model = agent.model.as_ref().expect("fake model");
    let release = model.requests_with(&format!("{INVITED} #release"));
    assert_eq!(
        release.len(),
        1,
        "one evaluation: {:#?}",
        release.iter().map(user_texts).collect::<Vec<_>>()
    );
    let prompt = user_texts(&release[0]).join("\n");
    for line in [
        "Purpose: Ship the release",
        "Instructions: Be brief; use threads",
        "Room tags: ops",
        "Your tags: rust,go",
        "Answer YES or NO.",
    ] {
        assert!(prompt.contains(line), "{line:?} not in {prompt}");
    }
    assert!(
        !release[0].to_string().contains("banana"),
        "the invitation saw a conversation: {}",
        release[0]
    );
    let later = model.requests_with("anything else");
    assert!(
        !later[0].to_string().contains(INVITED),
        "a conversation saw the invitation: {}",
        later[0]
    );
    let runner = agent.runner().expect("status");
    let listed: Vec<&str> = runner["detail"]["conversations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["conversation"].as_str())
        .collect();
    assert_eq!(listed, ["#general"], "the short-lived threads are gone");

    agent.stop_daemon();
    agent.restart_daemon();
    let channels = eventually("still in #release after the restart", || {
        agent
            .irc_channels()
            .filter(|c| c.contains(&"#release".to_owned()))
    });
    assert!(!channels.contains(&"#cooking".to_owned()), "{channels:?}");
    agent.stop_daemon();

    let spans = sink.spans();
    let verdicts: Vec<(String, String)> = spans
        .iter()
        .filter(|s| s.name == "codexd.room.invite")
        .map(|s| {
            (
                s.attr("room.channel").unwrap_or_default(),
                s.attr("invite.verdict").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("#release".to_owned(), "joined".to_owned()),
            ("#cooking".to_owned(), "declined".to_owned())
        ],
        "{spans:#?}"
    );
    let invite = spans
        .iter()
        .find(|s| s.name == "codexd.room.invite")
        .expect("span");
    // ROOMINVITE line → its evaluation turn → the verdict.
    let parent_of = |span: &otlp::ReceivedSpan| {
        spans
            .iter()
            .find(|s| s.span_id == span.parent_span_id)
            .unwrap_or_else(|| panic!("{}'s parent was not exported: {spans:#?}", span.name))
    };
    let turn = parent_of(invite);
    assert_eq!(turn.name, "harness.llm.call");
    assert_eq!(parent_of(turn).name, "harness.irc.message.handle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_flood_is_refused_past_the_senders_limit() {
    let extra = Extra {
        top: "admission: {per_sender: 2, window: 1h}\n",
        server: "  flood_rate: 0\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), extra).await else {
        return;
    };
    let model = agent.model.as_ref().expect("fake model");
    model.when_always(INVITED, Reply::text("NO"));
    for n in 1..=5 {
        let room = format!("#room{n}");
        agent.ori.room_create(&room, "purpose=spam").await;
        agent.ori.room_invite(&room, NICK).await;
    }
    let counts = eventually("the flood taken", || {
        let runner = agent.runner()?;
        let intake = &runner["detail"]["intake"];
        (intake["journaled"].as_u64()? + intake["refused_rate"].as_u64()? == 5
            && runner["detail"]["pending"] == 0)
            .then(|| runner["detail"].clone())
    });
    assert_eq!(counts["intake"]["journaled"], 2, "{counts}");
    assert_eq!(counts["intake"]["refused_rate"], 3, "{counts}");
    assert_eq!(counts["invitations"]["declined"], 2, "{counts}");
    let told =
        |line: &str| line.contains("NOTICE spark-ori") && line.contains("more than 2 messages");
    if !agent.ori.received().iter().any(|line| told(line)) {
        agent.ori.expect("spark-ori is told", told).await;
    }
    let model = agent.model.as_ref().expect("fake model");
    assert_eq!(model.requests_with(INVITED).len(), 2, "two evaluated");
}
