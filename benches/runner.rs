//! `cargo bench --bench runner`: what an agent costs end to end. The real `codexd run`
//! (this package's release binary) hosts agents whose runner drives the real `codex
//! app-server` (0.169.0 from `scripts/install-peers`), offline against the in-repo fake
//! model (`tests/support/fake_model.rs`), on a real agentirc.
//!
//! | figure              | how                                                               |
//! |---------------------|-------------------------------------------------------------------|
//! | latency, 1 agent    | 50 mentions after 3 warm-up, one at a time to an idle agent: from |
//! |                     | the PRIVMSG written to the reply read; p50/p90/p99/max, mean      |
//! | floor: IRC alone    | the same round trip through agentirc to a client that answers    |
//! | floor: codex alone  | the same codex, thread config and prompt driven by hand:          |
//! |                     | `turn/start` → the `agentMessage` item, → `turn/completed`        |
//! | codexd's share      | per round: latency − codex's agent message (− the IRC round trip) |
//! | daemon memory       | `codexd run` with 1, then 10 agents, idle 2 s after one answered  |
//! |                     | mention each: VmRSS, VmHWM, Pss of the daemon, its codex children |
//! |                     | not included; per agent = (RSS₁₀ − RSS₁) / 9; children summed     |
//!
//! The three latencies are taken in turn within each round (a mention through codexd, an
//! IRC round trip, a turn of codex alone), so load from elsewhere on the machine hits them
//! alike and the differences are paired per round.
//!
//! Every reply is checked: the fake models answer mention N with `answer N` (the memory
//! runs: `ok`), and the agent must relay exactly that, from its nick, to the mention's
//! channel; afterwards the runner must report every turn completed and no restart. Any
//! failure makes the bench exit non-zero, since timing failing turns means nothing; so does
//! a missing peer (no figures). This is a measurement, not a test: nothing here asserts a
//! speed. The latency agent has flood pacing off (`flood_rate: 0`): with the defaults
//! (burst 10, 2 lines/s) replies faster than 2/s would be paced after the tenth, which
//! measures the pacing, not the agent.

#[path = "../tests/support/codex_agent.rs"]
mod codex_agent;
#[path = "support/codex_alone.rs"]
mod codex_alone;
#[path = "../tests/support/codex_peer.rs"]
mod codex_peer;
#[path = "../tests/support/fake_model.rs"]
mod fake_model;
#[path = "support/fleet.rs"]
mod fleet;
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

use std::path::Path;
use std::time::{Duration, Instant};

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use codex_alone::CodexAlone;
use codex_peer::codex_bin;
use codexd_actors::runner::prompt;
use fake_model::Reply;
use fleet::Fleet;
use irc_client::{RawClient, parse_privmsg};
use ircd::Ircd;
use latency::Stats;
use proc_memory::{Children, Memory};
use serde_json::Value;
use support::eventually;
use tokio::task::JoinHandle;

/// Rounds before the timed ones, not measured.
const WARM_UP: usize = 3;
/// Rounds timed.
const MENTIONS: usize = 50;
/// All rounds.
const ROUNDS: usize = WARM_UP + MENTIONS;
/// Agent counts of the memory runs: the difference of the two is the per-agent figure.
const AGENT_COUNTS: [usize; 2] = [1, 10];
/// How long the daemon idles before memory is read.
const IDLE: Duration = Duration::from_secs(2);
/// Who mentions the agent, and where.
const SENDER: &str = "spark-ori";
const CHANNEL: &str = "#general";
/// The bare client that answers in the IRC floor, and its channel (not the agent's).
const ECHO: &str = "spark-echo";
const ECHO_CHANNEL: &str = "#echo";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let codex = codex_bin().ok_or("codex is not installed: no figures")?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "context: {cpus} CPUs (available_parallelism); codexd {}; codex {} ({}); the fake \
         models and the IRC and codex clients on a 2-worker runtime in this process",
        env!("CARGO_BIN_EXE_codexd"),
        codex_peer::CODEX_VERSION,
        codex.display()
    );
    let mut failures = Failures::default();
    runtime.block_on(async {
        println!();
        latency(&codex, &mut failures).await?;
        println!();
        memory(&codex, &mut failures).await
    })?;
    if failures.0.is_empty() {
        return Ok(());
    }
    eprintln!();
    eprintln!("{} failures:", failures.0.len());
    for failure in &failures.0 {
        eprintln!("  {failure}");
    }
    Err(format!("{} failures: the figures are meaningless", failures.0.len()).into())
}

/// What the fake models (and the echo client) answer in round `n` (1-based).
fn answer(n: usize) -> String {
    format!("answer {n}")
}

/// Round `n`'s mention of `nick`.
fn question(nick: &str, n: usize) -> String {
    format!("@{nick} question {n}")
}

/// The fake model's script for `ROUNDS` turns.
fn script() -> Vec<Reply> {
    (1..=ROUNDS).map(|n| Reply::Text(answer(n))).collect()
}

// ---------------------------------------------------------------------------------------
// Latency: through codexd, and the floors
// ---------------------------------------------------------------------------------------

/// The latencies of the timed rounds, in ms.
#[derive(Default)]
struct Samples {
    through_codexd: Vec<f64>,
    irc: Vec<f64>,
    codex_message: Vec<f64>,
    codex_completed: Vec<f64>,
}

/// Starts the agent, the IRC echo and codex alone, runs `ROUNDS` rounds and prints the
/// figures of the last `MENTIONS`.
async fn latency(codex: &Path, failures: &mut Failures) -> Result<()> {
    let extra = Extra {
        server: "  flood_rate: 0\n",
        ..Extra::default()
    };
    let mut agent = CodexAgent::start(Codex::Real(script()), extra)
        .await
        .ok_or("agentirc or codex is not installed: no figures")?;
    let echo = echo(&agent.ircd).await;
    agent.ori.join(ECHO_CHANNEL).await;
    let mut alone = CodexAlone::start(codex, script(), NICK).await?;

    let mut samples = Samples::default();
    for n in 1..=ROUNDS {
        let through_codexd = mention(&mut agent, n, failures).await;
        let irc = round_trip(&mut agent.ori, n, failures).await;
        let (message, completed) = codex_turn(&mut alone, n, failures).await?;
        if n > WARM_UP {
            samples.through_codexd.push(ms(through_codexd));
            samples.irc.push(ms(irc));
            samples.codex_message.push(ms(message));
            samples.codex_completed.push(ms(completed));
        }
    }
    echo.await?;
    print_latency(&mut samples);

    let runner = wait_idle(&agent, ROUNDS as u64);
    check_runner(&runner, ROUNDS as u64, failures);
    let requests = agent.model.as_ref().map_or(0, |m| m.requests().len());
    println!(
        "  afterwards: the agent's runner {} turn(s) completed, {} failed, {} restart(s); its \
         fake model {requests} request(s)",
        runner["detail"]["turns_completed"], runner["detail"]["turns_failed"], runner["restarts"]
    );
    let status = alone.close().await;
    if !status.success() {
        failures.record(format!("codex alone exited with {status}"));
    }
    agent.stop_daemon();
    Ok(())
}

/// Prints the three latencies and codexd's share, whose differences are taken per round
/// before the samples are sorted.
fn print_latency(samples: &mut Samples) {
    println!(
        "mention→reply latency, 1 agent: {MENTIONS} rounds after {WARM_UP} warm-up, each \
         timing in turn the three paths below on an idle agent / server / codex"
    );
    let paired = |minus: &[&Vec<f64>]| -> Vec<f64> {
        (0..samples.through_codexd.len())
            .map(|i| samples.through_codexd[i] - minus.iter().map(|m| m[i]).sum::<f64>())
            .collect()
    };
    let mut share_with_irc = paired(&[&samples.codex_message]);
    let mut share = paired(&[&samples.codex_message, &samples.irc]);
    println!(
        "  through codexd ({SENDER} → {CHANNEL} → codexd → codex → fake model → codexd → \
         {CHANNEL} → {SENDER}):"
    );
    println!("    {}", Stats::of(&mut samples.through_codexd));
    println!(
        "  floor, IRC alone ({SENDER} → {ECHO_CHANNEL} → {ECHO}, a bare client in this \
         process that answers at once → {ECHO_CHANNEL} → {SENDER}, same agentirc):"
    );
    println!("    {}", Stats::of(&mut samples.irc));
    println!(
        "  floor, codex alone (its own codex and fake model, codexd's thread config and \
         prompt, driven by hand; no codexd, no IRC):"
    );
    println!(
        "    to the agent message: {}",
        Stats::of(&mut samples.codex_message)
    );
    println!(
        "    to turn/completed:    {}",
        Stats::of(&mut samples.codex_completed)
    );
    println!("  codexd's share, paired per round:");
    println!(
        "    codexd + IRC (through codexd − codex's agent message): {}",
        Stats::of(&mut share_with_irc)
    );
    println!(
        "    codexd alone (− the IRC round trip as well):          {}",
        Stats::of(&mut share)
    );
}

/// Round `n` through codexd: mentions the agent and reads its reply, then waits (untimed)
/// until the turn has ended, so the next mention meets an idle agent (a reply is relayed
/// when its agent message completes, a little before its turn does).
async fn mention(agent: &mut CodexAgent, n: usize, failures: &mut Failures) -> Duration {
    let sent = Instant::now();
    agent.say(CHANNEL, &question(NICK, n)).await;
    let reply = agent.reply(CHANNEL, "").await;
    let elapsed = sent.elapsed();
    if reply != answer(n) {
        failures.record(format!("mention {n}: the reply was {reply:?}"));
    }
    wait_idle(agent, n as u64);
    elapsed
}

/// Waits until the runner is idle with `turns` turns ended; its status.
fn wait_idle(agent: &CodexAgent, turns: u64) -> Value {
    eventually("the runner idle after the turn", || {
        let runner = agent.runner()?;
        let detail = &runner["detail"];
        (detail["phase"] == "idle" && detail["turns_completed"] == turns).then_some(runner)
    })
}

/// A runner status with `turns` turns completed, none failed, nothing pending and no
/// restart; anything else is a failure.
fn check_runner(runner: &Value, turns: u64, failures: &mut Failures) {
    let detail = &runner["detail"];
    let good = detail["turns_completed"] == turns
        && detail["turns_failed"] == 0
        && detail["pending"] == 0
        && runner["restarts"] == 0;
    if !good {
        failures.record(format!("runner status after {turns} turns: {runner}"));
    }
}

/// `spark-echo` in `#echo` on `ircd`, answering `ROUNDS` mentions from `spark-ori`, mention
/// N with `answer N`, as soon as it reads each.
async fn echo(ircd: &Ircd) -> JoinHandle<()> {
    let mut echo = RawClient::connect(ircd.host(), ircd.port(), ECHO, &["message-tags"]).await;
    echo.join(ECHO_CHANNEL).await;
    tokio::spawn(async move {
        for n in 1..=ROUNDS {
            let what = format!("mention {n} from {SENDER}");
            echo.expect(&what, |line| privmsg_from(line, SENDER)).await;
            let answer = format!("PRIVMSG {ECHO_CHANNEL} :{}", answer(n));
            echo.send(&answer).await;
        }
    })
}

/// Round `n` of the IRC floor: mentions `spark-echo` and reads its answer.
async fn round_trip(ori: &mut RawClient, n: usize, failures: &mut Failures) -> Duration {
    let sent = Instant::now();
    let mention = format!("PRIVMSG {ECHO_CHANNEL} :{}", question(ECHO, n));
    ori.send(&mention).await;
    let what = format!("{ECHO}'s answer {n}");
    let line = ori.expect(&what, |line| privmsg_from(line, ECHO)).await;
    let elapsed = sent.elapsed();
    let text = parse_privmsg(&line).map(|(_, _, _, text)| text);
    if text != Some(answer(n)) {
        failures.record(format!("IRC round {n}: the answer was {line:?}"));
    }
    elapsed
}

/// Round `n` of the codex floor, with codexd's mention prompt: the time to the agent
/// message (when codexd relays it) and to `turn/completed`.
async fn codex_turn(
    alone: &mut CodexAlone,
    n: usize,
    failures: &mut Failures,
) -> Result<(Duration, Duration)> {
    let turn = alone
        .turn(&prompt::mention(CHANNEL, SENDER, &question(NICK, n)))
        .await?;
    if turn.text != answer(n) || turn.status != "completed" {
        failures.record(format!(
            "codex alone, turn {n}: message {:?}, status {:?}",
            turn.text, turn.status
        ));
    }
    Ok((turn.to_message, turn.to_completed))
}

/// Is `line` a PRIVMSG from `nick` to `#echo`?
fn privmsg_from(line: &str, nick: &str) -> bool {
    parse_privmsg(line)
        .is_some_and(|(_, sender, target, _)| sender == nick && target == ECHO_CHANNEL)
}

// ---------------------------------------------------------------------------------------
// Daemon memory
// ---------------------------------------------------------------------------------------

/// Memory of `codexd run` with each of `AGENT_COUNTS` agents, and the difference per agent.
async fn memory(codex: &Path, failures: &mut Failures) -> Result<()> {
    println!(
        "daemon memory: `codexd run` with N agents (real codex each, own CODEX_HOME, one fake \
         model, one agentirc, all in {CHANNEL}), read after every runner is idle, each agent \
         answered one mention, and {IDLE:?} idle"
    );
    let mut daemons = Vec::new();
    for count in AGENT_COUNTS {
        let (daemon, children) = measure_fleet(codex, count, failures).await?;
        println!(
            "  N={count:<2} daemon: {daemon}; codex children: {} process(es), {children}",
            children.pids.len()
        );
        daemons.push((count, daemon));
    }
    let [(few, small), (many, large)] = daemons[..] else {
        return Ok(());
    };
    let agents = (many - few) as f64;
    let per = |large: u64, small: u64| (large as f64 - small as f64) / agents;
    let rss = per(large.rss, small.rss);
    let pss = per(large.pss, small.pss);
    println!(
        "  per agent, (N={many} − N={few}) / {agents}: VmRSS {rss:.0} KiB ({:.2} MiB), Pss \
         {pss:.0} KiB ({:.2} MiB); the codex child not included",
        rss / 1024.0,
        pss / 1024.0
    );
    Ok(())
}

/// Starts a fleet of `count` agents, has each answer one mention, idles, and reads the
/// daemon's memory and its children's.
async fn measure_fleet(
    codex: &Path,
    count: usize,
    failures: &mut Failures,
) -> Result<(Memory, Children)> {
    let mut fleet = Fleet::start(codex, count)
        .await
        .ok_or("agentirc is not installed: no figures")?;
    for nick in fleet.nicks.clone() {
        let reply = fleet.ask(&nick, "hello").await;
        if reply != "ok" {
            failures.record(format!("{nick} (N={count}) answered {reply:?}"));
        }
    }
    let runners = fleet.wait_settled(1);
    for runner in &runners {
        check_runner(runner, 1, failures);
    }
    tokio::time::sleep(IDLE).await;
    let pid = fleet.daemon.pid();
    let daemon = Memory::of(pid)?;
    let children = Children::of(pid)?;
    for runner in &runners {
        let codex_pid = runner["detail"]["pid"].as_u64();
        let own = |pid: u64| children.pids.iter().any(|&child| u64::from(child) == pid);
        if !codex_pid.is_some_and(own) {
            failures.record(format!(
                "N={count}: the runner's codex pid {codex_pid:?} is not a child of the daemon"
            ));
        }
    }
    let exit = fleet.stop();
    if !exit.success() {
        failures.record(format!("N={count}: codexd exited with {exit}"));
    }
    Ok((daemon, children))
}

// ---------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------

/// Failed checks, in order.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn record(&mut self, failure: String) {
        eprintln!("FAILED: {failure}");
        self.0.push(failure);
    }
}

/// A duration in milliseconds.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
