//! `cargo bench --bench alerts`: how long an alert takes from a child failure to the
//! webhook's HTTP request. The real `codexd run` (this package's release binary) hosts one
//! agent whose runner drives the scripted fake app-server (`tests/support/fake_app_server.py`)
//! on a real agentirc. Its webhook posts `generic` bodies to the loopback receiver
//! (`tests/support/webhook_receiver.rs`).
//!
//! | figure            | from                                                | to                               |
//! |-------------------|-----------------------------------------------------|----------------------------------|
//! | `agent_error`     | `codexd fault <nick> runner kill` started (CLI)     | the runner's exit alert arrives  |
//! | `agent_restarted` | the same                                            | the supervisor observer's alert  |
//!
//! Each round kills codex once (SIGKILL, through the control socket), waits for both
//! requests, then waits until the restarted runner is idle again. `dedup_window: 0` (every
//! kill raises the same `agent_error` text) and a restart budget large enough that the
//! circuit never opens. The figures include the `codexd` CLI's own start-up (a process
//! spawn and a control-socket round trip), so they are an upper bound of the daemon's
//! share. This is a measurement, not a test: nothing here asserts a speed. A missing peer
//! or a missing request makes the bench exit non-zero (no figures).

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
#[path = "../tests/support/mod.rs"]
mod support;
#[path = "../tests/support/webhook_receiver.rs"]
mod webhook_receiver;

use std::time::{Duration, Instant};

use codex_agent::{Codex, CodexAgent, Extra};
use webhook_receiver::{Request, WebhookReceiver};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Rounds before the timed ones, not measured.
const WARM_UP: usize = 2;
/// Rounds timed.
const ROUNDS: usize = 20;
/// A request that has not arrived after this long is a failure.
const PATIENCE: Duration = Duration::from_secs(30);

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let receiver = WebhookReceiver::start().await;
    let top = format!(
        "webhooks:\n  url: {}\n  format: generic\n  dedup_window: 0\n  events: [agent_error, agent_restarted]\n",
        receiver.url()
    );
    let extra = Extra {
        top: &top,
        agent: "    restart: {backoff_base: 50ms, backoff_cap: 100ms, max_restarts: 1000, window: 10s}\n",
        ..Extra::default()
    };
    let agent = CodexAgent::start(Codex::Fake(""), extra)
        .await
        .ok_or("agentirc is not installed: no figures")?;
    println!(
        "context: {} CPUs; codexd {}; one agent, fake app-server, agentirc, loopback receiver",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        env!("CARGO_BIN_EXE_codexd"),
    );
    let (mut errors, mut restarts) = (Vec::new(), Vec::new());
    for round in 0..WARM_UP + ROUNDS {
        let seen = receiver.requests().len();
        let start = Instant::now();
        agent.fault("kill");
        let requests = wait_for(&receiver, seen, 2).await?;
        let at = |event: &str| {
            requests
                .iter()
                .find(|r| r.event().as_deref() == Some(event))
                .map(|r| r.at.saturating_duration_since(start))
                .ok_or(format!("round {round}: no {event} request"))
        };
        let (error, restart) = (at("agent_error")?, at("agent_restarted")?);
        if round >= WARM_UP {
            errors.push(error);
            restarts.push(restart);
        }
        agent.wait_ready();
    }
    println!("{ROUNDS} rounds after {WARM_UP} warm-up, kill → request at the receiver:");
    println!("  agent_error     {}", summary(&mut errors));
    println!("  agent_restarted {}", summary(&mut restarts));
    Ok(())
}

/// Waits until `n` requests arrived after the first `seen`; answers those.
async fn wait_for(receiver: &WebhookReceiver, seen: usize, n: usize) -> Result<Vec<Request>> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let requests = receiver.requests();
        if requests.len() >= seen + n {
            return Ok(requests[seen..].to_vec());
        }
        if Instant::now() > deadline {
            return Err(format!("only {} of {n} requests arrived", requests.len() - seen).into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// p50, p90 and max (nearest rank) and the mean, in ms.
fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rank = |p: f64| {
        let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        ms(samples[i])
    };
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len().max(1) as f64;
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms, mean {mean:.1} ms",
        rank(0.5),
        rank(0.9),
        rank(1.0)
    )
}
