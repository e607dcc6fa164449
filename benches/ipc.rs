//! `cargo bench --bench ipc`: request latency and throughput of the `socket` actor's
//! Culture IPC (JSON lines over a Unix socket), for `status` and `irc_send`, against a real
//! Host → agent → [socket, irc] tree in this process (`tests/support/ipc_agent.rs`) whose
//! `irc` child is registered on the loopback IRC server (`support/loopback_ircd.rs`).
//!
//! | figure       | how                                                                   |
//! |--------------|-----------------------------------------------------------------------|
//! | latency      | 1 connection, one request at a time: p50/p90/p99/max and requests/s   |
//! | concurrency  | 8 connections, one request outstanding on each: aggregate requests/s  |
//! | pipelined    | 1 connection, batches of 1 000 written at once while answers are read |
//!
//! A floor comes first: the same three figures against a bare JSON-lines server on the
//! daemon's runtime (parse, answer the id, no actors), so the agent's share can be told
//! from what the transport, the runtimes and the machine cost.
//!
//! Two runtimes, like two processes: the agent runs on a 2-worker tokio runtime like the
//! daemon's; the clients and the IRC server run on a second one. Every answer is checked
//! (`"type":"response"`, the request's id, `"ok":true`); any failure makes the bench exit
//! non-zero, since timing failing requests means nothing. Flood pacing is off, so
//! `irc_send` measures IPC and actor overhead, not the 2 lines/s IRC pacing. This is a
//! measurement, not a test: nothing here asserts a speed. No tracing subscriber is
//! installed, so spans cost what a disabled span costs.

#[path = "../tests/support/ipc_agent.rs"]
mod ipc_agent;
#[path = "support/loopback_ircd.rs"]
mod loopback_ircd;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use codexd_actors::irc::IrcSettings;
use ipc_agent::IpcAgent;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::Barrier;

/// Requests before the latency run, not measured.
const WARM_UP: usize = 1_000;
/// Requests in the latency run.
const SEQUENTIAL: usize = 20_000;
/// Client connections in the concurrency run.
const CONNECTIONS: usize = 8;
/// Requests in the concurrency run, over all connections.
const CONCURRENT_TOTAL: usize = 40_000;
/// Requests in the pipelined run.
const PIPELINED: usize = 40_000;
/// Requests written at once in the pipelined run: under the 1 024 lines an `irc`
/// connection queues.
const BATCH: usize = 1_000;
/// Upper bound for anything awaited: a hang detector, not a speed limit.
const PATIENCE: Duration = Duration::from_secs(60);
/// How long the IRC server may take to read the PRIVMSGs answered `ok` so far.
const DRAIN_PATIENCE: Duration = Duration::from_secs(10);
/// Failed answers printed at the end (all are counted).
const EXAMPLES: usize = 5;
/// The agent's nick and (only) channel.
const NICK: &str = "spark-bench";
const CHANNEL: &str = "#general";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Result<()> {
    // The daemon's runtime: the Host, the agent and its children.
    let daemon = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("daemon")
        .enable_all()
        .build()?;
    // Everything outside the daemon: the IPC clients and the IRC server.
    let world = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("world")
        .enable_all()
        .build()?;

    let privmsgs = Arc::new(AtomicU64::new(0));
    let port = world.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(loopback_ircd::serve(listener, Arc::clone(&privmsgs)));
        Result::Ok(port)
    })?;
    let agent = daemon.block_on(async {
        let agent = IpcAgent::start(settings(port)).await;
        agent.wait_irc_connected().await;
        agent
    });
    let floor_dir = tempfile::tempdir()?;
    let floor = floor_dir.path().join("floor.sock");
    daemon.block_on(async {
        let listener = UnixListener::bind(&floor)?;
        tokio::spawn(serve_floor(listener));
        Result::Ok(())
    })?;

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "context: {cpus} CPUs (available_parallelism), release build, one process: the agent \
         (Host → agent → [socket, irc]) on a 2-worker tokio runtime like the daemon's, the \
         clients and the loopback IRC server on another 2-worker runtime; Culture's JSON \
         lines over a Unix socket; IRC flood pacing off"
    );
    let path = agent.path.clone();
    let mut failures = Tally::default();
    let measured = world.block_on(async {
        for verb in [Verb::Floor, Verb::Status, Verb::IrcSend] {
            println!();
            let path = match verb {
                Verb::Floor => &floor,
                _ => &path,
            };
            measure(path, verb, &privmsgs, &mut failures).await?;
        }
        Result::Ok(())
    });
    let afterwards = daemon.block_on(async {
        let status = agent.host.status().await.map(serde_json::to_value);
        agent.stop().await;
        status
    });
    drop(world);
    measured?;
    println!();
    afterwards_line(&afterwards??, &mut failures);
    if failures.count > 0 {
        eprintln!();
        eprintln!("{} failures; the first:", failures.count);
        for example in &failures.examples {
            eprintln!("  {example}");
        }
        return Err(format!("{} failures: the figures are meaningless", failures.count).into());
    }
    Ok(())
}

/// Prints the agent's own counters from the Host status; a restart or reconnect during the
/// run is a failure (the figures would include it).
fn afterwards_line(status: &Value, failures: &mut Tally) {
    let agent = &status["agents"][0];
    let child = |name: &str| {
        agent["children"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_default()
    };
    let (socket, irc) = (child("socket"), child("irc"));
    let restarts: u64 = [&agent["restarts"], &socket["restarts"], &irc["restarts"]]
        .iter()
        .map(|r| r.as_u64().unwrap_or(0))
        .sum();
    let connects = irc["detail"]["connects"].as_u64().unwrap_or(0);
    println!(
        "afterwards: the socket counted {} requests ({} failed), the irc child registered {} \
         time(s), {} restart(s) in the agent",
        socket["detail"]["requests"], socket["detail"]["failed"], connects, restarts
    );
    if restarts > 0 || connects != 1 {
        failures.record(Some(format!(
            "{restarts} restart(s), {connects} IRC registration(s) during the run"
        )));
    }
}

/// The daemon's defaults for the agent on the loopback server, in one channel, with flood
/// pacing off.
fn settings(port: u16) -> IrcSettings {
    let mut settings = IrcSettings::new("127.0.0.1", port, "loopback", NICK);
    settings.channels = vec![CHANNEL.to_owned()];
    settings.flood.per_second = 0.0;
    settings
}

/// The floor: a bare JSON-lines server on the daemon's runtime that parses each line and
/// answers its id, written straight to the socket (no actors, no writer task, no verb).
async fn serve_floor(listener: UnixListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let request: Value = serde_json::from_str(&line).unwrap_or_default();
                let answer = serde_json::json!({
                    "type": "response",
                    "id": request["id"],
                    "ok": true,
                });
                let mut bytes = serde_json::to_vec(&answer).unwrap_or_default();
                bytes.push(b'\n');
                if write.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// The requests measured.
#[derive(Debug, Clone, Copy)]
enum Verb {
    /// A `status` line to the floor server: the transport and JSON alone.
    Floor,
    /// Culture's seven status fields; asks the agent's supervisor for the runner's circuit.
    Status,
    /// `bench line N` to `#general`, through the `irc` actor onto the wire.
    IrcSend,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Floor => "floor: `status` lines to a bare JSON-lines echo server, no actors",
            Verb::Status => "status",
            Verb::IrcSend => "irc_send",
        }
    }

    /// The request line with id `id`.
    fn line(self, id: u64) -> String {
        match self {
            Verb::Floor | Verb::Status => format!("{{\"type\":\"status\",\"id\":\"{id}\"}}\n"),
            Verb::IrcSend => format!(
                "{{\"type\":\"irc_send\",\"id\":\"{id}\",\"channel\":\"{CHANNEL}\",\
                 \"message\":\"bench line {id}\"}}\n"
            ),
        }
    }
}

/// All three figures for one verb, adding its failures to `failures`; for `irc_send`,
/// also waits until the server has read every PRIVMSG that was answered `ok`.
async fn measure(
    path: &Path,
    verb: Verb,
    privmsgs: &AtomicU64,
    failures: &mut Tally,
) -> Result<()> {
    let before = privmsgs.load(Ordering::Relaxed);
    let mut verb_tally = Tally::default();
    println!("{}", verb.name());

    let mut client = Client::connect(path).await?;
    let mut tally = Tally::default();
    for _ in 0..WARM_UP {
        client.request(verb, &mut tally).await?;
    }
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    let started = Instant::now();
    for _ in 0..SEQUENTIAL {
        let sent = Instant::now();
        client.request(verb, &mut tally).await?;
        latencies.push(sent.elapsed());
    }
    let elapsed = started.elapsed();
    drop(client);
    println!(
        "  latency, 1 connection, sequential ({SEQUENTIAL} after {WARM_UP} warm-up): {}  \
         {:>7.0} req/s{}",
        Percentiles::of(&mut latencies),
        SEQUENTIAL as f64 / elapsed.as_secs_f64(),
        tally.suffix()
    );
    verb_tally.merge(tally);

    let (elapsed, mut latencies, tally) = concurrent(path, verb).await?;
    println!(
        "  {CONNECTIONS} connections, 1 outstanding each ({CONCURRENT_TOTAL} in all): \
         {:>7.0} req/s  (per request {}){}",
        CONCURRENT_TOTAL as f64 / elapsed.as_secs_f64(),
        Percentiles::of(&mut latencies),
        tally.suffix()
    );
    verb_tally.merge(tally);

    let (elapsed, tally) = pipelined(path, verb, privmsgs).await?;
    println!(
        "  pipelined, 1 connection ({PIPELINED} in batches of {BATCH}{}): {:>7.0} req/s{}",
        match verb {
            Verb::IrcSend => ", each read by the IRC server before the next",
            _ => "",
        },
        PIPELINED as f64 / elapsed.as_secs_f64(),
        tally.suffix()
    );
    verb_tally.merge(tally);

    if let Verb::IrcSend = verb {
        let ok = verb_tally.ok;
        if wait_for_privmsgs(privmsgs, before + ok).await {
            println!("  the IRC server read all {ok} PRIVMSG lines answered ok");
        } else {
            let seen = privmsgs.load(Ordering::Relaxed) - before;
            println!(
                "  the IRC server read only {seen} of the {ok} PRIVMSG lines answered ok  FAILED"
            );
            verb_tally.record(Some(format!(
                "the IRC server read {seen} of the {ok} PRIVMSG lines answered ok"
            )));
        }
    }
    failures.merge(verb_tally);
    Ok(())
}

/// `CONNECTIONS` clients, each sending its share one request at a time, started together;
/// the time until the last one finishes, every request's latency, and the failures.
async fn concurrent(path: &Path, verb: Verb) -> Result<(Duration, Vec<Duration>, Tally)> {
    let barrier = Arc::new(Barrier::new(CONNECTIONS + 1));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut client = Client::connect(path).await?;
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let mut failures = Tally::default();
            let mut latencies = Vec::with_capacity(CONCURRENT_TOTAL / CONNECTIONS);
            barrier.wait().await;
            for _ in 0..CONCURRENT_TOTAL / CONNECTIONS {
                let sent = Instant::now();
                client.request(verb, &mut failures).await?;
                latencies.push(sent.elapsed());
            }
            Result::Ok((Instant::now(), latencies, failures))
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut finished = started;
    let mut all = Vec::with_capacity(CONCURRENT_TOTAL);
    let mut failures = Tally::default();
    for task in tasks {
        let (end, latencies, tally) = task.await??;
        finished = finished.max(end);
        all.extend(latencies);
        failures.merge(tally);
    }
    Ok((finished - started, all, failures))
}

/// One connection: `PIPELINED` requests in batches of `BATCH`, each written at once while
/// its answers are read (writing everything first would deadlock once both socket buffers
/// are full). For `irc_send` the next batch waits until the IRC server has read the
/// PRIVMSGs answered `ok`: the `irc` connection queues at most 1 024 lines and refuses the
/// rest, and a batch below that can only overflow it if lines are still waiting. The time
/// from the first byte written until the last answer (and for `irc_send`, the last line
/// read by the server).
async fn pipelined(path: &Path, verb: Verb, privmsgs: &AtomicU64) -> Result<(Duration, Tally)> {
    let Client {
        mut reader,
        mut writer,
        mut line,
        ..
    } = Client::connect(path).await?;
    let mut failures = Tally::default();
    let mut delivered = privmsgs.load(Ordering::Relaxed);
    let started = Instant::now();
    for first in (1..=PIPELINED as u64).step_by(BATCH) {
        let ids = first..first + BATCH as u64;
        let batch: String = ids.clone().map(|id| verb.line(id)).collect();
        let write = async {
            writer.write_all(batch.as_bytes()).await?;
            Result::Ok(())
        };
        let read = async {
            let mut tally = Tally::default();
            for id in ids {
                tally.record(next_answer(&mut reader, &mut line, id).await?);
            }
            Result::Ok(tally)
        };
        let (written, tally) = tokio::join!(write, read);
        written?;
        let tally = tally?;
        if let Verb::IrcSend = verb {
            delivered += tally.ok;
            if !wait_for_privmsgs(privmsgs, delivered).await {
                failures.record(Some(format!(
                    "the IRC server read {} of {delivered} PRIVMSG lines answered ok",
                    privmsgs.load(Ordering::Relaxed)
                )));
            }
        }
        failures.merge(tally);
    }
    Ok((started.elapsed(), failures))
}

/// Waits (up to `DRAIN_PATIENCE`) until the IRC server has read `count` PRIVMSGs in all;
/// false if it has not by then.
async fn wait_for_privmsgs(privmsgs: &AtomicU64, count: u64) -> bool {
    let started = Instant::now();
    let mut spins = 0;
    while privmsgs.load(Ordering::Relaxed) < count {
        if started.elapsed() > DRAIN_PATIENCE {
            return false;
        }
        // Yield first: the last lines are usually a few µs away, a timer tick is 1 ms.
        spins += 1;
        if spins < 100 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    true
}

/// One IPC connection.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    line: String,
}

impl Client {
    async fn connect(path: &Path) -> Result<Client> {
        let stream = UnixStream::connect(PathBuf::from(path)).await?;
        let (read, writer) = stream.into_split();
        Ok(Client {
            reader: BufReader::new(read),
            writer,
            next_id: 0,
            line: String::new(),
        })
    }

    /// Sends one request and reads its answer; a wrong answer is counted in `failures`, a
    /// closed or silent socket is an error.
    async fn request(&mut self, verb: Verb, failures: &mut Tally) -> Result<()> {
        self.next_id += 1;
        self.writer
            .write_all(verb.line(self.next_id).as_bytes())
            .await?;
        let failure = next_answer(&mut self.reader, &mut self.line, self.next_id).await?;
        failures.record(failure);
        Ok(())
    }
}

/// Reads the next response line (whispers before it are skipped) and checks it answers
/// request `id` with `"ok":true`; `Some(line)` if it does not.
async fn next_answer(
    reader: &mut BufReader<OwnedReadHalf>,
    line: &mut String,
    id: u64,
) -> Result<Option<String>> {
    loop {
        line.clear();
        let read = tokio::time::timeout(PATIENCE, reader.read_line(line))
            .await
            .map_err(|_| format!("no answer to request {id} in {PATIENCE:?}"))??;
        if read == 0 {
            return Err(format!("the socket closed before answering request {id}").into());
        }
        let answer: Value = match serde_json::from_str(line) {
            Ok(answer) => answer,
            Err(_) => return Ok(Some(line.trim_end().to_owned())),
        };
        if answer["type"] != "response" {
            continue;
        }
        let right = answer["id"].as_str() == Some(&id.to_string()) && answer["ok"] == true;
        return Ok((!right).then(|| line.trim_end().to_owned()));
    }
}

/// Right answers, and failures (wrong answers, lost lines): how many, and the first few.
#[derive(Default)]
struct Tally {
    ok: u64,
    count: usize,
    examples: Vec<String>,
}

impl Tally {
    fn record(&mut self, failure: Option<String>) {
        match failure {
            None => self.ok += 1,
            Some(answer) => {
                self.count += 1;
                if self.examples.len() < EXAMPLES {
                    self.examples.push(answer);
                }
            }
        }
    }

    /// Nothing, or `  N FAILED` to append to a figure.
    fn suffix(&self) -> String {
        match self.count {
            0 => String::new(),
            n => format!("  {n} FAILED"),
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.count += other.count;
        let room = EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }
}

/// p50, p90, p99 and max of a set of latencies.
struct Percentiles([Duration; 4]);

impl Percentiles {
    /// Sorts `latencies` (nearest rank).
    fn of(latencies: &mut [Duration]) -> Percentiles {
        latencies.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * latencies.len() as f64).ceil() as usize).max(1) - 1;
            latencies.get(index).copied().unwrap_or_default()
        };
        Percentiles([rank(0.50), rank(0.90), rank(0.99), rank(1.0)])
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let [p50, p90, p99, max] = self.0;
        write!(
            f,
            "p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            us(p50),
            us(p90),
            us(p99),
            us(max)
        )
    }
}
