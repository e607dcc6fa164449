//! agentirc's room invitations reach the agent's intake as `MessageKind::Invite`, like a
//! mention: the `irc` actor against a real agentirc (installed by `scripts/install-peers`).
//!
//! | how the invitation comes about               | line the agent gets                                              | sender       |
//! |----------------------------------------------|------------------------------------------------------------------|--------------|
//! | a user sends `ROOMINVITE <#room> <nick>`     | `:<user>!… ROOMINVITE <#room> <nick> :requestor=<user>;purpose=…` | the user     |
//! | a room is created with a tag the agent has   | `:<server> ROOMINVITE <#room> <nick> :purpose=…;tags=…`           | the server   |
//!
//! A missing agentirc prints a loud SKIP (and fails under `CI=true`).

#[path = "support/irc_agent.rs"]
mod irc_agent;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

use codexd_actors::irc::{IrcEvent, IrcMessage, MessageKind, Query};
use codexd_actors::runner::prompt::parse_room_meta;
use codexd_actors::trace::TraceCtx;
use irc_agent::{Agent, next_addressed, settings};
use irc_client::RawClient;
use ircd::{Flavor, Ircd};

/// Server name, and so the nick prefix agentirc requires (`spark-…`).
const SERVER: &str = "spark";

/// Starts agentirc, an agent `spark-bot` with tags `rust,codex` whose intake the test reads,
/// and a user `spark-ori`. None when agentirc is not installed (after `skip_or_fail`).
async fn setup() -> Option<(
    Ircd,
    Agent,
    tokio::sync::mpsc::UnboundedReceiver<codexd_actors::irc::Addressed>,
    RawClient,
)> {
    let server = Ircd::start(Flavor::Agentirc, SERVER).await?;
    let (host, port) = (server.host().to_owned(), server.port());
    let mut s = settings(&host, port, SERVER, "spark-bot");
    s.tags = vec!["rust".to_owned(), "codex".to_owned()];
    let (agent, intake) = Agent::start_observed(s).await;
    agent.wait_connected().await;
    // The TAGS line the agent sends after 001 is handled before this query's.
    let tags = ractor::call!(agent.actor, |reply| IrcMessage::Query {
        query: Query::Tags("spark-bot".to_owned()),
        trace: TraceCtx::default(),
        reply,
    })
    .expect("call")
    .expect("TAGS query");
    assert!(
        tags.iter()
            .any(|l| l.params.iter().any(|p| p == "rust,codex")),
        "{tags:?}"
    );
    let ori = RawClient::connect(&host, port, "spark-ori", &["message-tags"]).await;
    Some((server, agent, intake, ori))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_room_invite_reaches_the_intake_from_the_requestor() {
    let Some((_server, mut agent, mut intake, mut ori)) = setup().await else {
        return;
    };
    let meta = "purpose=Ship the release;tags=ops;instructions=Be brief; use threads";
    ori.room_create("#release", meta).await;
    ori.room_invite("#release", "spark-bot").await;

    let addressed = next_addressed(&mut intake, "the invitation").await;
    assert!(addressed.hold.is_some(), "holds its line's window place");
    let invite = addressed.message;
    assert_eq!(invite.kind, MessageKind::Invite);
    assert_eq!(invite.key, "#release");
    assert_eq!(invite.reply_to, "#release");
    assert_eq!(invite.sender, "spark-ori");
    assert_eq!(invite.thread, None);
    assert_eq!(
        invite.text,
        "requestor=spark-ori;purpose=Ship the release;tags=ops;instructions=Be brief; use threads"
    );
    let parsed = parse_room_meta(&invite.text);
    assert_eq!(parsed["purpose"], "Ship the release");
    assert_eq!(parsed["instructions"], "Be brief; use threads");

    let event = agent
        .event("the RoomInvite event", |e| {
            matches!(e, IrcEvent::RoomInvite { .. })
        })
        .await;
    let IrcEvent::RoomInvite { channel, meta, .. } = event else {
        unreachable!()
    };
    assert_eq!(
        (channel.as_str(), meta.as_str()),
        ("#release", invite.text.as_str())
    );
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agentircs_own_invite_for_matching_tags_comes_from_the_server() {
    let Some((_server, agent, mut intake, mut ori)) = setup().await else {
        return;
    };
    ori.room_create("#crabs", "purpose=Rust talk;tags=rust,go")
        .await;

    let invite = next_addressed(&mut intake, "agentirc's invitation")
        .await
        .message;
    assert_eq!(invite.kind, MessageKind::Invite);
    assert_eq!(invite.key, "#crabs");
    assert_eq!(invite.sender, SERVER, "no requestor: the line's source");
    assert_eq!(invite.text, "purpose=Rust talk;tags=rust,go");
    agent.stop();
}
