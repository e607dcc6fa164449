//! SIGHUP applies daemon-level changes: a new `server.port` moves every agent to the new
//! server, one agent at a time, and a mention accepted just before is answered there.

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
use irc_client::RawClient;
use ircd::{Flavor, Ircd};
use support::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_server_port_moves_the_agent_and_a_mention_accepted_before_is_answered_there() {
    // A codex that takes 3 s per turn: the mention is still pending at the reload.
    let Some(mut agent) = CodexAgent::start(Codex::Fake("slow:3000"), Extra::default()).await
    else {
        return;
    };
    let Some(second) = Ircd::start(Flavor::Agentirc, "spark").await else {
        return;
    };
    let mut ori = RawClient::connect(second.host(), second.port(), "spark-ori", &[]).await;
    ori.join("#general").await;

    agent
        .say("#general", &format!("@{NICK} answer me on the other side"))
        .await;
    eventually("the mention journaled and pending", || {
        let runner = agent.runner()?;
        (runner["detail"]["intake"]["journaled"] == 1 && runner["detail"]["pending"] == 1)
            .then_some(())
    });
    let config = std::fs::read_to_string(agent.scratch.config()).expect("config");
    let old = format!("port: {}", agent.ircd.port());
    assert!(config.contains(&old), "{config}");
    let moved = config.replace(&old, &format!("port: {}", second.port()));
    std::fs::write(agent.scratch.config(), moved).expect("write config");
    agent.daemon.as_ref().expect("daemon").signal("HUP");

    let line = ori
        .expect("the answer on the new server", |line| {
            line.contains(&format!(":{NICK}!"))
                && line.contains("PRIVMSG #general :fake reply to:")
                && line.contains("answer me on the other side")
        })
        .await;
    assert!(line.contains("#general"), "{line}");
    let status = agent.scratch.status().expect("status");
    let irc = support::child(&status, NICK, "irc").expect("irc");
    assert_eq!(
        irc["detail"]["server"],
        format!("{}:{}", second.host(), second.port()),
        "{irc}"
    );
    let runner = eventually("nothing pending", || {
        let runner = agent.runner()?;
        (runner["detail"]["pending"] == 0).then_some(runner)
    });
    assert_eq!(
        runner["detail"]["turns_completed"], 1,
        "answered once: {runner}"
    );
    assert!(
        agent.log().contains("restarting the agents one by one"),
        "the reload says what it does"
    );
}
