//! `cargo bench --bench scale`: the limits of one host. One agentirc, one `codexd run`
//! (release) with N agents, every agent on the real `codex app-server` offline against the
//! in-repo fake model, one codex identity (one CODEX_HOME), K agents to a codex process.
//!
//! | figure            | how                                                                  |
//! |-------------------|----------------------------------------------------------------------|
//! | ready             | from `codexd run`'s exec until `status` shows every irc link connected and every runner idle |
//! | fds               | `/proc/<pid>/fd` of the daemon once ready, beside `fdlimit::needed` and its soft limit |
//! | memory            | VmRSS and Pss of the daemon, and summed over its children (the codex processes) |
//! | idle wake-ups     | context switches of every daemon thread over `SCALE_IDLE_SECS`, nothing asked of it, scaled to an hour |
//! | mention→reply     | `SCALE_MENTIONS` mentions one at a time, agent `i·N/M` each (spread over all agents, each its first turn: a `thread/start` and a turn), p50/p99 |
//! | what broke        | when not all ready by `SCALE_READY_SECS`: how many were, the daemon's distinct WARN/ERROR messages, agentirc's last lines |
//!
//! Agents sit in channels of `SCALE_CHANNEL` agents (`#c0`, `#c1`, …), so one reply is not
//! fanned out to every agent. Environment: `SCALE_AGENTS=100,300` (N), `SCALE_PER_PROCESS=10,50`
//! (K), `SCALE_IDLE_SECS=60`, `SCALE_MENTIONS=100`, `SCALE_READY_SECS=600`, `SCALE_CHANNEL=50`;
//! `SCALE_SETTLE_SECS=0` waits after ready before the idle window; `SCALE_NOFILE=<n>` caps open files (soft and hard) for codexd and agentirc.
//! Nothing is asserted; a reply other than the fake model's `ok` is a failure (exit non-zero).

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
#[path = "support/proc_memory.rs"]
mod proc_memory;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use codex_peer::{CodexConfig, CodexHome, codex_bin};
use fake_model::FakeModel;
use irc_client::{RawClient, command_and_params, source_nick};
use ircd::{Flavor, Ircd};
use latency::{BenchError, Stats, main_rounds};
use proc_memory::{Children, Memory, mib};
use support::{Daemon, Scratch};

fn list(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn number(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), BenchError> {
    main_rounds("SCALE_MENTIONS", 100, run)
}

async fn run(mentions: usize) -> Result<Vec<String>, BenchError> {
    let Some(codex) = codex_bin() else {
        return Err("codex is not installed (scripts/install-peers codex): no figures".into());
    };
    if let Some(limit) = std::env::var("SCALE_NOFILE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        // Soft and hard: what a host whose limits.conf (or unit) caps open files gives
        // codexd (and agentirc). Irreversible for this process.
        let cap = rustix::process::Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        };
        rustix::process::setrlimit(rustix::process::Resource::Nofile, cap)?;
        println!("open files capped at {limit} (soft and hard) for codexd and agentirc");
    }
    let mut failures = Vec::new();
    println!(
        "| agents | per process | ready | fds (needed, soft limit) | daemon RSS / Pss | codex processes, RSS / Pss | idle wake-ups/h | mention→reply p50 / p99 | broke |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for count in list("SCALE_AGENTS", &[100, 300]) {
        for per_process in list("SCALE_PER_PROCESS", &[10, 50]) {
            let row = measure(&codex, count, per_process, mentions, &mut failures).await?;
            println!("{row}");
        }
    }
    Ok(failures)
}

/// One host's figures, as a table row.
async fn measure(
    codex: &Path,
    count: usize,
    per_process: usize,
    mentions: usize,
    failures: &mut Vec<String>,
) -> Result<String, BenchError> {
    let ircd = Ircd::start(Flavor::Agentirc, "spark")
        .await
        .ok_or("agentirc is not installed: no figures")?;
    let model = FakeModel::start(Vec::new()).await;
    let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
    let scratch = Scratch::new();
    let channel_size = number("SCALE_CHANNEL", 50).max(1) as usize;
    let nicks: Vec<String> = (0..count).map(|i| format!("spark-a{i}")).collect();
    write_config(
        &scratch,
        &ircd,
        codex,
        &home,
        &nicks,
        per_process,
        channel_size,
    );
    let started = Instant::now();
    let mut daemon = scratch.run(&[]);
    let patience = Duration::from_secs(number("SCALE_READY_SECS", 600));
    let (ready, connected, idle) = wait_ready(&scratch, &mut daemon, &nicks, patience);
    let pid = daemon.pid();
    let Some(ready) = ready.map(|_| started.elapsed()) else {
        let broke = broke(&daemon, &ircd, connected, idle, count);
        failures.push(format!("N={count} K={per_process}: {broke}"));
        return Ok(format!(
            "| {count} | {per_process} | not in {patience:?} | {} | | | | | {broke} |",
            fds(pid, count, per_process)
        ));
    };
    let fds = fds(pid, count, per_process);
    tokio::time::sleep(Duration::from_secs(number("SCALE_SETTLE_SECS", 0))).await;
    let wakeups = idle_wakeups(pid, Duration::from_secs(number("SCALE_IDLE_SECS", 60))).await;
    let daemon_memory = Memory::of(pid)?;
    let children = Children::of(pid)?;
    let mut ori =
        RawClient::connect(ircd.host(), ircd.port(), "spark-ori", &["message-tags"]).await;
    let channels: BTreeSet<String> = (0..count).map(|i| channel(i, channel_size)).collect();
    for name in &channels {
        ori.join(name).await;
    }
    let mut latencies = Vec::new();
    for m in 0..mentions.min(count) {
        let i = m * count / mentions.min(count);
        let (nick, room) = (&nicks[i], channel(i, channel_size));
        let sent = Instant::now();
        ori.send(&format!("PRIVMSG {room} :@{nick} hello")).await;
        let line = ori
            .expect(&format!("{nick} answers"), |line| {
                command_and_params(line).0 == "PRIVMSG"
                    && source_nick(line).as_deref() == Some(nick)
            })
            .await;
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
        let (_, params) = command_and_params(&line);
        if params.get(1).map(String::as_str) != Some("ok") {
            failures.push(format!("{nick} (N={count}) answered {params:?}"));
        }
    }
    let stats = Stats::of(&mut latencies);
    daemon.signal("TERM");
    let exit = daemon.wait();
    if !exit.success() {
        failures.push(format!(
            "N={count} K={per_process}: codexd exited with {exit}"
        ));
    }
    Ok(format!(
        "| {count} | {per_process} | {ready:.1?} | {fds} | {} / {} | {}, {} / {} | {wakeups} | {:.0} / {:.0} ms (n {}) | — |",
        mib(daemon_memory.rss),
        mib(daemon_memory.pss),
        children.pids.len(),
        mib(children.rss),
        mib(children.pss),
        stats.p50,
        stats.p99,
        stats.count,
    ))
}

fn channel(i: usize, size: usize) -> String {
    format!("#c{}", i / size)
}

fn write_config(
    scratch: &Scratch,
    ircd: &Ircd,
    codex: &Path,
    home: &CodexHome,
    nicks: &[String],
    per_process: usize,
    channel_size: usize,
) {
    let mut agents = String::new();
    for (i, nick) in nicks.iter().enumerate() {
        let work = scratch.path(&format!("work/{nick}"));
        std::fs::create_dir_all(&work).expect("workdir");
        agents.push_str(&format!(
            "  - nick: {nick}\n    channels: ['{}']\n    directory: {}\n    model: fake-model\n",
            channel(i, channel_size),
            work.display()
        ));
    }
    scratch.write_config(&format!(
        "server:\n  name: spark\n  host: {host}\n  port: {port}\nstate_dir: {{home}}/state\n\
         control_socket: {{socket}}\nshutdown_grace: 30s\ncodex:\n  binary: {codex}\n  \
         agents_per_process: {per_process}\n  env:\n    CODEX_HOME: {codex_home}\n    HOME: {home}\n    \
         FAKE_API_KEY: dummy\n    RUST_LOG: warn\nagents:\n{agents}",
        host = ircd.host(),
        port = ircd.port(),
        codex = codex.display(),
        codex_home = home.codex_home().display(),
        home = home.home().display(),
    ));
}

/// Polls `status` until every agent is connected with an idle runner (Some), the daemon
/// exits or `patience` runs out (None); the last counts of connected links and idle runners.
fn wait_ready(
    scratch: &Scratch,
    daemon: &mut Daemon,
    nicks: &[String],
    patience: Duration,
) -> (Option<()>, usize, usize) {
    let deadline = Instant::now() + patience;
    let (mut connected, mut idle) = (0, 0);
    while Instant::now() < deadline && daemon.child_alive() {
        if let Some(status) = scratch.status() {
            connected = nicks
                .iter()
                .filter(|n| {
                    support::child(&status, n, "irc")
                        .is_some_and(|c| c["detail"]["state"] == "connected")
                })
                .count();
            idle = nicks
                .iter()
                .filter(|n| {
                    support::child(&status, n, "runner")
                        .is_some_and(|c| c["detail"]["phase"] == "idle")
                })
                .count();
            if connected == nicks.len() && idle == nicks.len() {
                return (Some(()), connected, idle);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    (None, connected, idle)
}

/// What broke: the counts, the daemon's distinct WARN/ERROR messages, agentirc's last lines.
fn broke(daemon: &Daemon, ircd: &Ircd, connected: usize, idle: usize, count: usize) -> String {
    let log = daemon.log_text();
    let mut seen = std::collections::BTreeMap::new();
    for line in log.lines() {
        if !(line.contains("WARN") || line.contains("ERROR")) {
            continue;
        }
        // The message and its fields, without the time, level and actor id.
        let words = line.split_whitespace().skip(2);
        let message: Vec<&str> = words
            .filter(|w| !w.starts_with("Actor{"))
            .take(12)
            .collect();
        *seen.entry(message.join(" ")).or_insert(0usize) += 1;
    }
    let server = ircd.log_text();
    let tail: Vec<&str> = server.lines().rev().take(3).collect();
    let seen: Vec<(usize, String)> = seen.into_iter().map(|(m, n)| (n, m)).take(6).collect();
    format!(
        "{connected}/{count} connected, {idle}/{count} runners idle; daemon (count, message): \
         {seen:?}; agentirc: {tail:?}"
    )
}

/// The daemon's open descriptors, the estimate ([`codexd::fdlimit::needed`]) and its soft limit.
fn fds(pid: u32, count: usize, per_process: usize) -> String {
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or("?")
        .to_owned();
    format!(
        "{open} ({}, {soft})",
        codexd::fdlimit::needed(count, per_process)
    )
}

/// Context switches of all the daemon's threads over `window`, scaled to an hour.
async fn idle_wakeups(pid: u32, window: Duration) -> u64 {
    let before = switches(pid);
    tokio::time::sleep(window).await;
    let after = switches(pid);
    after.saturating_sub(before) * 3600 / window.as_secs().max(1)
}

fn switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}
