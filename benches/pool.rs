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
//! | recovery | N = K = 1, then 20, on one process: `codexd fault <nick> runner kill`, then |
//! |          | a mention to every agent at once; from the fault to the last agent's answer, |
//! |          | split by `codexd status` polled meanwhile: new process up, every runner has |
//! |          | its thread back on it (resumed), last answer                                |
//!
//! `POOL_K=<k>` sets K (default 20); `POOL_RECOVERY_ONLY=1` measures recovery alone;
//! `POOL_RECOVERY_RUNS=<n>` repeats each recovery n times.
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
    let counts: &[usize] = match std::env::var_os("POOL_RECOVERY_ONLY") {
        Some(_) => &[],
        None => &COUNTS,
    };
    for &count in counts {
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
    let runs: usize = std::env::var("POOL_RECOVERY_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    for count in [1, 20] {
        for _ in 0..runs {
            let recovery = recover(&codex, count, &mut failures).await?;
            println!(
                "recovery: {count} agent(s) on one process, SIGKILL → new process {} → all {count} resumed {} → all {count} answered again {:.2?}",
                since(recovery.process_up),
                since(recovery.resumed),
                recovery.answered
            );
        }
    }
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

/// Times after the SIGKILL of a shared process, from the kill.
struct Recovery {
    /// A new process is in the `codex` service's status.
    process_up: Option<Duration>,
    /// Every runner has its thread back (resumed; its mention may be running).
    resumed: Option<Duration>,
    /// Every agent answered a mention sent right after the kill.
    answered: Duration,
}

fn since(at: Option<Duration>) -> String {
    at.map_or_else(|| "(not seen)".to_owned(), |d| format!("{d:.2?}"))
}

/// Polls `codexd status` on `socket` until a process other than `old` runs in the `codex`
/// service and then until `count` runners have their thread back on it; the times of both.
fn watch(
    socket: std::path::PathBuf,
    old: serde_json::Value,
    count: usize,
    started: Instant,
) -> (Option<Duration>, Option<Duration>) {
    let deadline = started + Duration::from_secs(120);
    let (mut up, mut resumed) = (None, None);
    while resumed.is_none() && Instant::now() < deadline {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_codexd"))
            .args(["status", "--json", "--socket"])
            .arg(&socket)
            .output();
        let status: serde_json::Value = match out {
            Ok(out) if out.status.success() => {
                serde_json::from_slice(&out.stdout).unwrap_or_default()
            }
            _ => continue,
        };
        let pid = &status["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "codex"))
            .map(|c| c["children"][0]["detail"]["pid"].clone())
            .unwrap_or_default();
        if up.is_none() && pid.is_u64() && *pid != old {
            up = Some(started.elapsed());
        }
        let ready = status["agents"].as_array().map_or(0, |agents| {
            agents
                .iter()
                .filter_map(|a| {
                    a["children"]
                        .as_array()?
                        .iter()
                        .find(|c| c["name"] == "runner")
                })
                .filter(|r| {
                    let phase = &r["detail"]["phase"];
                    r["detail"]["pid"] == *pid && phase != "handshake" && phase != "waiting"
                })
                .count()
        });
        if up.is_some() && ready == count {
            resumed = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (up, resumed)
}

/// Kills the shared process of `count` agents and times until every agent answered again.
async fn recover(codex: &Path, count: usize, failures: &mut Vec<String>) -> Result<Recovery> {
    let mut fleet = Fleet::start_with(codex, count, Some(count))
        .await
        .ok_or("agentirc is not installed: no figures")?;
    for nick in fleet.nicks.clone() {
        fleet.ask(&nick, "hello").await;
    }
    let settled = fleet.wait_settled(1);
    let old = settled[0]["detail"]["pid"].clone();
    let socket = fleet.scratch.socket();
    let started = Instant::now();
    let watcher = {
        let socket = socket.clone();
        std::thread::spawn(move || watch(socket, old, count, started))
    };
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
    let answered = started.elapsed();
    let (process_up, resumed) = watcher.join().map_err(|_| "the status watcher panicked")?;
    let _ = fleet.stop();
    Ok(Recovery {
        process_up,
        resumed,
        answered,
    })
}
