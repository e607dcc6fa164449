//! Bursts of DMs on a real agentirc, answered by the real codex offline: every DM is
//! journaled and answered, or refused, counted and its sender told by one NOTICE per
//! window. Nothing is dropped silently: the intake's counts add up to what was sent.

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

use std::collections::{BTreeMap, BTreeSet};

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use codexd_actors::runner::journal::Journal;
use irc_client::{RawClient, command_and_params, source_nick};
use serde_json::{Value, json};
use support::eventually;

/// The intake's counts in the runner's status.
fn intake(agent: &CodexAgent) -> Option<Value> {
    Some(agent.runner()?["detail"]["intake"].clone())
}

fn count(intake: &Value, key: &str) -> u64 {
    intake[key].as_u64().unwrap_or(0)
}

/// Journaled + duplicates + every kind of refusal: what the intake took.
fn taken(intake: &Value) -> u64 {
    [
        "journaled",
        "duplicates",
        "refused_rate",
        "refused_pending",
        "refused_journal",
    ]
    .iter()
    .map(|key| count(intake, key))
    .sum()
}

/// Whether `line` is `NOTICE <to>` from the agent saying a message was not accepted.
fn is_refusal(line: &str, to: &str) -> bool {
    let (command, params) = command_and_params(line);
    command == "NOTICE"
        && source_nick(line).as_deref() == Some(NICK)
        && params.first().is_some_and(|t| t == to)
        && params.get(1).is_some_and(|t| t.contains("not accepted"))
}

/// Whether `line` is the agent's answer (the fake model's fallback "ok") to `to`.
fn is_answer(line: &str, to: &str) -> bool {
    let (command, params) = command_and_params(line);
    command == "PRIVMSG"
        && source_nick(line).as_deref() == Some(NICK)
        && params.first().is_some_and(|t| t == to)
        && params.get(1).is_some_and(|t| t == "ok")
}

/// How many DMs from each sender the daemon's log says were journaled.
fn journaled_by_sender(log: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in log
        .lines()
        .filter(|l| l.contains("mention accepted (journaled)"))
    {
        let from = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("from="))
            .expect("from= in an acceptance log line");
        *counts.entry(from.to_owned()).or_default() += 1;
    }
    counts
}

/// Sends `n` numbered DMs to the agent as fast as the socket takes them.
async fn burst(client: &mut RawClient, n: usize) {
    let who = client.nick().to_owned();
    for i in 0..n {
        client.send(&format!("PRIVMSG {NICK} :{who} #{i}")).await;
    }
}

/// Reads `client`'s lines until it has `answers` answers and one refusal notice.
async fn expect_told(client: &mut RawClient, answers: usize) {
    let me = client.nick().to_owned();
    for i in 0..answers {
        let what = format!("answer {i} of {answers} to {me}");
        client.expect(&what, |line| is_answer(line, &me)).await;
    }
    if !client.received().iter().any(|line| is_refusal(line, &me)) {
        let what = format!("a refusal notice to {me}");
        client.expect(&what, |line| is_refusal(line, &me)).await;
    }
}

fn notices(client: &RawClient) -> usize {
    let me = client.nick();
    client
        .received()
        .iter()
        .filter(|line| is_refusal(line, me))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_3000_dms_is_journaled_whole() {
    const SENT: u64 = 3000;
    let extra = Extra {
        top: "admission: {per_sender: 0, max_pending: 0}\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), extra).await else {
        return;
    };
    let paused = agent.ipc(json!({"type": "pause", "id": "p1"}));
    assert_eq!(
        paused.as_ref().map(|a| a["ok"].clone()),
        Some(json!(true)),
        "{paused:?}"
    );
    burst(&mut agent.ori, SENT as usize).await;
    let counts = eventually("all 3000 DMs taken by the intake", || {
        let counts = intake(&agent)?;
        (taken(&counts) == SENT).then_some(counts)
    });
    assert_eq!(count(&counts, "journaled"), SENT, "{counts}");
    assert_eq!(
        count(&counts, "refused_rate") + count(&counts, "refused_pending"),
        0
    );
    let runner = agent.runner().expect("status");
    assert_eq!(
        runner["detail"]["pending"],
        json!(SENT),
        "all waiting: the agent is paused"
    );
    agent.stop_daemon();
    let state = agent.scratch.path(&format!("state/{NICK}"));
    let (_, pending) = Journal::open(&state).expect("the journal reopens");
    let texts: BTreeSet<String> = pending.into_iter().map(|e| e.entry.text).collect();
    let sent: BTreeSet<String> = (0..SENT).map(|i| format!("spark-ori #{i}")).collect();
    assert_eq!(texts, sent, "every DM durable, once");
    assert!(
        count(&counts, "largest_group") > 1,
        "a burst is committed in groups: {counts}"
    );
    assert!(!agent.log().contains("fell behind"), "nothing lagged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_over_its_rate_is_refused_once_and_counted() {
    const SENT: u64 = 3000;
    let extra = Extra {
        // Each DM its own turn (no steering into the running one): ten answers.
        top: "admission: {per_sender: 10, window: 1h}\nconversations: {steer: false}\n",
        server: "  flood_rate: 0\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), extra).await else {
        return;
    };
    burst(&mut agent.ori, SENT as usize).await;
    let counts = eventually("all 3000 DMs taken by the intake", || {
        let counts = intake(&agent)?;
        (taken(&counts) == SENT).then_some(counts)
    });
    assert_eq!(count(&counts, "journaled"), 10, "{counts}");
    assert_eq!(count(&counts, "refused_rate"), SENT - 10, "{counts}");
    assert_eq!(
        count(&counts, "notices"),
        1,
        "one notice per window: {counts}"
    );
    expect_told(&mut agent.ori, 10).await;
    assert_eq!(notices(&agent.ori), 1);
    let notice = agent
        .ori
        .received()
        .iter()
        .find(|line| is_refusal(line, "spark-ori"))
        .cloned()
        .unwrap_or_default();
    assert!(
        notice.contains("more than 10 messages from you within 1h") && notice.contains("retry in"),
        "{notice}"
    );
    let runner = agent.runner().expect("status");
    assert!(
        runner["detail"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("2990 refused"),
        "{runner}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_senders_of_100_each_are_answered_or_told() {
    const SENDERS: usize = 50;
    const EACH: usize = 100;
    let extra = Extra {
        top: "admission: {per_sender: 1, window: 1h, max_pending: 10}\n",
        server: "  flood_rate: 0\n",
        ..Extra::default()
    };
    let Some(agent) = CodexAgent::start(Codex::Real(Vec::new()), extra).await else {
        return;
    };
    let (host, port) = (agent.ircd.host().to_owned(), agent.ircd.port());
    let mut clients = Vec::new();
    for i in 0..SENDERS {
        clients.push(RawClient::connect(&host, port, &format!("spark-s{i}"), &[]).await);
    }
    let sends = clients.into_iter().map(|mut client| {
        tokio::spawn(async move {
            burst(&mut client, EACH).await;
            client
        })
    });
    let mut clients = Vec::new();
    for send in sends {
        clients.push(send.await.expect("sender"));
    }
    let sent = (SENDERS * EACH) as u64;
    let counts = eventually("every DM taken by the intake", || {
        let counts = intake(&agent)?;
        (taken(&counts) == sent).then_some(counts)
    });
    let journaled = count(&counts, "journaled");
    assert!((10..=50).contains(&journaled), "{counts}");
    assert_eq!(
        journaled + count(&counts, "refused_rate") + count(&counts, "refused_pending"),
        sent,
        "0 silent drops: {counts}"
    );
    assert!(
        count(&counts, "refused_pending") > 0,
        "the cap refused some: {counts}"
    );
    assert_eq!(count(&counts, "notices"), SENDERS as u64, "{counts}");
    eventually("every journaled DM answered", || {
        let runner = agent.runner()?;
        (runner["detail"]["pending"] == 0 && runner["detail"]["phase"] == "idle").then_some(())
    });
    let by_sender = journaled_by_sender(&agent.log());
    assert_eq!(by_sender.values().sum::<usize>() as u64, journaled);
    for client in &mut clients {
        let answers = by_sender.get(client.nick()).copied().unwrap_or(0);
        expect_told(client, answers).await;
        assert_eq!(notices(client), 1, "{}", client.nick());
    }
}
