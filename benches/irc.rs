//! `cargo bench --bench irc`: two figures for the `irc` actor, measured against a tiny
//! loopback IRC server in this process (`support/loopback_ircd.rs`; no external server, no
//! network).
//!
//! | figure            | how                                                              |
//! |-------------------|------------------------------------------------------------------|
//! | idle memory       | RSS (and PSS) growth per registered, idle connection, K = 1/50/200 |
//! | inbound throughput| 200 000 tagged PRIVMSG lines then `PING :end`; time to `PONG :end` |
//!
//! The actor answers PINGs in order, so its `PONG :end` proves every line before it was
//! parsed, classified and buffered. Memory runs first, in a fresh process, so the heap the
//! throughput runs grow cannot be reused by the idle connections. This is a measurement,
//! not a test: nothing here asserts a speed. No tracing subscriber is installed, so spans
//! cost what a disabled span costs.

#[path = "support/loopback_ircd.rs"]
mod loopback_ircd;

use std::sync::Arc;
use std::time::Duration;

use codexd_actors::irc::{
    BufferedMessage, Irc, IrcArgs, IrcEvent, IrcMessage, IrcSettings, IrcStatus,
};
use codexd_actors::link::Link;
use loopback_ircd::{register, split, untagged};
use ractor::{Actor, ActorRef};
use tokio::io::{AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Lines per throughput run.
const LINES: usize = 200_000;
/// Throughput runs; the median is reported too.
const RUNS: usize = 3;
/// Idle connection counts, reached by adding connections to the ones already up.
const IDLE_COUNTS: [usize; 3] = [1, 50, 200];
/// How long connections idle before memory is read.
const IDLE: Duration = Duration::from_secs(1);
/// Upper bound for anything awaited: a hang detector, not a speed limit.
const PATIENCE: Duration = Duration::from_secs(120);
/// Every agent's (only) channel.
const CHANNEL: &str = "#general";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        idle_memory().await?;
        println!();
        throughput().await
    })
}

// ---------------------------------------------------------------------------------------
// Idle memory
// ---------------------------------------------------------------------------------------

/// Starts idle connections in steps up to each count and prints memory growth per connection.
async fn idle_memory() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(loopback_ircd::serve(listener, Arc::default()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let base = Memory::now()?;
    println!("idle memory: one registered connection per `irc` actor, 1 channel, empty buffer");
    println!("  baseline (runtime + server, no actor): {base}");
    let mut agents: Vec<Agent> = Vec::new();
    for count in IDLE_COUNTS {
        while agents.len() < count {
            let nick = format!("spark-idle{:03}", agents.len());
            agents.push(Agent::start(settings(port, &nick), 16).await?);
        }
        for agent in &agents {
            agent.wait_connected().await?;
        }
        tokio::time::sleep(IDLE).await;
        let now = Memory::now()?;
        println!(
            "  K={count:<4} {now}  per connection: {}",
            now.per_connection(&base, count)
        );
    }
    println!("  (buffers are empty: these are idle connections, no channel traffic)");
    println!("  (includes the in-process server's side: one task and a 1 KiB read buffer each)");
    for agent in agents {
        agent.stop().await;
    }
    server.abort();
    Ok(())
}

/// Resident and proportional set size of this process, in KiB.
struct Memory {
    rss: u64,
    pss: Option<u64>,
}

impl Memory {
    fn now() -> Result<Memory> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let rss = kib_field(&status, "VmRSS:").ok_or("no VmRSS in /proc/self/status")?;
        let pss = std::fs::read_to_string("/proc/self/smaps_rollup")
            .ok()
            .and_then(|rollup| kib_field(&rollup, "Pss:"));
        Ok(Memory { rss, pss })
    }

    /// `(self - base) / count` for RSS and PSS.
    fn per_connection(&self, base: &Memory, count: usize) -> String {
        let per = |now: u64, base: u64| (now as f64 - base as f64) / count as f64;
        let rss = format!("RSS {:.1} KiB", per(self.rss, base.rss));
        match (self.pss, base.pss) {
            (Some(now), Some(base)) => format!("{rss}, PSS {:.1} KiB", per(now, base)),
            _ => rss,
        }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VmRSS {} KiB", self.rss)?;
        match self.pss {
            Some(pss) => write!(f, ", Pss {pss} KiB"),
            None => write!(f, ", Pss n/a"),
        }
    }
}

/// The number in a `Name:   1234 kB` line.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Throughput
// ---------------------------------------------------------------------------------------

/// Runs the blast `RUNS` times against a fresh actor and prints each run and the median.
async fn throughput() -> Result<()> {
    let payload = Arc::new(blast_payload(LINES));
    println!(
        "inbound throughput: {LINES} PRIVMSG lines (~10% mentions), {:.1} MB, then PING :end",
        payload.len() as f64 / 1e6
    );
    let mut rates = Vec::new();
    for run in 1..=RUNS {
        let elapsed = blast_once(Arc::clone(&payload), run).await?;
        let secs = elapsed.as_secs_f64();
        let lines_per_sec = LINES as f64 / secs;
        let mb_per_sec = payload.len() as f64 / 1e6 / secs;
        println!(
            "  run {run}: {:.3} s  {lines_per_sec:>9.0} lines/s  {mb_per_sec:>6.1} MB/s",
            secs
        );
        rates.push((lines_per_sec, mb_per_sec));
    }
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (lines_per_sec, mb_per_sec) = rates[rates.len() / 2];
    println!("  median: {lines_per_sec:>9.0} lines/s  {mb_per_sec:>6.1} MB/s  (MB = 10^6 bytes)");
    Ok(())
}

/// One run: a one-connection server blasts the payload at a fresh actor; the time from the
/// first byte written until `PONG :end` arrives. Checks the buffer afterwards.
async fn blast_once(payload: Arc<Vec<u8>>, run: usize) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server: JoinHandle<Result<Duration>> = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let (mut lines, mut write) = split(stream);
        register(&mut lines, &mut write).await?;
        let started = Instant::now();
        let (written, ponged) = tokio::join!(write.write_all(&payload), wait_for_pong(&mut lines));
        written?;
        ponged?;
        Ok(started.elapsed())
    });
    let settings = settings(port, &format!("spark-bot{run}"));
    let buffer_size = settings.buffer_size;
    let agent = Agent::start(settings, 1024).await?;
    let elapsed = tokio::time::timeout(PATIENCE, server).await???;
    let buffered = agent.read(CHANNEL, buffer_size).await?;
    let newest = buffered.last().map(|m| m.text.as_str()).unwrap_or_default();
    let expected = format!("message number {} ", LINES - 1);
    if buffered.len() != buffer_size || !newest.starts_with(&expected) {
        return Err(format!("buffer holds {} lines, newest {newest:?}", buffered.len()).into());
    }
    agent.stop().await;
    Ok(elapsed)
}

/// The lines one run sends: tagged channel messages, every tenth a mention of `@bot`, then
/// `PING :end`.
fn blast_payload(lines: usize) -> Vec<u8> {
    let mut out = String::with_capacity(lines * 140);
    for i in 0..lines {
        let who = if i % 10 == 0 { "@bot" } else { "@someone-else" };
        out.push_str(&format!(
            "@msgid={i};time=2026-11-21T12:00:00.000Z :spark-ori!o@127.0.0.1 PRIVMSG \
             {CHANNEL} :message number {i} with some text {who}\r\n"
        ));
    }
    out.push_str("PING :end\r\n");
    out.into_bytes()
}

/// Reads client lines until `PONG :end`, answering anything else as an idle server would.
async fn wait_for_pong(lines: &mut Lines<BufReader<OwnedReadHalf>>) -> Result<()> {
    while let Some(line) = lines.next_line().await? {
        if untagged(&line) == "PONG :end" {
            return Ok(());
        }
    }
    Err("the client closed before PONG :end".into())
}

// ---------------------------------------------------------------------------------------
// The actor under measurement
// ---------------------------------------------------------------------------------------

/// The daemon's defaults for `nick` on the loopback server, in one channel.
fn settings(port: u16, nick: &str) -> IrcSettings {
    let mut settings = IrcSettings::new("127.0.0.1", port, "spark", nick);
    settings.channels = vec![CHANNEL.to_owned()];
    settings
}

/// A running `irc` actor. Its event stream has a subscriber that never reads, so every
/// publish stores into the broadcast ring as it would with a live agent attached.
struct Agent {
    actor: ActorRef<IrcMessage>,
    join: JoinHandle<()>,
    _events: broadcast::Receiver<IrcEvent>,
}

impl Agent {
    async fn start(settings: IrcSettings, events: usize) -> Result<Agent> {
        let (tx, rx) = broadcast::channel(events);
        let args = IrcArgs {
            settings,
            events: tx,
            link: Link::default(),
            intake: drained_intake(),
        };
        let (actor, join) = Actor::spawn(None, Irc, args).await?;
        Ok(Agent {
            actor,
            join,
            _events: rx,
        })
    }

    async fn status(&self) -> Result<IrcStatus> {
        Ok(ractor::call!(self.actor, |reply| IrcMessage::Status {
            reply
        })?)
    }

    async fn wait_connected(&self) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = self.status().await?;
            if status.state == "connected" {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("never connected: {status:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn read(&self, key: &str, limit: usize) -> Result<Vec<BufferedMessage>> {
        Ok(ractor::call!(self.actor, |reply| IrcMessage::Read {
            key: key.to_owned(),
            limit,
            reply,
        })?)
    }

    async fn stop(self) {
        self.actor.stop(None);
        let _ = tokio::time::timeout(PATIENCE, self.join).await;
    }
}

/// An intake path whose mentions and DMs are taken and dropped (no runner here).
pub fn drained_intake() -> codexd_actors::irc::IntakePath {
    let (intake, mut queue) =
        codexd_actors::irc::IntakePath::new(codexd_actors::irc::INBOUND_WINDOW);
    tokio::spawn(async move { while queue.recv().await.is_some() {} });
    intake
}
