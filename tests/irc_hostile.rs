//! The `irc` actor against a hostile server (the in-repo fake, since no real server
//! misbehaves like this): a flood of JOIN echoes for channels the agent never asked for
//! must neither grow its channel list past the cap nor make it miss its health pings.

#[path = "support/fake_ircd.rs"]
mod fake_ircd;
#[path = "support/irc_agent.rs"]
mod irc_agent;
#[path = "support/mod.rs"]
mod support;

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codexd_actors::child::ControlMsg;
use codexd_actors::irc::{IrcError, IrcMessage};
use codexd_actors::restart::RestartPolicy;
use fake_ircd::{Behaviour, FakeIrcd};
use irc_agent::{Agent, settings};
use support::eventually;

/// The channel cap (`actors/src/irc/channels.rs`).
const MAX_CHANNELS: usize = 1000;
/// JOIN echoes the fake sends.
const FLOOD: usize = 100_000;

/// [`eventually`] for a check that needs the runtime (a multi-thread one).
fn eventually_async<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| eventually(what, || runtime.block_on(check())))
}

/// A supervisor's health ping, with the daemon's default timeout; how long it took.
async fn health_ping(agent: &Agent) -> Result<Duration, String> {
    let timeout = RestartPolicy::default().health_timeout;
    let started = Instant::now();
    match ractor::call_t!(
        agent.actor,
        |reply| IrcMessage::Control(ControlMsg::Ping(reply)),
        timeout.as_millis() as u64
    ) {
        Ok(()) => Ok(started.elapsed()),
        Err(error) => Err(format!("no answer within {timeout:?}: {error:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_flood_stops_at_the_channel_cap_and_the_actor_stays_responsive() {
    let fake = Arc::new(FakeIrcd::start(Behaviour::default()).await);
    let mut s = settings("127.0.0.1", fake.port(), "fake", "fake-bot");
    s.channels = vec!["#general".to_owned()];
    let agent = Agent::start(s).await;
    agent.wait_connected().await;
    fake.wait_for_line("JOIN #general", |_, l| l == "JOIN #general")
        .await;

    let lines: Vec<String> = (0..FLOOD)
        .map(|n| format!(":fake-bot!bot@127.0.0.1 JOIN #c{n}"))
        .collect();
    let started = Instant::now();
    let flood = {
        let fake = fake.clone();
        tokio::spawn(async move {
            fake.send_many(0, lines).await;
            fake.send(0, "PING :after-the-flood").await;
        })
    };
    // A health ping and a status request every poll while the flood is handled, as the
    // agent's supervisor and `codexd status` would send them.
    let pings = Cell::new((0, Duration::ZERO));
    eventually_async("the PING after the flood answered", || async {
        let took = health_ping(&agent).await.expect("health ping answered");
        let (count, slowest) = pings.get();
        pings.set((count + 1, slowest.max(took)));
        let channels = agent.status().await.channels.len();
        assert!(channels <= MAX_CHANNELS, "{channels} channels");
        let lines = fake.lines(0).await;
        lines
            .iter()
            .any(|l| l == "PONG :after-the-flood")
            .then_some(())
    });
    flood.await.expect("the flood was sent");
    let (pings, slowest) = pings.get();
    eprintln!(
        "{FLOOD} JOIN echoes handled in {:?}; {pings} health pings meanwhile, the slowest answered in {slowest:?}",
        started.elapsed()
    );
    let status = agent.status().await;
    assert_eq!(status.state, "connected");
    assert_eq!(status.channels.len(), MAX_CHANNELS);
    assert_eq!(status.channels[0], "#general");
    assert_eq!(
        status.channels[MAX_CHANNELS - 1],
        format!("#c{}", MAX_CHANNELS - 2)
    );
    assert_eq!(
        agent.join("#one-more").await,
        Err(IrcError::TooManyChannels {
            channel: "#one-more".to_owned(),
            limit: MAX_CHANNELS
        })
    );
    agent
        .join("#C5")
        .await
        .expect("a channel already in is no error");
    agent.stop();
}
