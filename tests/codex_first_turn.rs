//! A codex stopped (SIGSTOP) in the middle of a thread's **first** turn, with the real
//! `codex app-server` offline against the in-repo fake model, on a real agentirc: the fake
//! model is still streaming its first answer, slowly, when codex stops. The runner's
//! liveness probe (`thread/loaded/list`, every `codex.request_timeout` during a turn) goes
//! unanswered, codex is killed, and the next codex resumes the thread and replays the
//! mention, which reaches the model and is answered long before `turn_timeout_seconds`.
//!
//! codex is stopped only once the slow reply is streaming: the fake model's script is per
//! request, so a codex stopped after `turn/started` but before its request went out would
//! leave the slow reply to the replay, and the agent would stay silent for all of it.
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

use std::time::{Duration, Instant};

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::{FakeModel, Reply};
use support::eventually;

/// The first answer: [`SLOW_WORDS`] times this word, one every [`WORD_DELAY`], still
/// streaming long after codex is stopped.
const SLOW_WORD: &str = "slowpoke";
const SLOW_WORDS: usize = 30;
const WORD_DELAY: Duration = Duration::from_secs(1);

/// What the model answers once the slow reply is used up: the replayed turn's answer.
const ANSWER: &str = "answered after the restart";

/// The mention's text.
const MENTION: &str = "tell me slowly";

/// The `codex app-server` processes whose parent is `parent`, from `/proc` alone (not from
/// `codexd status`).
fn app_servers_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid …`: comm may hold spaces, so split after its `)`.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent) && cmdline.split(|b| *b == 0).any(|arg| arg == b"app-server")
        })
        .collect()
}

/// The only `codex app-server` child of `parent` that passes `accept`.
fn the_app_server(parent: u32, accept: impl Fn(u32) -> bool) -> Option<u32> {
    match app_servers_of(parent).as_slice() {
        [pid] if accept(*pid) => Some(*pid),
        _ => None,
    }
}

/// A process state from `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, …); `None` once it is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.trim_start().chars().next()
}

fn model(agent: &CodexAgent) -> &FakeModel {
    agent.model.as_ref().expect("the fake model")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_codex_stopped_during_a_first_turn_is_replaced_and_the_mention_answered() {
    let slow = Reply::Slow {
        text: vec![SLOW_WORD; SLOW_WORDS].join(" "),
        delay: WORD_DELAY,
    };
    let extra = Extra {
        agent: "    turn_timeout_seconds: 120\n",
        codex: "      request_timeout: 2s\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(vec![slow]), extra).await else {
        return;
    };
    model(&agent).set_fallback(Reply::text(ANSWER));
    let daemon = agent.daemon.as_ref().expect("running").pid();
    let stopped = eventually("codexd's codex app-server", || {
        the_app_server(daemon, |_| true)
    });

    agent.say("#general", &format!("@{NICK} {MENTION}")).await;
    eventually("the first turn's reply is streaming", || {
        (model(&agent).deltas() > 0).then_some(())
    });
    assert_eq!(
        model(&agent).requests().len(),
        1,
        "one model request so far"
    );
    let status = std::process::Command::new("kill")
        .args(["-STOP", &stopped.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -STOP {stopped}");
    let since_stop = Instant::now();

    // Hang detectors (60 s, then 30 s), well under the 120 s turn timeout.
    let requests = eventually("the replayed turn reaches the model", || {
        let requests = model(&agent).requests();
        (requests.len() >= 2).then_some(requests)
    });
    assert!(
        requests[1].to_string().contains(MENTION),
        "the mention was replayed: {}",
        requests[1]
    );
    assert_eq!(agent.reply("#general", ANSWER).await, ANSWER);
    eprintln!(
        "first turn: answered {:.1?} after the SIGSTOP (request_timeout 2s, turn timeout 120s)",
        since_stop.elapsed()
    );
    assert!(
        !agent
            .ori
            .received()
            .iter()
            .any(|line| line.contains(SLOW_WORD)),
        "the cut-off reply was never relayed"
    );
    eventually("the stopped codex is killed and reaped", || {
        proc_state(stopped).is_none().then_some(())
    });
    eventually("a new codex app-server", || {
        the_app_server(daemon, |pid| pid != stopped)
    });
    assert!(
        agent
            .log()
            .contains("codex did not answer thread/loaded/list within 2s"),
        "the probe found the stopped codex"
    );
    agent.stop_daemon();
}
