//! `cargo bench --bench pool`: what shared codex processes (`codex.agents_per_process`) save,
//! and what a shared process's death costs. The real `codexd run` (release) hosts N agents
//! with one codex identity (one CODEX_HOME), each driving the real `codex app-server`
//! offline against the in-repo fake model, on a real agentirc.
//!
//! | figure   | how                                                                         |
//! |----------|-----------------------------------------------------------------------------|
//! | memory   | N = 1, 5, 10, 20 agents, with 1 agent per process and with K per process:   |
//! |          | every agent answers one mention, 2 s idle, then VmRSS and Pss of the daemon |
//! |          | plus all its children (the codex processes and their helpers)               |
//! | recovery | N = K = 20 on one process: `codexd fault <nick> runner kill`, then a mention |
//! |          | to every agent at once; from the fault to the last agent's answer           |
//!
//! Every reply is checked (the fake model answers `ok`); a failure makes the bench exit
//! non-zero. Nothing here asserts a speed or a size: the figures are printed.

#[path = "../tests/support/codex_peer.rs"]
mod codex_peer;
#[path = "../tests/support/fake_model.rs"]
mod fake_model;
#[path = "support/fleet.rs"]
#[allow(dead_code)]
mod fleet;
#[path = "../tests/support/irc_client.rs"]
mod irc_client;
#[path = "../tests/support/ircd.rs"]
mod ircd;
#[path = "../tests/support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
#[path = "support/proc_memory.rs"]
mod proc_memory;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use codex_peer::codex_bin;
use fleet::{CHANNEL, Fleet};
use irc_client::{command_and_params, source_nick};
use proc_memory::{Children, Memory, mib};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Agent counts measured.
const COUNTS: [usize; 4] = [1, 5, 10, 20];
/// Idle time before reading memory.
const IDLE: Duration = Duration::from_secs(2);

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let Some(codex) = codex_bin() else {
        return Err("codex is not installed (scripts/install-peers codex): no figures".into());
    };
    let per_process: usize = std::env::var("POOL_K")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    println!(
        "memory of codexd + codex, N agents (one CODEX_HOME), 1 per process vs {per_process} per process; idle {IDLE:?} after one answered mention each"
    );
    let mut failures = Vec::new();
    for count in COUNTS {
        for k in [1, per_process] {
            let (daemon, children) = measure(&codex, count, k, &mut failures).await?;
            println!(
                "  N={count:<2} K={k:<2} processes {:>2}  RSS total {:>9}  Pss total {:>9}  (daemon RSS {}, Pss {})",
                children.pids.len(),
                mib(daemon.rss + children.rss),
                mib(daemon.pss + children.pss),
                mib(daemon.rss),
                mib(daemon.pss),
            );
        }
    }
    let recovery = recover(&codex, 20, &mut failures).await?;
    println!("recovery: 20 agents on one process, SIGKILL → all 20 answered again: {recovery:?}");
    if !failures.is_empty() {
        return Err(format!("{} check(s) failed: {failures:?}", failures.len()).into());
    }
    Ok(())
}

async fn measure(
    codex: &Path,
    count: usize,
    k: usize,
    failures: &mut Vec<String>,
) -> Result<(Memory, Children)> {
    let mut fleet = Fleet::start_with(codex, count, Some(k))
        .await
        .ok_or("agentirc is not installed: no figures")?;
    for nick in fleet.nicks.clone() {
        let reply = fleet.ask(&nick, "hello").await;
        if reply != "ok" {
            failures.push(format!("{nick} (N={count}, K={k}) answered {reply:?}"));
        }
    }
    fleet.wait_settled(1);
    tokio::time::sleep(IDLE).await;
    let pid = fleet.daemon.pid();
    let daemon = Memory::of(pid)?;
    let children = Children::of(pid)?;
    let exit = fleet.stop();
    if !exit.success() {
        failures.push(format!("N={count} K={k}: codexd exited with {exit}"));
    }
    Ok((daemon, children))
}

/// Kills the shared process of `count` agents and times until every agent answered again.
async fn recover(codex: &Path, count: usize, failures: &mut Vec<String>) -> Result<Duration> {
    let mut fleet = Fleet::start_with(codex, count, Some(count))
        .await
        .ok_or("agentirc is not installed: no figures")?;
    for nick in fleet.nicks.clone() {
        fleet.ask(&nick, "hello").await;
    }
    fleet.wait_settled(1);
    let socket = fleet.scratch.socket();
    let started = Instant::now();
    let out = fleet.scratch.cli(&[
        "fault",
        "--socket",
        socket.to_str().unwrap_or_default(),
        &fleet.nicks[0],
        "runner",
        "kill",
    ]);
    if !out.status.success() {
        failures.push(format!("fault kill: {out:?}"));
    }
    for nick in fleet.nicks.clone() {
        fleet
            .ori
            .send(&format!("PRIVMSG {CHANNEL} :@{nick} again"))
            .await;
    }
    let mut answered = BTreeSet::new();
    while answered.len() < count {
        let line = fleet
            .ori
            .expect("an agent answers after the kill", |line| {
                command_and_params(line).0 == "PRIVMSG"
                    && source_nick(line).is_some_and(|n| n.starts_with("spark-a"))
            })
            .await;
        if let Some(nick) = source_nick(&line) {
            answered.insert(nick);
        }
    }
    let elapsed = started.elapsed();
    let _ = fleet.stop();
    Ok(elapsed)
}
