//! The agent's IRC tools inside codex's turn (reference/codex-dynamic-tools.md): the real
//! codex binary, offline against the fake model, which answers with `function_call`s of the
//! tools codex offered; codexd carries them out and the lines reach a real agentirc as the
//! agent. Under `read-only` and `workspace-write`, where the skill client cannot reach the
//! socket.

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
use fake_model::{Reply, call_outputs, offered_tools};
use serde_json::{Value, json};
use support::eventually;

/// Every tool codexd declares, in order.
const ALL: [&str; 13] = [
    "irc_send",
    "irc_read",
    "irc_ask",
    "irc_join",
    "irc_part",
    "irc_channels",
    "irc_who",
    "irc_topic",
    "irc_threads",
    "irc_thread_create",
    "irc_thread_reply",
    "irc_thread_read",
    "irc_thread_close",
];

/// The IRC tools offered in a model request (codex's own tools left out).
fn irc_tools(request: &Value) -> Vec<String> {
    offered_tools(request)
        .into_iter()
        .filter(|name| name.starts_with("irc_"))
        .collect()
}

/// The outputs of the last `count` tool calls model request `n` carries (it carries the
/// whole thread's).
async fn outputs(agent: &CodexAgent, n: usize, count: usize) -> Vec<String> {
    let model = agent.model.as_ref().expect("real codex");
    let requests = model.wait_requests(n + 1).await;
    let all = call_outputs(&requests[n]);
    let start = all.len().saturating_sub(count);
    all[start..]
        .iter()
        .map(|(_, output)| output.clone())
        .collect()
}

/// The thread's instructions as codex sends them: `developer` messages of the input
/// (`baseInstructions` is the first, reference/codex-app-server.md §7.7).
fn developer_text(request: &Value) -> String {
    request["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["role"] == "developer")
        .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|part| part["text"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn with_tools(script: Vec<Reply>, extra: Extra<'_>) -> Option<CodexAgent> {
    CodexAgent::start(Codex::Real(script), extra).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_sends_with_a_tool_under_each_sandbox() {
    for sandbox in ["read-only", "workspace-write"] {
        let script = vec![
            Reply::call(
                "irc_send",
                json!({"channel": "#ops", "message": "from the tool \u{1}VERSION\u{1} in a sandbox"}),
            ),
            Reply::text("done"),
        ];
        let codex = format!("      sandbox: {sandbox}\n");
        let extra = Extra {
            codex: &codex,
            ..Extra::default()
        };
        let Some(mut agent) = with_tools(script, extra).await else {
            return;
        };
        agent.say("#general", &format!("@{NICK} tell #ops")).await;
        let line = agent.reply("#ops", "from the tool").await;
        assert_eq!(
            line, "from the tool VERSION in a sandbox",
            "{sandbox}: controls stripped"
        );
        agent.reply("#general", "done").await;
        let model = agent.model.as_ref().expect("real codex");
        let requests = model.wait_requests(2).await;
        assert_eq!(
            irc_tools(&requests[0]),
            ALL,
            "{sandbox}: every tool offered"
        );
        assert_eq!(outputs(&agent, 1, 1).await, ["ok"], "{sandbox}");
        let runner = agent.runner().expect("status");
        let tool_set = runner["detail"]["tool_set"].as_str().unwrap_or_default();
        assert_eq!(tool_set, format!("v1:{}", ALL.join(",")), "{runner}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_returns_what_others_said_once_and_parallel_calls_are_each_answered() {
    let script = vec![
        Reply::call("irc_read", json!({"channel": "#ops"})),
        Reply::text("read it"),
        Reply::Calls(vec![
            ("irc_read".into(), json!({"channel": "#ops"})),
            (
                "irc_send".into(),
                json!({"channel": "#general", "message": "parallel one"}),
            ),
            ("irc_channels".into(), json!({})),
        ]),
        Reply::text("read again"),
    ];
    let Some(mut agent) = with_tools(script, Extra::default()).await else {
        return;
    };
    agent.say("#ops", "line one for the record").await;
    agent
        .say("#general", &format!("@{NICK} what was said in #ops?"))
        .await;
    agent.reply("#general", "read it").await;
    let first = outputs(&agent, 1, 1).await;
    assert_eq!(first.len(), 1);
    assert!(
        first[0].contains("<spark-ori> line one for the record"),
        "{first:?}"
    );

    agent.say("#general", &format!("@{NICK} and now?")).await;
    agent.reply("#general", "parallel one").await;
    agent.reply("#general", "read again").await;
    let second = outputs(&agent, 3, 3).await;
    let all = call_outputs(&agent.model.as_ref().expect("codex").requests()[3]);
    assert_eq!(all.len(), 4, "one earlier call, three in parallel: {all:?}");
    assert_eq!(
        second[0], "no new messages",
        "a read does not repeat: {second:?}"
    );
    assert_eq!(second[1], "ok");
    assert!(
        second[2].contains("#general") && second[2].contains("#ops"),
        "{second:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_list_offers_only_those_and_the_prompt_says_so() {
    let script = vec![Reply::text("hi")];
    let extra = Extra {
        agent: "    tools: [irc_read, irc_who]\n",
        ..Extra::default()
    };
    let Some(mut agent) = with_tools(script, extra).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} hello")).await;
    agent.reply("#general", "hi").await;
    let model = agent.model.as_ref().expect("real codex");
    let request = &model.wait_requests(1).await[0];
    assert_eq!(irc_tools(request), ["irc_read", "irc_who"]);
    let instructions = developer_text(request);
    assert!(
        instructions.contains("Your IRC tools: irc_read, irc_who."),
        "{instructions}"
    );
    assert!(!instructions.contains("irc_send"), "{instructions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_times_out_reaches_the_model_as_text_and_the_turn_completes() {
    let script = vec![
        Reply::call("irc_channels", json!({})),
        Reply::text("went on without it"),
    ];
    let extra = Extra {
        codex: "      tool_timeout: 1s\n",
        ..Extra::default()
    };
    let Some(mut agent) = with_tools(script, extra).await else {
        return;
    };
    agent.fault_child("socket", "hang:8");
    agent
        .say("#general", &format!("@{NICK} which channels?"))
        .await;
    agent.reply("#general", "went on without it").await;
    let output = outputs(&agent, 1, 1).await;
    assert_eq!(output.len(), 1);
    assert!(
        output[0].contains("irc_channels timed out after 1s"),
        "{output:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_work_on_the_resumed_thread_after_codex_is_killed() {
    let script = vec![
        Reply::text("first"),
        Reply::call(
            "irc_send",
            json!({"channel": "#ops", "message": "after the kill"}),
        ),
        Reply::text("second"),
    ];
    let Some(mut agent) = with_tools(script, Extra::default()).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} one")).await;
    agent.reply("#general", "first").await;
    let thread = agent.runner().expect("status")["detail"]["thread_id"].clone();
    let pid = agent.runner().expect("status")["detail"]["pid"].clone();
    agent.fault("kill");
    let resumed = eventually("a new codex, the runner idle on it", || {
        let runner = agent.runner()?;
        let detail = &runner["detail"];
        let up = detail["phase"] == "idle" && detail["pid"] != pid && !detail["pid"].is_null();
        up.then(|| detail["thread_id"].clone())
    });
    assert_eq!(resumed, thread, "resumed, not replaced");
    agent.say("#general", &format!("@{NICK} two")).await;
    agent.reply("#ops", "after the kill").await;
    agent.reply("#general", "second").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_from_before_the_tools_hands_over_a_summary_to_a_new_thread() {
    let script = vec![
        Reply::text("first"),
        Reply::text("Summary: ori asked one thing in #general; nothing is open."),
        Reply::text("second"),
    ];
    let Some(mut agent) = with_tools(script, Extra::default()).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} one")).await;
    agent.reply("#general", "first").await;
    let old = eventually("the first mention done and out of the journal", || {
        let runner = agent.runner()?;
        (runner["detail"]["pending"] == 0).then(|| runner["detail"]["thread_id"].clone())
    });
    agent.stop_daemon();
    // As an agent started before tools (and conversations): a thread id, no tool set.
    let state = agent.scratch.path(&format!("state/{NICK}"));
    std::fs::remove_file(state.join("threads.json")).expect("threads.json");
    let old_id = old.as_str().expect("a thread id");
    std::fs::write(state.join("thread-id"), format!("{old_id}\n")).expect("thread-id");
    agent.restart_daemon();
    agent.say("#general", &format!("@{NICK} two")).await;
    agent.reply("#general", "second").await;
    let runner = eventually("the new thread recorded", || {
        let runner = agent.runner()?;
        (runner["detail"]["replaced_thread"] == old && runner["detail"]["pending"] == 0)
            .then_some(runner)
    });
    assert_ne!(runner["detail"]["thread_id"], old, "{runner}");

    let model = agent.model.as_ref().expect("real codex");
    let requests = model.wait_requests(3).await;
    let handover = requests[1].to_string();
    assert!(
        handover.contains("You are moving to a new conversation thread"),
        "{handover}"
    );
    assert_eq!(irc_tools(&requests[2]), ALL, "the new thread has them");
    let first_turn = requests[2].to_string();
    assert!(
        first_turn.contains("[Summary of your earlier conversation")
            && first_turn.contains("ori asked one thing in #general"),
        "the new thread's first turn carries the summary: {first_turn}"
    );
    let old_mention = format!("@{NICK} one\"");
    assert!(
        !first_turn.contains(&old_mention),
        "the new thread does not carry the old one's history"
    );
    let posted = agent
        .ori
        .received()
        .iter()
        .any(|l| l.contains("Summary: ori asked"));
    assert!(!posted, "the summary is not posted to IRC");
    assert!(
        !agent
            .scratch
            .path(&format!("state/{NICK}/handover"))
            .exists(),
        "the summary went into one turn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_joined_at_run_time_is_rejoined_after_a_restart_until_parted() {
    let script = vec![
        Reply::call("irc_join", json!({"channel": "#later"})),
        Reply::text("joined"),
        Reply::call("irc_part", json!({"channel": "#later"})),
        Reply::text("left"),
    ];
    let Some(mut agent) = with_tools(script, Extra::default()).await else {
        return;
    };
    agent.say("#general", &format!("@{NICK} join #later")).await;
    agent.reply("#general", "joined").await;
    eventually("in #later", || {
        agent
            .irc_channels()
            .filter(|c| c.iter().any(|c| c == "#later"))
    });
    eventually("the mention done", || {
        (agent.runner()?["detail"]["pending"] == 0).then_some(())
    });
    agent.stop_daemon();
    agent.restart_daemon();
    let channels = eventually("rejoined after the restart", || {
        agent
            .irc_channels()
            .filter(|c| c.iter().any(|c| c == "#later"))
    });
    assert_eq!(channels, ["#general", "#ops", "#alerts", "#later"]);

    agent
        .say("#general", &format!("@{NICK} leave #later"))
        .await;
    agent.reply("#general", "left").await;
    eventually("the part done", || {
        (agent.runner()?["detail"]["pending"] == 0).then_some(())
    });
    agent.stop_daemon();
    agent.restart_daemon();
    let channels = eventually("connected again", || agent.irc_channels());
    assert_eq!(
        channels,
        ["#general", "#ops", "#alerts"],
        "a part forgets it"
    );
}
