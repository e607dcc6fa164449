//! `cargo bench --bench intake`: bursts of DMs on a real agentirc into one agent (real codex
//! offline against the fake model), as in tests/intake_burst.rs, with figures instead of
//! assertions: per scenario, what was sent, journaled, refused (and how many senders were
//! told), and dropped (sent minus what the intake took, after it went quiet); how long the
//! intake took; the daemon's RSS before the burst and its peak (VmHWM) after.
//!
//! | scenario          | admission                           | the agent |
//! |-------------------|-------------------------------------|-----------|
//! | `3000 from one`   | none (`per_sender: 0, max_pending: 0`) | paused: everything waits in the journal |
//! | `3000 over rate`  | the defaults (20 per 60s, 100 pending) | answers |
//! | `50 x 100`        | the defaults                         | answers |

#[path = "../tests/support/codex_agent.rs"]
mod codex_agent;
#[path = "../tests/support/codex_peer.rs"]
mod codex_peer;
#[path = "../tests/support/fake_model.rs"]
mod fake_model;
#[path = "../tests/support/irc_client.rs"]
mod irc_client;
#[path = "../tests/support/ircd.rs"]
mod ircd;
#[path = "../tests/support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
#[path = "support/proc_memory.rs"]
#[allow(dead_code)]
mod proc_memory;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use irc_client::RawClient;
use proc_memory::Memory;
use serde_json::{Value, json};

/// How long the intake may stay without taking anything before the rest counts as dropped.
const QUIET: Duration = Duration::from_secs(20);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

struct Scenario {
    name: &'static str,
    top: &'static str,
    senders: usize,
    each: usize,
    pause: bool,
}

async fn run() {
    let scenarios = [
        Scenario {
            name: "3000 from one",
            top: "admission: {per_sender: 0, max_pending: 0}\n",
            senders: 1,
            each: 3000,
            pause: true,
        },
        Scenario {
            name: "3000 over rate",
            top: "",
            senders: 1,
            each: 3000,
            pause: false,
        },
        Scenario {
            name: "50 x 100",
            top: "",
            senders: 50,
            each: 100,
            pause: false,
        },
    ];
    for scenario in scenarios {
        let extra = Extra {
            top: scenario.top,
            ..Extra::default()
        };
        let Some(agent) = CodexAgent::start(Codex::Real(Vec::new()), extra).await else {
            eprintln!(
                "intake: agentirc or codex missing (scripts/install-peers); nothing measured"
            );
            return;
        };
        if scenario.pause {
            agent.ipc(json!({"type": "pause", "id": "bench"}));
        }
        measure(&scenario, agent).await;
    }
}

async fn measure(scenario: &Scenario, agent: CodexAgent) {
    let pid = agent.daemon.as_ref().expect("running").pid();
    let before = Memory::of(pid).expect("memory");
    let (host, port) = (agent.ircd.host().to_owned(), agent.ircd.port());
    let mut clients = Vec::new();
    for i in 0..scenario.senders {
        clients.push(RawClient::connect(&host, port, &format!("spark-b{i}"), &[]).await);
    }
    let started = Instant::now();
    let each = scenario.each;
    let sends: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                for i in 0..each {
                    client.send(&format!("PRIVMSG {NICK} :#{i}")).await;
                }
                client
            })
        })
        .collect();
    for send in sends {
        send.await.expect("sender");
    }
    let sent = (scenario.senders * scenario.each) as u64;
    let (intake, took) = wait_quiet(&agent, sent, started);
    let after = Memory::of(pid).expect("memory");
    let count = |key: &str| intake[key].as_u64().unwrap_or(0);
    let refused = count("refused_rate") + count("refused_pending") + count("refused_journal");
    let taken = count("journaled") + count("duplicates") + refused;
    println!(
        "{:<15} sent {sent:>5}  journaled {:>5}  refused {refused:>5} (senders told {:>3})  dropped {:>5}  intake took {:>6.2} s  groups {} (largest {})  RSS before {} KiB, peak {} KiB",
        scenario.name,
        count("journaled"),
        count("notices"),
        sent.saturating_sub(taken),
        took.as_secs_f64(),
        count("groups"),
        count("largest_group"),
        before.rss,
        after.hwm,
    );
}

/// The intake's counts once it took `sent` messages, or went `QUIET` long without taking
/// more; and when it took the last.
fn wait_quiet(agent: &CodexAgent, sent: u64, started: Instant) -> (Value, Duration) {
    let mut last = (0, Instant::now());
    let mut took = Duration::ZERO;
    loop {
        let intake = agent
            .runner()
            .map(|r| r["detail"]["intake"].clone())
            .unwrap_or(Value::Null);
        let taken: u64 = [
            "journaled",
            "duplicates",
            "refused_rate",
            "refused_pending",
            "refused_journal",
        ]
        .iter()
        .map(|k| intake[*k].as_u64().unwrap_or(0))
        .sum();
        if taken != last.0 {
            last = (taken, Instant::now());
            took = started.elapsed();
        }
        if taken >= sent || last.1.elapsed() > QUIET {
            return (intake, took);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
