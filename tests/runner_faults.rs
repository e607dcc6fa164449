//! The runner against a scripted fake app-server (`tests/support/fake_app_server.py`) for
//! what the real codex will not do on demand: garbage lines, a 10 MiB line, server
//! requests it does not know, a crash mid-turn, a turn that never ends, an interrupt that
//! is never answered, a crash at start-up. Through `codexd run` on a real agentirc.

#[path = "support/codex_agent.rs"]
mod codex_agent;
#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use serde_json::Value;
use support::eventually;

fn events<'a>(log: &'a [Value], event: &str) -> Vec<&'a Value> {
    log.iter().filter(|e| e["event"] == event).collect()
}

/// True while `pid` exists, zombie included (a zombie would mean codexd never reaped it).
fn process_exists(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_a_10_mib_line_and_unknown_requests_are_survived() {
    let modes = "garbage,big_line:10485760,server_request,foreign_tool_call";
    // A process of its own: the test checks its environment and the runner's own logging.
    let extra = Extra {
        top: "codex: {agents_per_process: 1}\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Fake(modes), extra).await else {
        return;
    };
    agent
        .say("#general", &format!("@{NICK} survive this"))
        .await;
    agent.reply("#general", "fake reply to:").await;
    let log = agent.fake_log();
    let answers = events(&log, "answer");
    let unknown = answers
        .iter()
        .find(|a| a["id"] == 900)
        .expect("answer to 900");
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    let approval = answers
        .iter()
        .find(|a| a["id"] == 901)
        .expect("answer to 901");
    assert_eq!(
        approval["result"]["decision"], "decline",
        "default policy: {approval}"
    );
    let foreign = answers
        .iter()
        .find(|a| a["id"] == 1900)
        .expect("answer to the tool call of a thread no agent has");
    assert_eq!(foreign["result"]["success"], false, "{foreign}");
    let text = foreign["result"]["contentItems"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("this thread's agent is gone"), "{foreign}");
    let runner = agent.runner().expect("status");
    assert_eq!(runner["restarts"], 0, "nothing restarted: {runner}");
    let logged = agent.log();
    assert!(
        logged.contains("not a message; skipped"),
        "garbage is logged"
    );
    assert!(logged.contains("codex asked; answered"));
    // The process is the `codex` service's, in `<state_dir>/codex-pool` with its XDG dirs
    // there; the agent's cwd and CULTURE_NICK are its thread's.
    let start = &events(&log, "start")[0];
    let pool = agent.scratch.path("state/codex-pool");
    let pool = pool.to_str().expect("utf-8");
    assert_eq!(start["cwd"], pool, "{start}");
    assert!(
        start["env"]["XDG_DATA_HOME"]
            .as_str()
            .is_some_and(|p| p.starts_with(pool)),
        "the service's XDG dirs: {start}"
    );
    let thread_start = events(&log, "recv")
        .into_iter()
        .find(|r| r["line"]["method"] == "thread/start")
        .expect("thread/start was sent");
    let params = &thread_start["line"]["params"];
    assert_eq!(
        params["cwd"],
        agent.workdir.display().to_string(),
        "cwd = directory: {params}"
    );
    assert_eq!(
        params["config"]["shell_environment_policy"]["set"]["CULTURE_NICK"], NICK,
        "{params}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_turn_is_replayed_after_the_restart_and_the_dead_child_reaped() {
    let Some(mut agent) = CodexAgent::start(Codex::Fake("crash_once"), Extra::default()).await
    else {
        return;
    };
    agent
        .say("#general", &format!("@{NICK} do not lose me"))
        .await;
    agent.reply("#general", "do not lose me").await;
    let log = agent.fake_log();
    let starts = events(&log, "start");
    assert_eq!(starts.len(), 2, "one crash, one restart: {log:?}");
    let turns = events(&log, "turn");
    assert_eq!(turns.len(), 2, "the turn ran again: {turns:?}");
    assert_eq!(turns[0]["threadId"], turns[1]["threadId"], "same thread");
    let resumed = events(&log, "thread/resume");
    assert_eq!(resumed.len(), 1, "{log:?}");
    let first = starts[0]["pid"].as_u64().expect("pid");
    eventually("the crashed codex is reaped", || {
        (!process_exists(first)).then_some(())
    });
    let runner = eventually("the journal is empty", || {
        let runner = agent.runner()?;
        (runner["detail"]["pending"] == 0).then_some(runner)
    });
    assert_eq!(
        runner["restarts"], 0,
        "codex died, not the runner: {runner}"
    );
    let process = agent.codex_process().expect("the codex service");
    assert_eq!(
        process["restarts"], 1,
        "the process was restarted: {process}"
    );
}

/// An agent with a 1 s turn timeout on a fake app-server in `modes`, whose mention `text`
/// has just been answered with the Sorry line.
async fn timed_out_turn(modes: &'static str, text: &str) -> Option<CodexAgent> {
    let extra = Extra {
        agent: "    turn_timeout_seconds: 1\n",
        ..Extra::default()
    };
    let mut agent = CodexAgent::start(Codex::Fake(modes), extra).await?;
    agent.say("#general", &format!("@{NICK} {text}")).await;
    agent
        .reply("#general", "Sorry, I encountered an error")
        .await;
    Some(agent)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_past_its_timeout_is_interrupted_and_answered_with_sorry() {
    let Some(agent) = timed_out_turn("hang", "take forever").await else {
        return;
    };
    let log = agent.fake_log();
    let interrupts = events(&log, "interrupt");
    assert_eq!(interrupts.len(), 1, "{log:?}");
    assert_eq!(interrupts[0]["honoured"], true);
    let runner = agent.runner().expect("status");
    assert_eq!(
        runner["restarts"], 0,
        "an answered interrupt needs no restart"
    );
    assert_eq!(runner["detail"]["turns_timed_out"], 1, "{runner}");
    eventually("the entry is done, not replayed", || {
        (agent.runner()?["detail"]["pending"] == 0).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_interrupt_restarts_codex_without_replaying_the_turn() {
    let Some(agent) = timed_out_turn("hang,ignore_interrupt", "wedge yourself").await else {
        return;
    };
    eventually("codex restarted", || {
        let log = agent.fake_log();
        (events(&log, "start").len() == 2 && agent.runner()?["detail"]["phase"] == "idle")
            .then_some(())
    });
    let log = agent.fake_log();
    assert_eq!(events(&log, "turn").len(), 1, "not replayed: {log:?}");
    let first = events(&log, "start")[0]["pid"].as_u64().expect("pid");
    eventually("the wedged codex is stopped and reaped", || {
        (!process_exists(first)).then_some(())
    });
}

/// A stopped codex of its own (SIGSTOP) never answers the `thread/start` of the
/// mention's conversation: after
/// `codex.request_timeout` the runner has it killed (and it is reaped), and the mention is
/// replayed on the next codex the `codex` service starts.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_codex_is_replaced_and_the_mention_replayed() {
    let extra = Extra {
        top: "codex: {agents_per_process: 1}\n",
        codex: "      request_timeout: 3s\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Fake(""), extra).await else {
        return;
    };
    let stopped = agent.runner().expect("status")["detail"]["pid"]
        .as_u64()
        .expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-STOP", &stopped.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -STOP {stopped}");
    agent
        .say("#general", &format!("@{NICK} wake up, codex"))
        .await;
    agent.reply("#general", "wake up, codex").await;
    let log = agent.fake_log();
    let starts = events(&log, "start");
    assert_eq!(starts.len(), 2, "one restart: {log:?}");
    let turns = events(&log, "turn");
    assert_eq!(
        turns.len(),
        1,
        "only the new codex read the turn: {turns:?}"
    );
    // The conversation's thread is opened for its first turn: the stopped codex never read
    // the `thread/start`; the new one starts the thread.
    assert_eq!(events(&log, "thread/start").len(), 1, "{log:?}");
    eventually("the stopped codex is killed and reaped", || {
        (!process_exists(stopped)).then_some(())
    });
    let runner = eventually("the journal is empty", || {
        let runner = agent.runner()?;
        (runner["detail"]["pending"] == 0).then_some(runner)
    });
    assert_eq!(runner["restarts"], 0, "{runner}");
    let process = agent.codex_process().expect("the codex service");
    assert_eq!(process["restarts"], 1, "{process}");
    assert!(
        agent
            .log()
            .contains("codex did not answer thread/start within 3s")
    );
}

/// A codex stopped in the middle of a turn (`turn/start` answered, nothing outstanding)
/// sends nothing more; the runner's liveness probe goes unanswered, so codex is replaced
/// and the mention replayed long before the 10-minute turn timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_codex_stopped_mid_turn_is_found_by_the_probe_and_the_mention_replayed() {
    let extra = Extra {
        codex: "      request_timeout: 2s\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Fake("slow:5000"), extra).await else {
        return;
    };
    agent
        .say("#general", &format!("@{NICK} think slowly"))
        .await;
    let (stopped, starts) = eventually("the turn is running", || {
        let log = agent.fake_log();
        let pid = events(&log, "turn").first()?["pid"].as_u64()?;
        Some((pid, events(&log, "start").len()))
    });
    let status = std::process::Command::new("kill")
        .args(["-STOP", &stopped.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -STOP {stopped}");
    agent.reply("#general", "think slowly").await;
    let log = agent.fake_log();
    assert_eq!(
        events(&log, "start").len(),
        starts + 1,
        "one more codex: {log:?}"
    );
    let turns = events(&log, "turn");
    assert_eq!(turns.len(), 2, "the turn ran again: {turns:?}");
    assert_eq!(turns[0]["threadId"], turns[1]["threadId"], "same thread");
    eventually("the stopped codex is killed and reaped", || {
        (!process_exists(stopped)).then_some(())
    });
    assert!(
        agent
            .log()
            .contains("codex did not answer thread/loaded/list within 2s"),
        "the probe found it"
    );
}

/// A mention that wedges codex every time (its `turn/start` is never answered;
/// `tests/support/wedge_proxy.py` swallows it) is given up after two attempts, as one codex
/// dies during is: Culture's Sorry line, no open circuit, and the next mention is answered.
#[tokio::test(flavor = "multi_thread")]
async fn a_mention_that_wedges_codex_every_time_is_given_up_after_two_attempts() {
    let extra = Extra {
        top: "codex: {agents_per_process: 1, request_timeout: 3s}\n",
        fake_binary: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/wedge_proxy.py"),
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Fake(""), extra).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} wedge-me")).await;
    agent
        .reply("#general", "Sorry, I encountered an error")
        .await;
    let log = agent.fake_log();
    assert_eq!(events(&log, "wedged").len(), 2, "two attempts: {log:?}");
    assert!(events(&log, "turn").is_empty(), "no turn ran: {log:?}");
    let runner = eventually("the runner is up again, the journal empty", || {
        let runner = agent.runner()?;
        (runner["detail"]["phase"] == "idle" && runner["detail"]["pending"] == 0).then_some(runner)
    });
    assert_eq!(runner["restarts"], 0, "{runner}");
    let process = agent.codex_process().expect("the codex service");
    assert_eq!(
        (&process["restarts"], &process["circuit"]),
        (&Value::from(2), &Value::from("closed")),
        "{process}"
    );
    assert!(agent.log().contains("giving up on a mention"));
    agent.say("#general", &format!("@{NICK} and now?")).await;
    agent.reply("#general", "fake reply to:").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loop_opens_the_circuit_and_keeps_the_mention() {
    let Some(mut agent) = CodexAgent::launch(Codex::Fake("crash_at_start"), Extra::default()).await
    else {
        return;
    };
    agent
        .say("#general", &format!("@{NICK} are you alive?"))
        .await;
    let process = eventually("the codex process's circuit opens", || {
        agent.codex_process().filter(|p| p["circuit"] == "open")
    });
    assert!(
        process["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("exited with code 4")),
        "the exit is in status: {process}"
    );
    let runner = agent.runner().expect("status");
    assert_waits(&runner, "exited with code 4");
    // Culture's skill client sees the crash loop as it did with Culture's daemon.
    let answer = agent
        .ipc(serde_json::json!({"type": "status", "id": "1"}))
        .expect("ipc answer");
    assert_eq!(answer["data"]["circuit_open"], true, "{answer}");
    assert_eq!(answer["data"]["running"], false, "{answer}");
    let journal = agent.scratch.path(&format!("state/{NICK}/journal"));
    eventually("the mention is journaled, not lost", || {
        (std::fs::read_dir(&journal).ok()?.count() == 1).then_some(())
    });
    for start in events(&agent.fake_log(), "start") {
        let pid = start["pid"].as_u64().expect("pid");
        eventually("every crashed codex is reaped", || {
            (!process_exists(pid)).then_some(())
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_do_not_end_a_turn_and_every_message_is_relayed() {
    let modes = "retry_error,multi_message";
    let Some(mut agent) = CodexAgent::start(Codex::Fake(modes), Extra::default()).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} talk twice")).await;
    agent.reply("#general", "first part").await;
    agent.reply("#general", "fake reply to:").await;
    let runner = eventually("the turn ended", || {
        let runner = agent.runner()?;
        (runner["detail"]["turns_completed"] == 1).then_some(runner)
    });
    assert_eq!(runner["detail"]["consecutive_failures"], 0, "{runner}");
}

/// The fake itself: its own unittest suite (handshake, turn order, every mode).
#[test]
fn the_fake_app_server_passes_its_selftest() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/fake_app_server_selftest.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Culture's IPC verbs that reach the runner: `status` with `query` (a turn whose answer
/// is not posted), `compact` (codex's native compaction), `clear` (a new thread), and
/// `pause`/`resume` (mentions wait in the journal meanwhile).
#[tokio::test(flavor = "multi_thread")]
async fn ipc_status_query_compact_clear_and_pause_reach_the_runner() {
    let Some(mut agent) = CodexAgent::start(Codex::Fake(""), Extra::default()).await else {
        return;
    };
    let ask = |agent: &CodexAgent, request: Value| {
        let answer = agent.ipc(request.clone()).expect("ipc answer");
        assert_eq!(answer["ok"], true, "{request} → {answer}");
        answer
    };
    let status = ask(
        &agent,
        serde_json::json!({"type": "status", "id": "1", "query": true}),
    );
    let description = status["data"]["description"].as_str().expect("description");
    assert!(
        description.starts_with("fake reply to: [SYSTEM] Briefly describe"),
        "{status}"
    );
    assert_eq!(status["data"]["running"], true, "{status}");

    ask(&agent, serde_json::json!({"type": "compact", "id": "2"}));
    eventually("codex compacts the thread", || {
        (!events(&agent.fake_log(), "compact").is_empty()).then_some(())
    });
    let before = agent.runner().expect("status")["detail"]["thread_id"].clone();
    assert!(before.is_string(), "the query ran on #general's thread");
    ask(&agent, serde_json::json!({"type": "clear", "id": "3"}));
    eventually(
        "the thread forgotten: the next turn starts a new one",
        || {
            agent.runner()?["detail"]["thread_id"]
                .is_null()
                .then_some(())
        },
    );

    ask(&agent, serde_json::json!({"type": "pause", "id": "4"}));
    agent.say("#general", &format!("@{NICK} wait for me")).await;
    eventually("the mention waits in the journal", || {
        (agent.runner()?["detail"]["pending"] == 1).then_some(())
    });
    assert!(
        !events(&agent.fake_log(), "turn").iter().any(|t| t["text"]
            .as_str()
            .is_some_and(|x| x.contains("wait for me"))),
        "no turn while paused"
    );
    ask(&agent, serde_json::json!({"type": "resume", "id": "5"}));
    agent.reply("#general", "wait for me").await;
    let after = agent.runner().expect("status")["detail"]["thread_id"].clone();
    assert!(
        after.is_string() && after != before,
        "a new thread: {after}"
    );
    let book = std::fs::read_to_string(agent.scratch.path(&format!("state/{NICK}/threads.json")))
        .expect("threads.json");
    let book: Value = serde_json::from_str(&book).expect("json");
    assert_eq!(
        book["threads"]["#general"]["thread"], after,
        "the new thread is the one resumed after a restart: {book}"
    );
    let posted = agent.ori.received().iter().any(|l| l.contains("[SYSTEM]"));
    assert!(!posted, "a status query's answer is never posted to IRC");
}

/// A mention during which codex dies every time is given up after two attempts (its
/// sender gets Culture's Sorry line) instead of crash-looping the agent into an open
/// circuit.
#[tokio::test(flavor = "multi_thread")]
async fn a_poison_mention_is_given_up_after_two_attempts() {
    let Some(mut agent) = CodexAgent::start(Codex::Fake("crash_always"), Extra::default()).await
    else {
        return;
    };
    agent.say("#general", &format!("@{NICK} poison")).await;
    agent
        .reply("#general", "Sorry, I encountered an error")
        .await;
    let turns = events(&agent.fake_log(), "turn").len();
    assert_eq!(turns, 2, "two attempts");
    let runner = eventually("the runner is up again, the journal empty", || {
        let runner = agent.runner()?;
        (runner["detail"]["phase"] == "idle" && runner["detail"]["pending"] == 0).then_some(runner)
    });
    assert_eq!(runner["circuit"], "closed", "{runner}");
    assert!(agent.log().contains("giving up on a mention"));
}

/// A status query waiting behind a hung turn is answered `busy (no response)` after 10 s,
/// and at shutdown the hung turn is interrupted while its mention stays journaled.
#[tokio::test(flavor = "multi_thread")]
async fn a_hung_turn_leaves_queries_busy_and_is_interrupted_at_shutdown() {
    let Some(mut agent) = CodexAgent::start(Codex::Fake("hang"), Extra::default()).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} hang on")).await;
    eventually("the turn runs", || {
        (!events(&agent.fake_log(), "turn").is_empty()).then_some(())
    });
    let query = serde_json::json!({"type": "status", "id": "1", "query": true});
    let answer = agent.ipc(query).expect("ipc answer");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(
        answer["data"]["description"], "busy (no response)",
        "{answer}"
    );

    agent.stop_daemon();
    let log = agent.fake_log();
    let interrupts = events(&log, "interrupt");
    assert_eq!(interrupts.len(), 1, "interrupted at shutdown: {log:?}");
    let journal = agent.scratch.path(&format!("state/{NICK}/journal"));
    let pending = std::fs::read_dir(&journal).expect("journal").count();
    assert_eq!(pending, 1, "the mention stays journaled for the next start");
}

/// A runner that did not fail but waits for its process, and says for which one, `why` and
/// the remedy (its circuit is open).
fn assert_waits(runner: &Value, why: &str) {
    assert_eq!(
        (&runner["restarts"], &runner["circuit"]),
        (&Value::from(0), &Value::from("closed")),
        "the runner waits, it did not fail: {runner}"
    );
    let waiting = runner["detail"]["waiting_for"].as_str().unwrap_or_default();
    assert!(
        waiting.contains("process-0")
            && waiting.contains(why)
            && waiting.contains("codexd reset codex process-0"),
        "names the process, {why:?} and the remedy: {runner}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_overloaded_answers_are_retried_and_the_mention_answered() {
    let Some(mut agent) = CodexAgent::start(Codex::Fake("overloaded:3"), Extra::default()).await
    else {
        return;
    };
    agent
        .say("#general", &format!("@{NICK} through the crowd"))
        .await;
    agent.reply("#general", "through the crowd").await;
    let log = agent.fake_log();
    let overloaded = events(&log, "overloaded");
    assert_eq!(overloaded.len(), 3, "{log:?}");
    assert!(
        overloaded.iter().all(|o| o["method"] == "thread/start"),
        "the first requests after initialize: {overloaded:?}"
    );
    assert_eq!(events(&log, "start").len(), 1, "no restart: {log:?}");
    assert_eq!(events(&log, "thread/start").len(), 1, "{log:?}");
    let runner = agent.runner().expect("status");
    assert_eq!(runner["restarts"], 0, "{runner}");
    let process = agent.codex_process().expect("the codex service");
    assert_eq!(process["overloaded"], 3, "{process}");
    assert_eq!(process["requests_in_flight"], 0, "{process}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_codex_that_keeps_dying_opens_its_circuit_until_reset() {
    // The harness's policy: 3 failures within 60 s open a circuit for 60 s. The deaths are
    // the process's: its circuit opens, the runner waits and says for what.
    let Some(mut agent) = CodexAgent::start(Codex::Fake(""), Extra::default()).await else {
        return;
    };
    for death in 1..=3 {
        let before = agent.codex_process().expect("the codex service");
        assert_eq!(before["circuit"], "closed", "{before}");
        agent.fault("kill");
        if death < 3 {
            eventually("a new codex process", || {
                let now = agent.codex_process()?;
                (now["pid"].is_u64() && now["pid"] != before["pid"]).then_some(())
            });
            agent.wait_ready();
        }
    }
    let open = eventually("the codex process's circuit opens", || {
        agent.codex_process().filter(|p| p["circuit"] == "open")
    });
    assert!(open["pid"].is_null(), "no process while open: {open}");
    assert_eq!(open["restarts"], 2, "{open}");
    agent.say("#general", &format!("@{NICK} wait for me")).await;
    let runner = eventually("the runner waits for its process", || {
        let runner = agent.runner()?;
        (runner["detail"]["pending"] == 1).then_some(runner)
    });
    assert_waits(&runner, "circuit open");
    let socket = agent.scratch.socket();
    let socket = socket.to_str().expect("utf-8");
    let reset = |args: &[&str]| {
        let mut all = vec!["reset", "--socket", socket];
        all.extend_from_slice(args);
        agent.scratch.cli(&all)
    };
    let unknown = reset(&["codex", "process-9"]);
    assert!(!unknown.status.success(), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("process-0"),
        "lists the known ones: {unknown:?}"
    );
    assert!(reset(&["codex", "process-0"]).status.success());
    agent.reply("#general", "wait for me").await;
    let closed = agent.codex_process().expect("status");
    assert_ne!(closed["circuit"], "open", "{closed}");
    assert!(closed["pid"].is_u64(), "{closed}");
}
