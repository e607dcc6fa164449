//! Outbound priorities through the real `irc` actor (the writer's order itself is unit-tested
//! on paused time in `actors/src/irc/outbox_tests.rs`): low-priority courtesy notices go out
//! while the link is up, are dropped and counted while it is down, and never enter the
//! buffer; every existing caller's sends stay normal.

#[path = "support/fake_ircd.rs"]
mod fake_ircd;
#[path = "support/irc_agent.rs"]
mod irc_agent;

use codexd_actors::irc::{IrcError, IrcMessage, SendPriority, SendReport};
use codexd_actors::trace::TraceCtx;
use fake_ircd::{Behaviour, FakeIrcd};
use irc_agent::{Agent, settings};

async fn notice(agent: &Agent, target: &str, text: &str) -> Result<SendReport, IrcError> {
    ractor::call!(agent.actor, |reply| IrcMessage::Send {
        target: target.to_owned(),
        text: text.to_owned(),
        notice: true,
        require_joined: false,
        priority: SendPriority::Low,
        trace: TraceCtx::default(),
        reply,
    })
    .expect("send")
}

#[tokio::test]
async fn low_notices_are_sent_when_up_and_dropped_and_counted_when_down() {
    let fake = FakeIrcd::start(Behaviour {
        register: false,
        ..Behaviour::default()
    })
    .await;
    let mut s = settings("127.0.0.1", fake.port(), "fake", "fake-bot");
    s.channels = vec!["#general".to_owned()];
    s.registration_timeout = std::time::Duration::from_millis(500);
    let agent = Agent::start(s).await;

    let refused = notice(&agent, "fake-ori", "busy, try later").await;
    assert!(
        matches!(refused, Err(IrcError::NoticeDropped { .. })),
        "{refused:?}"
    );
    let status = agent.status().await;
    assert_eq!(
        (status.notices_dropped, status.queued),
        (1, 0),
        "not queued for later"
    );

    fake.set_behaviour(Behaviour::default()).await;
    agent.wait_connected().await;
    let report = notice(&agent, "fake-ori", "busy, try later")
        .await
        .expect("sent");
    assert_eq!(
        report,
        SendReport {
            lines: 1,
            queued: false
        }
    );
    agent
        .send("#general", "a reply")
        .await
        .expect("normal send");
    fake.wait_for_line("the notice", |_, l| l == "NOTICE fake-ori :busy, try later")
        .await;
    fake.wait_for_line("the reply", |_, l| l == "PRIVMSG #general :a reply")
        .await;
    assert!(
        agent.read("DM:fake-ori").await.is_empty(),
        "courtesy notices are not conversation"
    );
    assert_eq!(agent.read("#general").await.len(), 1, "replies are");
    assert_eq!(agent.status().await.notices_dropped, 1);
    agent.stop();
}
