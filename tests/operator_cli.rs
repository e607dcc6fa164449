//! The operator's CLI against a real daemon: `pause`, `resume`, `say`, `whisper`,
//! `status [<nick>] [--check]` and `watch` over the control socket, with the agent on a
//! real agentirc and the real codex offline against the fake model; the exit codes of bad
//! input and of a daemon that is not there; the completions and the man page.
//!
//! Peers: agentirc and codex from `scripts/install-peers`; a missing peer is a loud SKIP (a
//! failure under `CI=true`). The tests with test children need none.

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

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::Reply;
use irc_client::{command_and_params, source_nick};
use serde_json::{Value, json};
use support::{PATIENCE, Scratch, child, eventually};

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `codexd <args…> --socket <the agent's daemon>`.
fn cli(agent: &CodexAgent, args: &[&str]) -> Output {
    let socket = agent.scratch.socket();
    let mut all = args.to_vec();
    all.extend(["--socket", socket.to_str().expect("utf-8")]);
    agent.scratch.cli(&all)
}

/// The table row of `name` (its first cell) in `codexd status` output.
fn row(table: &str, name: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_agent_holds_a_mention_until_resumed_and_a_whisper_reaches_its_next_turn() {
    let script = vec![Reply::text("answered after the resume")];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), Extra::default()).await else {
        return;
    };

    let paused = cli(&agent, &["pause", NICK]);
    assert_eq!(code(&paused), 0, "{}", stderr(&paused));
    assert_eq!(stdout(&paused).trim(), format!("paused {NICK}"));
    let table = eventually("status shows the pause", || {
        let out = cli(&agent, &["status", NICK]);
        let table = stdout(&out);
        (code(&out) == 0 && row(&table, NICK)[1] == "paused").then_some(table)
    });
    let cells = row(&table, NICK);
    assert_eq!(cells[2], "manual", "PAUSED column:\n{table}");
    assert_eq!(cells[3], "closed");
    assert!(
        cells[5].ends_with('s') || cells[5].ends_with('m'),
        "UPTIME humanised: {table}"
    );
    assert!(
        table.contains("  runner"),
        "its children are listed:\n{table}"
    );
    let check = cli(&agent, &["status", "--check"]);
    assert_eq!(
        code(&check),
        0,
        "a manual pause is healthy: {}",
        stderr(&check)
    );

    let whispered = cli(
        &agent,
        &[
            "whisper",
            NICK,
            "correction",
            "mind",
            "the",
            "failing",
            "tests",
        ],
    );
    assert_eq!(code(&whispered), 0, "{}", stderr(&whispered));
    assert_eq!(
        stdout(&whispered).trim(),
        format!("whispered CORRECTION to {NICK}")
    );

    agent
        .say("#general", &format!("@{NICK} are you there"))
        .await;
    eventually("the mention waits in the journal", || {
        let runner = agent.runner()?;
        (runner["detail"]["pending"] == 1).then_some(())
    });
    let model = agent.model.as_ref().expect("real codex");
    assert!(
        model.requests_with("are you there").is_empty(),
        "a paused agent starts no turn"
    );
    let runner = agent.runner().expect("status");
    assert_eq!(runner["detail"]["turns_completed"], 0, "{runner:#}");

    let resumed = cli(&agent, &["resume", NICK]);
    assert_eq!(code(&resumed), 0, "{}", stderr(&resumed));
    assert_eq!(stdout(&resumed).trim(), format!("resumed {NICK}"));
    agent.reply("#general", "answered after the resume").await;
    let model = agent.model.as_ref().expect("real codex");
    let turn = model.requests_with("are you there");
    let prompt = turn.last().expect("the mention's turn").to_string();
    assert!(
        prompt.contains("[Whispered to you, not seen on IRC]")
            && prompt.contains("[whisper:CORRECTION] mind the failing tests\\n"),
        "the whisper opens the next turn's prompt: {prompt}"
    );
    let table = stdout(&cli(&agent, &["status", NICK]));
    assert_eq!(row(&table, NICK)[1..3], ["running", "-"], "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn say_speaks_as_the_agent_and_nothing_in_the_text_becomes_a_command_or_ctcp() {
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), Extra::default()).await else {
        return;
    };
    let said = cli(&agent, &["say", NICK, "#general", "hello", "from", "ops"]);
    assert_eq!(code(&said), 0, "{}", stderr(&said));
    assert_eq!(stdout(&said).trim(), format!("sent as {NICK} to #general"));
    assert_eq!(agent.reply("#general", "hello").await, "hello from ops");

    let hostile = "first\r\nQUIT :gone \u{1}VERSION\u{1}\nPRIVMSG #ops :\u{1}ACTION x\u{1}";
    let said = cli(&agent, &["say", NICK, "#general", hostile]);
    assert_eq!(code(&said), 0, "{}", stderr(&said));
    assert_eq!(agent.reply("#general", "first").await, "first");
    assert_eq!(
        agent.reply("#general", "QUIT").await,
        "QUIT :gone VERSION",
        "the second line is text, its CTCP markers gone"
    );
    assert_eq!(
        agent.reply("#general", "PRIVMSG").await,
        "PRIVMSG #ops :ACTION x"
    );
    let quit = agent.ori.received().iter().any(|line| {
        let (command, _) = command_and_params(line);
        command == "QUIT" && source_nick(line).as_deref() == Some(NICK)
    });
    assert!(!quit, "the agent never quit");
    let status = agent.scratch.status().expect("status");
    let irc = child(&status, NICK, "irc").expect("irc");
    assert_eq!(irc["detail"]["state"], "connected", "{irc:#}");
    assert_eq!(irc["detail"]["connects"], 1, "one connection throughout");

    let not_joined = cli(&agent, &["say", NICK, "#elsewhere", "hi"]);
    assert_eq!(code(&not_joined), 1, "{}", stderr(&not_joined));
    assert!(
        stderr(&not_joined).contains("hint:") && stderr(&not_joined).contains("#elsewhere"),
        "{}",
        stderr(&not_joined)
    );
    let bad_target = cli(&agent, &["say", NICK, "#a,#b", "hi"]);
    assert_eq!(code(&bad_target), 1, "{}", stderr(&bad_target));
}

/// Reads `codexd watch`'s stdout lines on a thread.
fn lines_of(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_a_mention_with_a_tool_call_as_json_lines() {
    let script = vec![
        Reply::call(
            "irc_send",
            json!({"channel": "#ops", "message": "watched from the tool"}),
        ),
        Reply::text("sent it"),
    ];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), Extra::default()).await else {
        return;
    };
    let socket = agent.scratch.socket();
    let mut watch = agent
        .scratch
        .codexd()
        .args(["watch", NICK, "--socket", socket.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn codexd watch");
    let lines = lines_of(watch.stdout.take().expect("piped"));
    eventually("the daemon has subscribed the watcher", || {
        agent.log().contains("watch started").then_some(())
    });

    agent.say("#general", &format!("@{NICK} tell #ops")).await;
    agent.reply("#general", "sent it").await;
    let deadline = Instant::now() + PATIENCE;
    let mut records: Vec<Value> = Vec::new();
    while !records.iter().any(|r| r["event_type"] == "turn.end") {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no turn.end; got {records:#?}"));
        records.push(serde_json::from_str(&line).expect("each line is one JSON object"));
    }
    for record in &records {
        let keys: Vec<&str> = record
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "ts",
                "server",
                "agent",
                "trace_id",
                "span_id",
                "event_type",
                "payload"
            ],
            "the audit record's shape: {record}"
        );
        assert_eq!(record["agent"], NICK, "only the watched agent: {record}");
    }
    let at = |event_type: &str, matches: &dyn Fn(&Value) -> bool| {
        records
            .iter()
            .position(|r| r["event_type"] == event_type && matches(&r["payload"]))
            .unwrap_or_else(|| panic!("no {event_type} in {records:#?}"))
    };
    let mention = at("message.in", &|p| {
        p["kind"] == "mention"
            && p["from"] == "spark-ori"
            && p["text"] == format!("@{NICK} tell #ops")
    });
    let start = at("turn.start", &|p| p["conversation"] == "#general");
    let tool_line = at("message.out", &|p| p["text"] == "watched from the tool");
    let tool = at("tool.call", &|p| {
        p["tool"] == "irc_send" && p["outcome"] == "ok"
    });
    let reply = at("message.out", &|p| {
        p["target"] == "#general" && p["text"] == "sent it"
    });
    let end = at("turn.end", &|p| p["outcome"] == "success");
    assert!(
        mention < start && start < tool_line && tool_line < tool && tool < end && start < reply,
        "in the order it happened: {records:#?}"
    );
    let ended = &records[end]["payload"];
    assert!(ended["duration_ms"].is_u64(), "{ended}");
    assert!(
        ended["tokens_input"].as_u64().is_some_and(|n| n > 0),
        "{ended}"
    );
    assert!(ended["tokens_output"].is_u64(), "{ended}");
    assert!(records[tool]["payload"]["duration_ms"].is_u64());

    // The watcher leaves: the daemon notices and drops the subscription.
    watch.kill().expect("kill watch");
    let _ = watch.wait();
    eventually("the daemon dropped the watch", || {
        let log = agent.log();
        log.lines()
            .any(|l| l.contains("watch ended") && l.contains("client left"))
            .then_some(())
    });
}

/// A daemon whose agents run test children only (no IRC server or codex needed), with a
/// restart policy that opens a circuit at the second failure and keeps it open.
fn test_child_daemon(nicks: &[&str]) -> (Scratch, support::Daemon) {
    let agents: String = nicks
        .iter()
        .map(|nick| {
            format!("  - nick: {nick}\n    channels: ['#general']\n    test_children: [irc, socket, runner]\n")
        })
        .collect();
    let scratch = Scratch::new();
    scratch.write_config(&format!(
        "server:\n  name: spark\ncontrol_socket: {{socket}}\nstate_dir: {{home}}/state\nshutdown_grace: 5s\nrestart:\n  backoff_base: 50ms\n  backoff_cap: 200ms\n  max_restarts: 1\n  window: 60s\n  cooldown: 600s\n  health_interval: 500ms\n  health_timeout: 2s\nagents:\n{agents}"
    ));
    let daemon = scratch.run(&[]);
    eventually("every agent's children run", || {
        let status = scratch.status()?;
        nicks
            .iter()
            .all(|nick| child(&status, nick, "irc").is_some_and(|c| c["state"] == "running"))
            .then_some(())
    });
    (scratch, daemon)
}

#[test]
fn status_check_exits_4_naming_the_open_circuit_and_status_nick_shows_one_agent() {
    let (scratch, _daemon) = test_child_daemon(&["spark-a", "spark-b"]);
    let socket = scratch.socket();
    let socket = socket.to_str().expect("utf-8");

    let healthy = scratch.cli(&["status", "--check", "--socket", socket]);
    assert_eq!(code(&healthy), 0, "{}", stderr(&healthy));
    assert!(stdout(&healthy).contains("spark-b"), "the table too");

    let one = scratch.cli(&["status", "spark-a", "--json", "--socket", socket]);
    assert_eq!(code(&one), 0, "{}", stderr(&one));
    let one: Value = serde_json::from_slice(&one.stdout).expect("JSON");
    let nicks: Vec<&str> = one["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["nick"].as_str())
        .collect();
    assert_eq!(nicks, ["spark-a"]);

    // `max_restarts: 1`: the first failure within the window opens the circuit.
    let fault = scratch.cli(&["fault", "spark-a", "irc", "panic", "--socket", socket]);
    assert_eq!(code(&fault), 0, "{}", stderr(&fault));
    eventually("the irc circuit of spark-a opens", || {
        let status = scratch.status()?;
        (child(&status, "spark-a", "irc")?["state"] == "circuit_open").then_some(())
    });
    let unhealthy = scratch.cli(&["status", "--check", "--socket", socket]);
    assert_eq!(code(&unhealthy), 4, "{}", stderr(&unhealthy));
    let hints: Vec<String> = stderr(&unhealthy)
        .lines()
        .filter(|l| l.starts_with("hint: "))
        .map(str::to_owned)
        .collect();
    assert_eq!(hints, ["hint: circuit open on spark-a/irc"]);
    let table = stdout(&unhealthy);
    assert_eq!(row(&table, "irc")[1], "circuit_open", "{table}");

    let other = scratch.cli(&["status", "spark-b", "--check", "--socket", socket]);
    assert_eq!(
        code(&other),
        0,
        "spark-b alone is healthy: {}",
        stderr(&other)
    );
    assert!(!stdout(&other).contains("spark-a"), "{}", stdout(&other));

    let reset = scratch.cli(&["reset", "spark-a", "irc", "--socket", socket]);
    assert_eq!(code(&reset), 0, "{}", stderr(&reset));
    eventually("healthy again after the reset", || {
        let out = scratch.cli(&["status", "--check", "--socket", socket]);
        (code(&out) == 0).then_some(())
    });
}

#[test]
fn unknown_agents_and_kinds_exit_1_with_a_hint_and_no_daemon_exits_3() {
    let (scratch, mut daemon) = test_child_daemon(&["spark-a"]);
    let socket = scratch.socket();
    let socket = socket.to_str().expect("utf-8");
    let refusals: [&[&str]; 7] = [
        &["status", "spark-z"],
        &["pause", "spark-z"],
        &["resume", "spark-z"],
        &["say", "spark-z", "#general", "hi"],
        &["whisper", "spark-z", "CORRECTION", "hi"],
        &["watch", "spark-z"],
        &["whisper", "spark-a", "ESCALATION", "hi"],
    ];
    for args in refusals {
        let out = scratch.cli(&[args, &["--socket", socket]].concat());
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        let hint = stderr(&out);
        assert!(hint.starts_with("hint: "), "{args:?}: {hint}");
        let named = match args[0] {
            "whisper" if args[1] == "spark-a" => "CORRECTION or THINK_DEEPER",
            _ => "known: spark-a",
        };
        assert!(hint.contains(named), "{args:?}: {hint}");
    }
    // The agent exists but its socket is a test child: nothing there to pause.
    let out = scratch.cli(&["pause", "spark-a", "--socket", socket]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("socket actor is not running"),
        "{}",
        stderr(&out)
    );

    daemon.signal("TERM");
    assert!(daemon.wait().success());
    for args in [
        &["pause", "spark-a"][..],
        &["watch"],
        &["status", "--check"],
    ] {
        let out = scratch.cli(&[args, &["--socket", socket]].concat());
        assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("hint: "), "{args:?}");
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_cli_and_name_the_operator_verbs() {
    let scratch = Scratch::new();
    let verbs = ["pause", "resume", "say", "whisper", "watch", "status"];
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = scratch.cli(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for verb in verbs {
            assert!(script.contains(verb), "{shell} completes {verb}");
        }
    }
    let out = scratch.cli(&["man"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH codexd 1"), "a roff page: {page}");
    for verb in verbs {
        assert!(
            page.contains(&format!("codexd\\-{verb}(1)")),
            "man names {verb}"
        );
    }
    let bad = scratch.cli(&["completions", "tcsh"]);
    assert_eq!(code(&bad), 2, "clap's usage error names the shells");
    assert!(stderr(&bad).contains("bash"), "{}", stderr(&bad));
}
