//! `cargo bench --bench conversations`: what conversations buy in latency. The real `codexd
//! run` (this package's release binary) hosts one agent whose runner drives the real `codex
//! app-server` offline against the in-repo fake model, on a real agentirc
//! (`tests/support/codex_agent.rs`; peers from `scripts/install-peers`, or
//! `CODEXD_PEERS=<dir>`). Each setting is a fresh daemon with admission's per-sender rate off
//! (`spark-ori` sends every mention).
//!
//! **Part 1, a follow-up while the answer streams**, `conversations: {steer: true}` then
//! `{steer: false}`, in `#general` with the default flood control (at most two replies a
//! round of more than 2 s: the bucket never runs dry):
//!
//! | step      | what                                                                      |
//! |-----------|---------------------------------------------------------------------------|
//! | warm-up   | one mention, untimed (the channel's thread is started)                    |
//! | round N   | `@spark-codex task N: …`, answered by the model slowly: 10 words, 200 ms  |
//! |           | before each delta and before completion (the text whole after 2.0 s, the  |
//! |           | response completed after 2.2 s); 300 ms after that request reached the    |
//! |           | model (a fixed offset of the workload), `@spark-codex follow-up N: use    |
//! |           | staging`, answered at once with `done N`; timed from the follow-up's      |
//! |           | PRIVMSG written to `done N` read; then the runner idle, nothing pending   |
//! | checked   | every reply's text and channel; steering: the slow answer never posted,   |
//! |           | one turn a round, one steer a round; without: the slow answer posted      |
//! |           | before `done N`, two turns a round                                        |
//!
//! **Part 2, mentions in four channels at once**, `conversations: {max_turns: 1}`, `2`, then
//! the default (4), in `#c1`..`#c4` with flood control off (`flood_rate: 0`: four replies a round
//! would otherwise be paced by the bucket, burst 10 at 2 lines/s, and the figure would
//! measure the pacing instead of the turns running at once):
//!
//! | step      | what                                                                      |
//! |-----------|---------------------------------------------------------------------------|
//! | warm-up   | one mention per channel, untimed (four threads are started)               |
//! | round     | one mention in each channel, back to back; the model answers each with a  |
//! |           | text of its own, 5 words, 100 ms before each delta and before completion  |
//! |           | (the text whole after 0.5 s, the response completed after 0.6 s); each    |
//! |           | timed from its PRIVMSG written to its reply read; then the runner idle    |
//! |           | with nothing pending                                                      |
//! | checked   | every reply's text and channel, every turn completed                      |
//!
//! Rounds: `CONVERSATIONS_ROUNDS` (default 10) in each setting. Printed: n, p50, p90, p99,
//! max (nearest rank) and mean per setting. Each setting ends with a last mention whose
//! reply must be the next line the agent says (nothing else was posted late), and the
//! runner's status must show the expected turns, none failed, and no restart. A failure makes
//! the bench exit non-zero, and so does a missing peer (no figures). Nothing here asserts a
//! speed.

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
use fake_model::{FakeModel, Reply, last_user_text};
use irc_client::parse_privmsg;
use latency::Stats;
use support::eventually;

/// Part 1's channel.
const GENERAL: &str = "#general";
/// Part 1: the slow answer's pace (10 words: the text whole after 2.0 s, completed after 2.2 s).
const SLOW_WORD: Duration = Duration::from_millis(200);
/// Part 1: the follow-up is sent this long after the task's request reached the model.
const FOLLOW_UP_AFTER: Duration = Duration::from_millis(300);
/// Part 2's channels.
const CHANNELS: [&str; 4] = ["#c1", "#c2", "#c3", "#c4"];
/// Part 2: each answer's pace (5 words: the text whole after 0.5 s, completed after 0.6 s).
const ANSWER_WORD: Duration = Duration::from_millis(100);

type Result<T> = std::result::Result<T, latency::BenchError>;

fn main() -> Result<()> {
    latency::main_rounds("CONVERSATIONS_ROUNDS", 10, run)
}

async fn run(rounds: usize) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    println!(
        "follow-up→answer while a slow answer streams ({:.1} s to its text, {:.1} s to \
         completion; follow-up {} ms after its request reached the model), {rounds} round(s) \
         each:",
        SLOW_WORD.as_secs_f64() * 10.0,
        SLOW_WORD.as_secs_f64() * 11.0,
        FOLLOW_UP_AFTER.as_millis()
    );
    for steer in [true, false] {
        let mut samples = follow_ups(steer, rounds, &mut failures).await?;
        println!("  steer: {steer:<5}  {}", Stats::of(&mut samples));
    }
    println!(
        "mention→reply, one mention in each of {} channels at once, each answer {:.1} s to \
         its text and {:.1} s to completion, flood control off, {rounds} round(s) each:",
        CHANNELS.len(),
        ANSWER_WORD.as_secs_f64() * 5.0,
        ANSWER_WORD.as_secs_f64() * 6.0
    );
    for max_turns in [Some(1), Some(2), None] {
        let mut samples = channels(max_turns, rounds, &mut failures).await?;
        let setting = max_turns.map_or("default (4)".to_owned(), |n| n.to_string());
        println!("  max_turns: {setting:<11}  {}", Stats::of(&mut samples));
    }
    Ok(failures)
}

/// The slow answer to task `n`: 10 words.
fn slow_answer(n: usize) -> String {
    format!("slow answer {n}: the release notes are on their way")
}

/// The answer to follow-up `n`.
fn done(n: usize) -> String {
    format!("done {n}")
}

/// Part 1 in one setting: the latency of each follow-up, in ms.
async fn follow_ups(steer: bool, rounds: usize, failures: &mut Vec<String>) -> Result<Vec<f64>> {
    let top = format!("admission: {{per_sender: 0}}\nconversations: {{steer: {steer}}}\n");
    let extra = Extra {
        top: &top,
        ..Extra::default()
    };
    let (mut agent, model) = start(extra).await?;
    let setting = format!("steer: {steer}");
    warm_up(&mut agent, &model, &[GENERAL], &setting, failures).await;
    let mut samples = Vec::new();
    for n in 1..=rounds {
        model.when(
            &format!("task {n}:"),
            Reply::Slow {
                text: slow_answer(n),
                delay: SLOW_WORD,
            },
        );
        model.when(&format!("follow-up {n}:"), Reply::Text(done(n)));
        let before = model.requests().len();
        let task = format!("@{NICK} task {n}: write the release notes");
        agent.say(GENERAL, &task).await;
        model.wait_requests(before + 1).await;
        tokio::time::sleep_until(responses_at(&model, before) + FOLLOW_UP_AFTER).await;
        let sent = Instant::now();
        let follow_up = format!("@{NICK} follow-up {n}: use staging");
        agent.say(GENERAL, &follow_up).await;
        let mut slow_posted = false;
        loop {
            let (to, text) = next_reply(&mut agent).await;
            if to == GENERAL && text == done(n) {
                samples.push(sent.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if to == GENERAL && text == slow_answer(n) && !slow_posted {
                slow_posted = true;
                continue;
            }
            failures.push(format!("{setting}, round {n}: unexpected {text:?} to {to}"));
        }
        match (steer, slow_posted) {
            (true, true) => failures.push(format!(
                "{setting}, round {n}: the slow answer was posted although the follow-up was \
                 steered in"
            )),
            (false, false) => failures.push(format!(
                "{setting}, round {n}: `done {n}` came without the slow answer before it"
            )),
            _ => {}
        }
        let steered_in = model
            .requests()
            .iter()
            .filter(|request| last_user_text(request).is_some_and(|t| t.contains(&follow_up)))
            .count();
        if steered_in != 1 {
            failures.push(format!(
                "{setting}, round {n}: {steered_in} model requests end with the follow-up"
            ));
        }
        wait_idle(&agent);
    }
    last_mention(&mut agent, &model, GENERAL, &setting, failures).await;
    let turns_per_round = if steer { 1 } else { 2 };
    let turns = 2 + rounds * turns_per_round;
    check_status(&agent, turns as u64, &setting, failures);
    let steers = agent
        .log()
        .matches("a follow-up is steered into the running turn")
        .count();
    let expected_steers = if steer { rounds } else { 0 };
    if steers != expected_steers {
        failures.push(format!(
            "{setting}: {steers} follow-ups steered in, expected {expected_steers}"
        ));
    }
    agent.stop_daemon();
    Ok(samples)
}

/// Part 2 in one setting (`None`: the default `max_turns`): the latency of each mention,
/// in ms.
async fn channels(
    max_turns: Option<usize>,
    rounds: usize,
    failures: &mut Vec<String>,
) -> Result<Vec<f64>> {
    let mut top = "admission: {per_sender: 0}\n".to_owned();
    if let Some(n) = max_turns {
        top.push_str(&format!("conversations: {{max_turns: {n}}}\n"));
    }
    let extra = Extra {
        top: &top,
        server: "  flood_rate: 0\n",
        channels: &CHANNELS,
        ..Extra::default()
    };
    let (mut agent, model) = start(extra).await?;
    let setting = format!(
        "max_turns: {}",
        max_turns.map_or("default".into(), |n| n.to_string())
    );
    warm_up(&mut agent, &model, &CHANNELS, &setting, failures).await;
    let mut samples = Vec::new();
    let mut n = 0;
    for round in 1..=rounds {
        let mut waiting = Vec::new();
        for channel in CHANNELS {
            n += 1;
            let answer = format!("answer q{n} for {channel} ready");
            let reply = Reply::Slow {
                text: answer.clone(),
                delay: ANSWER_WORD,
            };
            model.when(&format!("question q{n};"), reply);
            waiting.push((channel, answer, Instant::now()));
            let mention = format!("@{NICK} question q{n}; how is it going?");
            agent.say(channel, &mention).await;
        }
        while !waiting.is_empty() {
            let (to, text) = next_reply(&mut agent).await;
            let Some(index) = waiting.iter().position(|(_, answer, _)| *answer == text) else {
                failures.push(format!(
                    "{setting}, round {round}: unexpected {text:?} to {to}"
                ));
                continue;
            };
            let (channel, _, sent) = waiting.swap_remove(index);
            samples.push(sent.elapsed().as_secs_f64() * 1e3);
            if to != channel {
                failures.push(format!(
                    "{setting}, round {round}: {text:?} went to {to}, not {channel}"
                ));
            }
        }
        wait_idle(&agent);
    }
    last_mention(&mut agent, &model, CHANNELS[0], &setting, failures).await;
    let turns = CHANNELS.len() * (rounds + 1) + 1;
    check_status(&agent, turns as u64, &setting, failures);
    agent.stop_daemon();
    Ok(samples)
}

/// A fresh daemon and its fake model (taken out of the agent, so rules can be added while
/// `spark-ori` talks).
async fn start(extra: Extra<'_>) -> Result<(CodexAgent, FakeModel)> {
    let mut agent = CodexAgent::start(Codex::Real(Vec::new()), extra)
        .await
        .ok_or("agentirc or codex is not installed: no figures")?;
    let model = agent.model.take().ok_or("no fake model")?;
    Ok((agent, model))
}

/// One untimed mention in each of `channels` at once, each answered; then the runner idle.
async fn warm_up(
    agent: &mut CodexAgent,
    model: &FakeModel,
    channels: &[&str],
    setting: &str,
    failures: &mut Vec<String>,
) {
    let mut waiting = Vec::new();
    for channel in channels {
        let answer = format!("warm in {channel}");
        model.when(&format!("warm up {channel};"), Reply::Text(answer.clone()));
        agent
            .say(channel, &format!("@{NICK} warm up {channel}; hello"))
            .await;
        waiting.push((channel.to_string(), answer));
    }
    while !waiting.is_empty() {
        let (to, text) = next_reply(agent).await;
        match waiting.iter().position(|(c, a)| *c == to && *a == text) {
            Some(index) => {
                waiting.swap_remove(index);
            }
            None => failures.push(format!("{setting}, warm-up: unexpected {text:?} to {to}")),
        }
    }
    wait_idle(agent);
}

/// A last mention in `channel`, whose answer must be the next thing the agent says: nothing
/// from the rounds was posted late (an abandoned answer, a second `done`).
async fn last_mention(
    agent: &mut CodexAgent,
    model: &FakeModel,
    channel: &str,
    setting: &str,
    failures: &mut Vec<String>,
) {
    model.when("last words;", Reply::text("goodbye"));
    agent
        .say(channel, &format!("@{NICK} last words; thanks"))
        .await;
    loop {
        let (to, text) = next_reply(agent).await;
        if to == channel && text == "goodbye" {
            break;
        }
        failures.push(format!(
            "{setting}, at the end: unexpected {text:?} to {to}"
        ));
    }
    wait_idle(agent);
}

/// The next PRIVMSG the agent sends: (target, text).
async fn next_reply(agent: &mut CodexAgent) -> (String, String) {
    let line = agent
        .ori
        .expect("a PRIVMSG from the agent", |line| {
            parse_privmsg(line).is_some_and(|(_, from, _, _)| from == NICK)
        })
        .await;
    let (_, _, to, text) = parse_privmsg(&line).unwrap_or_default();
    (to, text)
}

/// When the model request number `index` (0-based, `POST …/responses` only) was read.
fn responses_at(model: &FakeModel, index: usize) -> tokio::time::Instant {
    model
        .received()
        .iter()
        .filter(|request| request.method == "POST" && request.path.ends_with("/responses"))
        .nth(index)
        .map_or_else(tokio::time::Instant::now, |request| request.at)
}

/// Waits until the runner is idle with nothing pending.
fn wait_idle(agent: &CodexAgent) {
    eventually("the runner idle with nothing pending", || {
        let runner = agent.runner()?;
        let detail = &runner["detail"];
        (detail["phase"] == "idle" && detail["pending"] == 0).then_some(())
    });
}

/// The runner completed `turns` turns, none failed or timed out, and never restarted.
fn check_status(agent: &CodexAgent, turns: u64, setting: &str, failures: &mut Vec<String>) {
    let Some(runner) = agent.runner() else {
        failures.push(format!("{setting}: no runner status"));
        return;
    };
    let detail = &runner["detail"];
    let good = detail["turns_completed"] == turns
        && detail["turns_failed"] == 0
        && detail["turns_timed_out"] == 0
        && detail["pending"] == 0
        && runner["restarts"] == 0;
    if !good {
        failures.push(format!(
            "{setting}: runner status after {turns} turns: {}",
            detail["summary"]
        ));
        failures.push(format!("{setting}: {runner}"));
    }
}
