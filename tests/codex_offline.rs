//! The real `codex app-server`, offline against the in-repo fake Responses API
//! (`tests/support/fake_model.rs`): the JSON-RPC handshake and turns by hand, as
//! reference/codex-app-server.md observed them. A self-test of the fake and of the codex peer
//! setup, not of codexd.
//!
//! A missing codex prints a loud SKIP (fails under `CI=true`); `scripts/install-peers`
//! installs it.

#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use codex_peer::{AppServer, CodexConfig, CodexHome, codex_bin};
use fake_model::{FakeModel, Reply};

/// A codex app-server on an isolated CODEX_HOME, initialized, with one thread on a temp cwd.
struct Session {
    server: AppServer,
    thread_id: String,
    workdir: tempfile::TempDir,
    bin: PathBuf,
    home: CodexHome,
}

/// Spawns codex and does initialize → initialized, printing how long `initialize` took.
async fn spawn_initialized(bin: &Path, home: &CodexHome) -> AppServer {
    let spawned = Instant::now();
    let mut server = AppServer::spawn(bin, home);
    let init = server
        .request(
            "initialize",
            json!({"clientInfo": {"name": "codexd_test", "title": null, "version": "0.0.1"}}),
        )
        .await
        .expect("initialize");
    eprintln!(
        "codex: initialize answered {:?} after spawn",
        spawned.elapsed()
    );
    assert!(
        init["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("codexd_test/")),
        "{init}"
    );
    server.send(&json!({"method": "initialized"})).await;
    server
}

/// A session against `fake`: thread/start with `approvalPolicy: "never"` and `sandbox`.
async fn start_session(fake: &FakeModel, config: CodexConfig, sandbox: &str) -> Option<Session> {
    start_session_at(&fake.base_url(), config, sandbox).await
}

/// A session against the provider at `base_url`.
async fn start_session_at(base_url: &str, config: CodexConfig, sandbox: &str) -> Option<Session> {
    let bin = codex_bin()?;
    let home = CodexHome::new(base_url, &config);
    let workdir = tempfile::tempdir().expect("workdir");
    let mut server = spawn_initialized(&bin, &home).await;
    let started = Instant::now();
    let thread = server
        .request(
            "thread/start",
            json!({"cwd": workdir.path(), "approvalPolicy": "never", "sandbox": sandbox}),
        )
        .await
        .expect("thread/start");
    eprintln!("codex: thread/start took {:?}", started.elapsed());
    assert_eq!(thread["modelProvider"], "fake", "{thread}");
    assert_eq!(thread["model"], config.model.as_str(), "{thread}");
    let thread_id = thread["thread"]["id"]
        .as_str()
        .expect("thread id")
        .to_owned();
    Some(Session {
        server,
        thread_id,
        workdir,
        bin,
        home,
    })
}

impl Session {
    /// Closes codex (stdin EOF), starts a new process on the same CODEX_HOME and resumes
    /// the thread (`excludeTurns: true`, as a daemon should).
    async fn restart_and_resume(self) -> Session {
        let Session {
            server,
            thread_id,
            workdir,
            bin,
            home,
        } = self;
        assert!(server.close().await.success());
        let mut server = spawn_initialized(&bin, &home).await;
        let started = Instant::now();
        let resumed = server
            .request(
                "thread/resume",
                json!({"threadId": thread_id, "excludeTurns": true, "approvalPolicy": "never"}),
            )
            .await
            .expect("thread/resume");
        eprintln!("codex: thread/resume took {:?}", started.elapsed());
        assert_eq!(resumed["thread"]["id"], thread_id.as_str(), "{resumed}");
        Session {
            server,
            thread_id,
            workdir,
            bin,
            home,
        }
    }

    /// turn/start with one text input; returns the turn id.
    async fn start_turn(&mut self, text: &str) -> String {
        let result = self
            .server
            .request(
                "turn/start",
                json!({"threadId": self.thread_id, "input": [{"type": "text", "text": text}]}),
            )
            .await
            .expect("turn/start");
        result["turn"]["id"].as_str().expect("turn id").to_owned()
    }

    /// The `turn/completed` params of `turn_id`.
    async fn turn_completed(&mut self, turn_id: &str) -> Value {
        let message = self
            .server
            .wait_for("turn/completed", |m| {
                m["method"] == "turn/completed" && m["params"]["turn"]["id"] == turn_id
            })
            .await;
        message["params"].clone()
    }

    /// The completed items of type `kind` seen so far for `turn_id`.
    fn completed_items(&self, turn_id: &str, kind: &str) -> Vec<Value> {
        self.server
            .seen()
            .iter()
            .filter(|m| m["method"] == "item/completed" && m["params"]["turnId"] == turn_id)
            .map(|m| m["params"]["item"].clone())
            .filter(|item| item["type"] == kind)
            .collect()
    }

    /// The `error` notifications seen so far for `turn_id`.
    fn errors(&self, turn_id: &str) -> Vec<Value> {
        self.server
            .seen()
            .iter()
            .filter(|m| m["method"] == "error" && m["params"]["turnId"] == turn_id)
            .map(|m| m["params"].clone())
            .collect()
    }
}

/// The texts of the `role` messages in a Responses request's `input`.
fn texts(request: &Value, role: &str) -> Vec<String> {
    request["input"]
        .as_array()
        .expect("input array")
        .iter()
        .filter(|item| item["type"] == "message" && item["role"] == role)
        .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|part| part["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_text_turn_returns_the_scripted_text() {
    let fake = FakeModel::start(vec![Reply::text("hello from the fake model")]).await;
    let Some(mut session) = start_session(&fake, CodexConfig::default(), "read-only").await else {
        return;
    };
    let started = Instant::now();
    let turn_id = session.start_turn("say hi").await;
    let completed = session.turn_completed(&turn_id).await;
    eprintln!("codex: text turn took {:?}", started.elapsed());

    assert_eq!(completed["turn"]["status"], "completed", "{completed}");
    let messages = session.completed_items(&turn_id, "agentMessage");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["text"], "hello from the fake model");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["stream"], true);
    assert_eq!(requests[0]["model"], "fake-model");
    assert_eq!(
        texts(&requests[0], "user").last().map(String::as_str),
        Some("say hi")
    );
    let received = fake.received();
    assert_eq!(received[0].path, "/v1/responses");
    assert_eq!(received[0].header("authorization"), Some("Bearer dummy"));
    assert_eq!(received[0].header("originator"), Some("codexd_test"));

    assert!(session.server.close().await.success());
}

#[tokio::test]
async fn an_http_500_fails_the_turn() {
    let fake = FakeModel::start(vec![Reply::Status(500)]).await;
    let Some(mut session) = start_session(&fake, CodexConfig::default(), "read-only").await else {
        return;
    };
    let turn_id = session.start_turn("say hi").await;
    let completed = session.turn_completed(&turn_id).await;

    assert_eq!(completed["turn"]["status"], "failed", "{completed}");
    assert_eq!(
        completed["turn"]["error"]["codexErrorInfo"],
        "internalServerError"
    );
    let errors = session.errors(&turn_id);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["willRetry"], false);
    assert_eq!(errors[0]["error"]["codexErrorInfo"], "internalServerError");
    assert_eq!(fake.requests().len(), 1);
    assert!(session.server.close().await.success());
}

#[tokio::test]
async fn an_exec_call_runs_and_its_output_goes_back_to_the_model() {
    let script = vec![Reply::exec("echo hello-from-tool"), Reply::text("done")];
    let fake = FakeModel::start(script).await;
    let Some(mut session) = start_session(&fake, CodexConfig::default(), "read-only").await else {
        return;
    };
    let started = Instant::now();
    let turn_id = session.start_turn("run something").await;
    let completed = session.turn_completed(&turn_id).await;
    eprintln!("codex: exec turn took {:?}", started.elapsed());

    assert_eq!(completed["turn"]["status"], "completed", "{completed}");
    let commands = session.completed_items(&turn_id, "commandExecution");
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0]["status"], "completed", "{commands:?}");
    assert_eq!(commands[0]["exitCode"], 0);
    assert_eq!(commands[0]["aggregatedOutput"], "hello-from-tool\n");
    let messages = session.completed_items(&turn_id, "agentMessage");
    assert_eq!(messages.last().expect("a message")["text"], "done");

    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        2,
        "one request for the call, one with its output"
    );
    let input = requests[1]["input"].as_array().expect("input");
    let [.., call, output] = input.as_slice() else {
        panic!("input too short: {input:?}");
    };
    assert_eq!(call["type"], "function_call", "{call}");
    assert_eq!(call["name"], "exec_command");
    assert_eq!(output["type"], "function_call_output", "{output}");
    assert_eq!(output["call_id"], call["call_id"]);
    let text = output["output"].as_str().expect("output is a string");
    assert!(text.contains("hello-from-tool"), "{text}");
}

/// apply_patch in a `workspace-write` thread adds the file; `fileChange` item completed.
async fn patch_adds_a_file(model: &str) {
    let script = vec![
        Reply::patch("hello.txt", "hello from apply_patch"),
        Reply::text("patched"),
    ];
    let fake = FakeModel::start(script).await;
    let config = CodexConfig {
        model: model.to_owned(),
        ..CodexConfig::default()
    };
    let Some(mut session) = start_session(&fake, config, "workspace-write").await else {
        return;
    };
    let turn_id = session.start_turn("patch something").await;
    let completed = session.turn_completed(&turn_id).await;

    assert_eq!(completed["turn"]["status"], "completed", "{completed}");
    let changes = session.completed_items(&turn_id, "fileChange");
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["status"], "completed", "{changes:?}");
    assert_eq!(changes[0]["changes"][0]["kind"]["type"], "add");
    let written = std::fs::read_to_string(session.workdir.path().join("hello.txt"));
    assert_eq!(
        written.expect("hello.txt written"),
        "hello from apply_patch\n"
    );
    assert_eq!(fake.requests().len(), 2);
}

/// An unknown slug offers no apply_patch tool: the fake sends an `apply_patch` heredoc
/// through `exec_command`, which codex intercepts.
#[tokio::test]
async fn a_patch_through_exec_command_adds_the_file() {
    patch_adds_a_file("fake-model").await;
}

/// A bundled slug offers the freeform `apply_patch` tool: the fake sends a `custom_tool_call`.
#[tokio::test]
async fn a_patch_through_the_apply_patch_tool_adds_the_file() {
    patch_adds_a_file("gpt-5.5").await;
}

#[tokio::test]
async fn a_slow_stream_arrives_delta_by_delta() {
    let delay = Duration::from_millis(100);
    let script = vec![Reply::Slow {
        text: "one two three".to_owned(),
        delay,
    }];
    let fake = FakeModel::start(script).await;
    let Some(mut session) = start_session(&fake, CodexConfig::default(), "read-only").await else {
        return;
    };
    let started = Instant::now();
    let turn_id = session.start_turn("talk slowly").await;
    let completed = session.turn_completed(&turn_id).await;

    assert_eq!(completed["turn"]["status"], "completed", "{completed}");
    assert!(
        started.elapsed() >= delay * 4,
        "3 deltas and the completion, each delayed"
    );
    let deltas: Vec<Value> = session
        .server
        .seen()
        .iter()
        .filter(|m| m["method"] == "item/agentMessage/delta" && m["params"]["turnId"] == turn_id)
        .map(|m| m["params"]["delta"].clone())
        .collect();
    assert_eq!(deltas, ["one ", "two ", "three"]);
    let messages = session.completed_items(&turn_id, "agentMessage");
    assert_eq!(messages[0]["text"], "one two three");
}

#[tokio::test]
async fn a_stream_cut_before_completion_fails_the_turn() {
    let fake = FakeModel::start(vec![Reply::Cut("partial answer".to_owned())]).await;
    let Some(mut session) = start_session(&fake, CodexConfig::default(), "read-only").await else {
        return;
    };
    let turn_id = session.start_turn("say hi").await;
    let completed = session.turn_completed(&turn_id).await;

    assert_eq!(completed["turn"]["status"], "failed", "{completed}");
    let error = &completed["turn"]["error"];
    assert_eq!(error["codexErrorInfo"], "other", "{error}");
    assert_eq!(
        error["message"],
        "stream disconnected before completion: stream closed before response.completed"
    );
    let errors = session.errors(&turn_id);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["willRetry"], false);
}

#[tokio::test]
async fn a_dropped_connection_fails_the_turn() {
    let fake = FakeModel::start(vec![Reply::Drop]).await;
    let Some(mut session) = start_session(&fake, CodexConfig::default(), "read-only").await else {
        return;
    };
    let turn_id = session.start_turn("say hi").await;
    let completed = session.turn_completed(&turn_id).await;

    eprintln!(
        "codex: dropped connection -> {}",
        completed["turn"]["error"]
    );
    eprintln!("codex: errors {:?}", session.errors(&turn_id));
    assert_eq!(completed["turn"]["status"], "failed", "{completed}");
    assert_eq!(fake.requests().len(), 1);
}

/// A 500 retried by the stream layer (`stream_max_retries`) is announced as a non-final
/// `error` (`willRetry: true`, "Reconnecting... 1/1"); the retried request completes the turn.
#[tokio::test]
async fn a_500_retried_by_the_stream_layer_is_announced_and_not_final() {
    let fake = FakeModel::start(vec![Reply::Status(500), Reply::text("recovered")]).await;
    let config = CodexConfig {
        stream_max_retries: 1,
        ..CodexConfig::default()
    };
    let Some(mut session) = start_session(&fake, config, "read-only").await else {
        return;
    };
    let turn_id = session.start_turn("say hi").await;
    let completed = session.turn_completed(&turn_id).await;

    assert_eq!(completed["turn"]["status"], "completed", "{completed}");
    let errors = session.errors(&turn_id);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["willRetry"], true);
    assert_eq!(errors[0]["error"]["message"], "Reconnecting... 1/1");
    assert_eq!(
        errors[0]["error"]["codexErrorInfo"],
        json!({"responseStreamDisconnected": {"httpStatusCode": null}})
    );
    let messages = session.completed_items(&turn_id, "agentMessage");
    assert_eq!(messages.last().expect("a message")["text"], "recovered");
    assert_eq!(fake.requests().len(), 2);
}

/// A 500 retried by the request layer (`request_max_retries`) is silent: no `error`
/// notification at all.
#[tokio::test]
async fn a_500_retried_by_the_request_layer_is_silent() {
    let fake = FakeModel::start(vec![Reply::Status(500), Reply::text("recovered")]).await;
    let config = CodexConfig {
        request_max_retries: 1,
        ..CodexConfig::default()
    };
    let Some(mut session) = start_session(&fake, config, "read-only").await else {
        return;
    };
    let turn_id = session.start_turn("say hi").await;
    let completed = session.turn_completed(&turn_id).await;

    assert_eq!(completed["turn"]["status"], "completed", "{completed}");
    assert_eq!(session.errors(&turn_id), Vec::<Value>::new());
    let messages = session.completed_items(&turn_id, "agentMessage");
    assert_eq!(messages.last().expect("a message")["text"], "recovered");
    assert_eq!(fake.requests().len(), 2);
}

/// A refused connection is not an HTTP error: even with retries off, codex announces
/// "Reconnecting... waiting for network" (`willRetry: true`) and keeps the turn active,
/// retrying with a growing delay (observed 5, 10, 20, 40, then 60 s each; still retrying
/// after 300 s), until it is interrupted. A daemon needs its own turn deadline.
#[tokio::test]
async fn an_unreachable_model_keeps_the_turn_waiting_until_interrupted() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local addr").port()
    };
    let base_url = format!("http://127.0.0.1:{closed_port}/v1");
    let Some(mut session) = start_session_at(&base_url, CodexConfig::default(), "read-only").await
    else {
        return;
    };
    let turn_id = session.start_turn("say hi").await;
    let error = session.server.wait_notification("error").await;

    assert_eq!(error["params"]["turnId"], turn_id.as_str(), "{error}");
    assert_eq!(error["params"]["willRetry"], true, "{error}");
    assert_eq!(
        error["params"]["error"]["message"],
        "Reconnecting... waiting for network"
    );
    let interrupted = session
        .server
        .request(
            "turn/interrupt",
            json!({"threadId": session.thread_id, "turnId": turn_id}),
        )
        .await;
    assert_eq!(interrupted, Ok(json!({})));
    let completed = session.turn_completed(&turn_id).await;
    assert_eq!(completed["turn"]["status"], "interrupted", "{completed}");
}

/// A new codex process resumes the thread from CODEX_HOME and sends the earlier turn to the
/// model with the new prompt.
#[tokio::test]
async fn a_resumed_thread_sends_the_earlier_turns() {
    let script = vec![Reply::text("noted"), Reply::text("banana")];
    let fake = FakeModel::start(script).await;
    let Some(mut session) = start_session(&fake, CodexConfig::default(), "read-only").await else {
        return;
    };
    let turn_id = session.start_turn("remember the word banana").await;
    session.turn_completed(&turn_id).await;

    let mut session = session.restart_and_resume().await;
    let turn_id = session.start_turn("which word?").await;
    let completed = session.turn_completed(&turn_id).await;

    assert_eq!(completed["turn"]["status"], "completed", "{completed}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let users = texts(&requests[1], "user");
    let [.., first, second] = users.as_slice() else {
        panic!("user messages: {users:?}");
    };
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("remember the word banana", "which word?")
    );
    assert_eq!(texts(&requests[1], "assistant"), ["noted"]);
    assert!(session.server.close().await.success());
}
