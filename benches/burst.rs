//! `cargo bench --bench burst`: what the shared process's request window buys. One real
//! `codex app-server` (offline, fake model) run by the `codex` service; one session writes a
//! burst of N `thread/loaded/list` requests at once, and the bench counts, after all are
//! answered or 60 s passed: answers, errors, requests never answered, `-32001` answers the
//! pool retried, and the time to the last answer. Once with the default window
//! ([`REQUEST_WINDOW`]) and once with the window wide open (every request written at once,
//! as without one). reference/shared-app-server.md §1 saw codex drop requests and answer
//! `-32001` from about 300 in flight.
//!
//! Nothing is asserted: the figures are printed (`BURSTS=100,300,1000` to choose).

#[path = "../tests/support/codex_peer.rs"]
mod codex_peer;
#[path = "../tests/support/fake_model.rs"]
mod fake_model;
#[path = "../tests/support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codex_peer::{CodexConfig, CodexHome, codex_bin};
use codexd_actors::codex::jsonrpc::{Incoming, Outgoing, RequestId};
use codexd_actors::codex::{CodexCommand, CodexPool, REQUEST_WINDOW, SessionEvent, SessionSink};
use codexd_actors::host::{Host, HostSpec};
use codexd_actors::restart::RestartPolicy;
use codexd_actors::runner::session;
use fake_model::FakeModel;
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long a burst may take before the rest counts as never answered.
const PATIENCE: Duration = Duration::from_secs(60);

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    errors: usize,
    last: Option<Instant>,
}

async fn run() -> Result<()> {
    let Some(bin) = codex_bin() else {
        eprintln!("burst: no codex binary (scripts/install-peers); nothing measured");
        return Ok(());
    };
    let bursts: Vec<usize> = std::env::var("BURSTS")
        .unwrap_or_else(|_| "100,300,1000".to_owned())
        .split(',')
        .map(|n| n.trim().parse())
        .collect::<std::result::Result<_, _>>()?;
    let model = FakeModel::start(Vec::new()).await;
    let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
    let mut command = CodexCommand::new(&bin, "");
    command.cwd = Some(home.home());
    command.env = [
        ("CODEX_HOME", home.codex_home().into_os_string()),
        ("HOME", home.home().into_os_string()),
        ("FAKE_API_KEY", "dummy".into()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v))
    .collect();
    println!(
        "| window | burst | answered | errors | never answered | -32001 retried | to last answer |"
    );
    println!(
        "|--------|-------|----------|--------|----------------|----------------|----------------|"
    );
    for burst in bursts {
        for window in [REQUEST_WINDOW, usize::MAX] {
            let pool = CodexPool::new(1, RestartPolicy::default()).with_window(window);
            let slot = pool.place("bench", "bench", command.clone());
            let spec = HostSpec {
                services: vec![pool.service(RestartPolicy::default(), Duration::from_secs(5))],
                agents: Vec::new(),
                stop_timeout: Duration::from_secs(5),
                observer: None,
            };
            let (host, _) = Host::spawn(spec).await?;
            let mut up = slot.watch();
            up.wait_for(Option::is_some).await?;
            let tally = Arc::new(Mutex::new(Tally::default()));
            let seen = tally.clone();
            let sink = SessionSink::new(move |event| {
                if let SessionEvent::Message(Incoming::Response { id, outcome }) = event {
                    if id != RequestId::Str("init".into()) {
                        let mut tally = seen.lock().expect("tally");
                        match outcome {
                            Ok(_) => tally.ok += 1,
                            Err(_) => tally.errors += 1,
                        }
                        tally.last = Some(Instant::now());
                    }
                }
                true
            });
            let session = slot.attach(sink).ok_or("the codex process is not up")?;
            session.send(Outgoing::Request {
                id: RequestId::Str("init".into()),
                method: "initialize".into(),
                params: Some(session::initialize()),
            })?;
            let started = Instant::now();
            for n in 0..burst {
                session.send(Outgoing::Request {
                    id: RequestId::Int(n as i64),
                    method: "thread/loaded/list".into(),
                    params: Some(json!({})),
                })?;
            }
            let deadline = started + PATIENCE;
            loop {
                let done = {
                    let tally = tally.lock().expect("tally");
                    tally.ok + tally.errors == burst
                };
                if done || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let status = host.status().await?;
            let retried = status
                .services
                .iter()
                .find(|s| s.name == "codex")
                .and_then(|c| c.children.first())
                .and_then(|p| p.detail.as_ref())
                .and_then(|d| d["overloaded"].as_u64())
                .unwrap_or_default();
            let (ok, errors, last) = {
                let tally = tally.lock().expect("tally");
                (tally.ok, tally.errors, tally.last)
            };
            let answered = ok + errors;
            let took = last
                .map(|last| format!("{:.2} s", last.duration_since(started).as_secs_f64()))
                .unwrap_or_else(|| "-".to_owned());
            let label = match window {
                usize::MAX => "none".to_owned(),
                w => w.to_string(),
            };
            println!(
                "| {label} | {burst} | {answered} | {errors} | {} | {retried} | {took} |",
                burst - answered
            );
            drop(session);
            host.shutdown(Duration::from_secs(10)).await;
        }
    }
    Ok(())
}
