//! `cargo bench --bench replies`: mention→reply latency when mentions follow each reply
//! closely, with the default flood control (burst 10, 2 lines/s). The real `codexd run`
//! (this package's release binary) hosts one agent whose runner drives the real `codex
//! app-server` offline against the in-repo fake model, on a real agentirc
//! (`tests/support/codex_agent.rs` with no config changes; peers from
//! `scripts/install-peers`, or `CODEXD_PEERS=<dir>`).
//!
//! | step      | what                                                                       |
//! |-----------|----------------------------------------------------------------------------|
//! | warm-up   | 3 mentions, untimed                                                         |
//! | series    | for each gap G in 1.0, 0.2, 0.05 s: the runner idle and 6 s of quiet (the  |
//! |           | flood bucket full again), then 8 mentions, each sent G after the previous  |
//! |           | reply was read; each timed from the PRIVMSG written to the reply read      |
//! | rounds    | the three series in turn, `REPLIES_ROUNDS` times (default 5), so load from |
//! |           | elsewhere on the machine hits every gap alike                              |
//! | printed   | per gap: p50, p90, p99, max (nearest rank) and mean over every round, and  |
//! |           | p50 minus the 1.0 s gap's p50                                              |
//!
//! Every reply is checked: the fake model answers mention N with `answer N`, which must be
//! the reply's exact text; afterwards the runner must report every turn completed, none
//! failed, and no restart. A failure makes the bench exit non-zero, and so does a missing
//! peer (no figures). Nothing here asserts a speed.

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
#[path = "support/latency.rs"]
mod latency;
#[path = "../tests/support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::Reply;
use irc_client::parse_privmsg;
use latency::Stats;
use support::eventually;

/// Seconds between a reply and the next mention, one series each.
const GAPS: [f64; 3] = [1.0, 0.2, 0.05];
/// Mentions per series.
const MENTIONS: usize = 8;
/// Untimed mentions before the first series.
const WARM_UP: usize = 3;
/// Quiet before each series: the flood bucket (10 tokens at 2/s) refills in 5 s.
const QUIET: Duration = Duration::from_secs(6);
const CHANNEL: &str = "#general";

type Result<T> = std::result::Result<T, latency::BenchError>;

fn main() -> Result<()> {
    latency::main_rounds("REPLIES_ROUNDS", 5, run)
}

/// What the fake model answers to mention `n` (1-based).
fn answer(n: usize) -> String {
    format!("answer {n}")
}

async fn run(rounds: usize) -> Result<Vec<String>> {
    let turns = WARM_UP + rounds * GAPS.len() * MENTIONS;
    let script = (1..=turns).map(|n| Reply::Text(answer(n))).collect();
    // One sender sends 123 mentions in a few minutes: admission's per-sender rate is off.
    let extra = Extra {
        top: "admission: {per_sender: 0}\n",
        ..Extra::default()
    };
    let mut agent = CodexAgent::start(Codex::Real(script), extra)
        .await
        .ok_or("agentirc or codex is not installed: no figures")?;
    println!(
        "mention→reply, 1 agent, default flood control; {MENTIONS} mentions per series, each \
         sent G after the previous reply; {rounds} round(s) of the {} gaps",
        GAPS.len()
    );
    let mut failures = Vec::new();
    let mut n = 0;
    for _ in 0..WARM_UP {
        n += 1;
        mention(&mut agent, n, &mut failures).await;
    }
    let mut samples = vec![Vec::new(); GAPS.len()];
    for _ in 0..rounds {
        for (gap, series) in GAPS.iter().zip(&mut samples) {
            wait_idle(&agent, n as u64);
            tokio::time::sleep(QUIET).await;
            for i in 0..MENTIONS {
                if i > 0 {
                    tokio::time::sleep(Duration::from_secs_f64(*gap)).await;
                }
                n += 1;
                let took = mention(&mut agent, n, &mut failures).await;
                series.push(took.as_secs_f64() * 1e3);
            }
        }
    }
    let baseline = p50(&mut samples[0].clone());
    for (gap, series) in GAPS.iter().zip(&mut samples) {
        let stats = Stats::of(series);
        println!(
            "  gap {gap:.2} s: {stats}  (p50 {:+.1} ms vs the 1.00 s gap)",
            stats.p50 - baseline
        );
    }
    let runner = wait_idle(&agent, n as u64);
    let detail = &runner["detail"];
    if detail["turns_failed"] != 0 || detail["pending"] != 0 || runner["restarts"] != 0 {
        failures.push(format!("runner status after {n} turns: {runner}"));
    }
    agent.stop_daemon();
    Ok(failures)
}

/// Mention `n`: says it, reads the reply, checks its text; the time between.
async fn mention(agent: &mut CodexAgent, n: usize, failures: &mut Vec<String>) -> Duration {
    let sent = Instant::now();
    agent.say(CHANNEL, &format!("@{NICK} question {n}")).await;
    let what = format!("the reply to mention {n}");
    let line = agent
        .ori
        .expect(&what, |line| {
            parse_privmsg(line).is_some_and(|(_, from, to, _)| from == NICK && to == CHANNEL)
        })
        .await;
    let took = sent.elapsed();
    let text = parse_privmsg(&line).map(|(_, _, _, text)| text);
    if text != Some(answer(n)) {
        failures.push(format!("mention {n}: the reply was {line:?}"));
    }
    took
}

/// Waits until the runner is idle with `turns` turns completed; its status.
fn wait_idle(agent: &CodexAgent, turns: u64) -> serde_json::Value {
    eventually("the runner idle with its turns completed", || {
        let runner = agent.runner()?;
        let detail = &runner["detail"];
        (detail["phase"] == "idle" && detail["turns_completed"] == turns).then_some(runner)
    })
}

/// The median (nearest rank) of `latencies`, which it sorts.
fn p50(latencies: &mut [f64]) -> f64 {
    Stats::of(latencies).p50
}
