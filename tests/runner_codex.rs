//! The runner with the real `codex app-server`, offline against the in-repo fake model, on
//! a real agentirc, driven through `codexd run`: mentions and DMs answered where they came
//! from, replies routed per turn, approvals answered by policy, and nothing accepted lost
//! when codex is killed mid-turn or the daemon stops with a mention pending.
//!
//! Peers: agentirc and codex from `scripts/install-peers`; a missing peer is a loud SKIP
//! (a failure under `CI=true`).

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

use std::time::Duration;

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::{Gate, Reply};
use irc_client::split_tags;
use otlp::OtlpSink;
use serde_json::Value;
use support::eventually;

/// All the text a model request carried (instructions and input), for `contains` checks.
fn request_text(request: &Value) -> String {
    request.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mention_is_answered_in_its_channel_and_a_dm_in_private() {
    let script = vec![
        Reply::text("hello from codex"),
        Reply::text("a private answer"),
    ];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), Extra::default()).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} hello there")).await;
    agent.reply("#general", "hello from codex").await;
    agent.say(NICK, "psst, a secret").await;
    agent.reply("spark-ori", "a private answer").await;

    let model = agent.model.as_ref().expect("fake model");
    let requests = model.wait_requests(2).await;
    let first = request_text(&requests[0]);
    assert!(
        first.contains("[IRC @mention in #general] <spark-ori> @spark-codex hello there"),
        "Culture's mention prompt: {first}"
    );
    assert!(
        first.contains("You are spark-codex, an AI agent on the culture IRC network."),
        "Culture's system prompt: {first}"
    );
    let second = request_text(&requests[1]);
    assert!(
        second.contains("[IRC DM] <spark-ori> psst, a secret"),
        "{second}"
    );
    assert!(
        !second.contains("hello there"),
        "a thread per conversation: the DM's turn does not carry the channel's: {second}"
    );
    // The reply is relayed when its message completes, a little before the turn ends.
    eventually("both turns ended and the journal is empty", || {
        let runner = agent.runner()?;
        (runner["detail"]["turn_count"] == 2 && runner["detail"]["pending"] == 0).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_follow_their_own_turn_across_two_channels() {
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), Extra::default()).await else {
        return;
    };
    let model = agent.model.as_ref().expect("fake model");
    let gate = Gate::new();
    model.when("first", Reply::held("answer for general", &gate));
    model.when("second", Reply::text("answer for ops"));
    model.when("third", Reply::text("second answer for general"));
    agent.say("#general", &format!("@{NICK} first")).await;
    let model = agent.model.as_ref().expect("fake model");
    eventually("#general's turn streams", || {
        (model.held() == 1).then_some(())
    });
    agent.say("#ops", &format!("@{NICK} second")).await;
    agent.reply("#ops", "answer for ops").await;
    gate.open();
    agent.reply("#general", "answer for general").await;
    agent.say("#general", &format!("@{NICK} third")).await;
    agent.reply("#general", "second answer for general").await;
    let stray = agent.ori.received().iter().any(|line| {
        line.contains("PRIVMSG #ops :answer for general")
            || line.contains("PRIVMSG #general :answer for ops")
    });
    assert!(!stray, "a reply went to another turn's channel");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_codex_mid_turn_replays_the_mention_on_the_resumed_thread() {
    let script = vec![
        Reply::text("noted the first question"),
        Reply::Slow {
            text: "never delivered".into(),
            delay: Duration::from_secs(20),
        },
        Reply::text("answer after the crash"),
    ];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), Extra::default()).await else {
        return;
    };
    agent
        .say("#general", &format!("@{NICK} remember the word zebra"))
        .await;
    agent.reply("#general", "noted the first question").await;
    let thread = agent.runner().expect("status")["detail"]["thread_id"].clone();

    agent
        .say("#general", &format!("@{NICK} what was the word?"))
        .await;
    let model = agent.model.as_ref().expect("fake model");
    model.wait_requests(2).await;
    agent.ori.send("PRESENCE LIST").await;
    agent
        .ori
        .expect(
            "agentirc lists the agent as thinking during its turn",
            |line| line.contains(NICK) && line.contains("thinking"),
        )
        .await;
    agent.fault("kill");

    agent.reply("#general", "answer after the crash").await;
    let requests = agent.model.as_ref().expect("model").wait_requests(3).await;
    let replayed = request_text(&requests[2]);
    assert!(
        replayed.contains("what was the word?"),
        "replayed: {replayed}"
    );
    assert!(
        replayed.contains("remember the word zebra"),
        "the thread was resumed: the earlier conversation is in the request: {replayed}"
    );
    let runner = agent.runner().expect("status");
    assert_eq!(
        runner["detail"]["thread_id"], thread,
        "same thread: {runner}"
    );
    assert_eq!(
        runner["restarts"], 0,
        "a codex death is not the runner's failure: {runner}"
    );
    let process = agent.codex_process().expect("the codex service");
    assert_eq!(process["restarts"], 1, "{process}");
    assert!(
        !agent
            .ori
            .received()
            .iter()
            .any(|l| l.contains("never delivered")),
        "the killed turn's reply never arrived"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mention_pending_at_sigterm_is_answered_after_the_restart() {
    let script = vec![
        Reply::Slow {
            text: "cut off by the shutdown".into(),
            delay: Duration::from_secs(20),
        },
        Reply::text("answered after the restart"),
    ];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), Extra::default()).await else {
        return;
    };
    agent
        .say("#general", &format!("@{NICK} are you there?"))
        .await;
    agent.model.as_ref().expect("model").wait_requests(1).await;
    agent.stop_daemon();
    let journal = agent.scratch.path(&format!("state/{NICK}/journal"));
    let pending = std::fs::read_dir(&journal).expect("journal dir").count();
    assert_eq!(pending, 1, "the mention is still journaled");

    agent.restart_daemon();
    agent.reply("#general", "answered after the restart").await;
    let requests = agent.model.as_ref().expect("model").wait_requests(2).await;
    assert!(request_text(&requests[1]).contains("are you there?"));
    eventually("the journal is emptied", || {
        (std::fs::read_dir(&journal).ok()?.count() == 0).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn approvals_are_answered_by_the_configured_policy() {
    for (policy, file, expect_file) in [("accept", "yes.txt", true), ("decline", "no.txt", false)] {
        let cmd = format!("touch {file} && echo touched");
        let script = vec![
            Reply::Exec {
                cmd,
                escalate: Some("the test wants it".into()),
            },
            Reply::text(&format!("done with policy {policy}")),
        ];
        let codex = format!(
            "      approval_policy: on-request\n      sandbox: read-only\n      approvals: {policy}\n"
        );
        let Some(mut agent) = CodexAgent::start(
            Codex::Real(script),
            Extra {
                codex: &codex,
                ..Extra::default()
            },
        )
        .await
        else {
            return;
        };
        agent
            .say("#general", &format!("@{NICK} touch a file"))
            .await;
        agent
            .reply("#general", &format!("done with policy {policy}"))
            .await;
        assert_eq!(
            agent.workdir.join(file).exists(),
            expect_file,
            "policy {policy}: {}",
            agent.log()
        );
        assert!(
            agent.log().contains("codex asked; answered"),
            "{}",
            agent.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_turn_says_sorry_three_in_a_row_pause_the_agent_and_resume_lifts_it() {
    let script = vec![
        Reply::Status(500),
        Reply::Status(500),
        Reply::Status(500),
        Reply::text("back to work"),
    ];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), Extra::default()).await else {
        return;
    };
    for n in 1..=3 {
        agent.say("#general", &format!("@{NICK} attempt {n}")).await;
        agent
            .reply("#general", "Sorry, I encountered an error")
            .await;
    }
    eventually("the agent is paused by the breaker", || {
        let runner = agent.runner()?;
        (runner["detail"]["paused"] == "turn_failures").then_some(())
    });
    agent
        .say("#general", &format!("@{NICK} while paused"))
        .await;
    eventually("the mention is queued", || {
        let runner = agent.runner()?;
        (runner["detail"]["pending"] == 1).then_some(())
    });
    assert!(
        agent
            .log()
            .contains("paused after 3 consecutive turn failures")
    );

    let resumed = agent
        .ipc(serde_json::json!({"type": "resume", "id": "1"}))
        .expect("ipc");
    assert_eq!(resumed["ok"], true, "{resumed}");
    agent.reply("#general", "back to work").await;
    let runner = eventually("the count is reset", || {
        let runner = agent.runner()?;
        (runner["detail"]["turns_completed"] == 1).then_some(runner)
    });
    assert_eq!(runner["detail"]["consecutive_failures"], 0, "{runner}");
    assert_eq!(runner["detail"]["paused"], Value::Null, "{runner}");
}

/// The turn span is a child of the inbound line's span, each tool call a child of the
/// turn, the reply line carries the turn's trace, and Culture's turn metrics are exported
/// (received by a real OTLP receiver).
#[tokio::test(flavor = "multi_thread")]
async fn a_turn_is_traced_from_the_mention_to_the_reply() {
    let sink = match OtlpSink::start() {
        Ok(sink) => sink,
        Err(reason) => return otlp::skip_or_fail(&reason),
    };
    let top = format!(
        "telemetry:\n  enabled: true\n  service_name: codexd-runner-test\n  otlp_endpoint: {}\n  otlp_protocol: grpc\n  metrics_export_interval_ms: 500\n",
        sink.grpc_endpoint()
    );
    let script = vec![Reply::exec("echo traced"), Reply::text("traced reply")];
    let extra = Extra {
        top: &top,
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), extra).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} trace me")).await;
    let line = agent.reply_line("#general", "traced reply").await;
    eventually("the turn has ended", || {
        (agent.runner()?["detail"]["turns_completed"] == 1).then_some(())
    });
    agent.stop_daemon();

    let spans = sink.spans();
    let turn = spans
        .iter()
        .find(|s| s.name == "harness.llm.call")
        .unwrap_or_else(|| panic!("no turn span in {spans:#?}"));
    let parent = spans
        .iter()
        .find(|s| s.span_id == turn.parent_span_id)
        .unwrap_or_else(|| panic!("the turn's parent was not exported: {spans:#?}"));
    assert_eq!(parent.name, "harness.irc.message.handle");
    let tool = spans
        .iter()
        .find(|s| s.name == "codexd.tool.call")
        .unwrap_or_else(|| panic!("no tool span in {spans:#?}"));
    assert_eq!(
        tool.parent_span_id, turn.span_id,
        "the tool call is in the turn"
    );
    // A tool codex runs itself is the GenAI convention's `extension`.
    assert_eq!(
        tool.attr("gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(tool.attr("gen_ai.tool.type").as_deref(), Some("extension"));
    assert_eq!(tool.attr("gen_ai.tool.call.id"), tool.attr("tool.id"));
    let metrics: Vec<String> = sink.metrics().into_iter().map(|m| m.name).collect();
    for name in [
        "culture.harness.llm.calls",
        "culture.harness.llm.call.duration",
        "culture.harness.llm.tokens.input",
        "culture.harness.llm.tokens.output",
        "gen_ai.client.token.usage",
    ] {
        assert!(metrics.iter().any(|m| m == name), "{name} in {metrics:?}");
    }
    let (tags, _) = split_tags(&line);
    let traceparent = tags
        .iter()
        .find(|(k, _)| k.ends_with("traceparent"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("the reply carries no trace: {line}"));
    assert!(
        traceparent.contains(&turn.trace_id),
        "the reply line is in the turn's trace: {traceparent} vs {}",
        turn.trace_id
    );
}

/// The agent's shell commands get codex's core variables plus `CULTURE_NICK` and the IPC
/// directory, but not the app-server's environment (the provider key): and with those,
/// Culture's skill client run *by the agent's tool* reaches the agent's own socket.
#[tokio::test(flavor = "multi_thread")]
async fn the_agents_tools_see_their_nick_not_the_api_key_and_reach_their_socket() {
    let python = otlp::peers_dir().join("culture/venv/bin/python");
    if !python.exists() {
        otlp::skip_or_fail("Culture's skill client (culture venv) is not installed");
        return;
    }
    let command = format!(
        "echo nick=$CULTURE_NICK key=${{FAKE_API_KEY:-unset}} rt=$XDG_RUNTIME_DIR; pwd; {} -m cultureagent.clients.codex.skill.irc_client send '#general' 'hello from the tool'",
        python.display()
    );
    let script = vec![Reply::exec(&command), Reply::text("tool done")];
    // codex's read-only and workspace-write sandboxes (without network access) refuse every
    // connect(2), the agent's own Unix socket included (EPERM, seen on codex 0.169).
    let extra = Extra {
        codex: "      sandbox: danger-full-access\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), extra).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} run it")).await;
    agent.reply("#general", "hello from the tool").await;
    agent.reply("#general", "tool done").await;
    let model = agent.model.as_ref().expect("fake model");
    let requests = model.wait_requests(2).await;
    let output = request_text(&requests[1]);
    let runtime = agent.scratch.path("run");
    let expected = format!("nick={NICK} key=unset rt={}", runtime.display());
    assert!(output.contains(&expected), "{expected} in {output}");
    let workdir = agent.workdir.display().to_string();
    assert!(
        output.contains(&workdir),
        "pwd is the agent's directory: {output}"
    );
}

/// codex runs with `--strict-config`: a field it does not know in `config.toml` stops it at
/// start, and the runner's last error names the field, instead of codex silently ignoring it.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_config_toml_field_is_refused_and_named() {
    let script = vec![Reply::text("before the typo")];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), Extra::default()).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} hello")).await;
    agent.reply("#general", "before the typo").await;
    let config = agent
        .home
        .as_ref()
        .expect("a codex home")
        .codex_home()
        .join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config.toml");
    text.insert_str(0, "shell_enviroment_policy = {}\n");
    std::fs::write(&config, text).expect("config.toml");
    agent.fault("kill");
    let error = eventually("the codex process fails on the typo", || {
        let process = agent.codex_process()?;
        process["last_error"]
            .as_str()
            .filter(|e| e.contains("unknown configuration field"))
            .map(str::to_owned)
    });
    assert!(error.contains("shell_enviroment_policy"), "{error}");
    let waiting = eventually("the runner says what it waits for", || {
        let runner = agent.runner()?;
        runner["detail"]["waiting_for"]
            .as_str()
            .filter(|w| w.contains("unknown configuration field"))
            .map(str::to_owned)
    });
    assert!(waiting.contains("process-0"), "{waiting}");
}
