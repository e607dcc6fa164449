//! The process against a scripted fake app-server (python3, stdlib only). Real processes and
//! real time: every wait has a deadline, nothing sleeps and then asserts.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::codex::jsonrpc::{INVALID_REQUEST, Malformed, Outstanding, RequestId, RpcError};

/// Scenarios, chosen by the first argument:
///
/// | scenario   | behaviour                                                                   |
/// |------------|-----------------------------------------------------------------------------|
/// | `normal`   | a notification and a garbage line, then answers requests until stdin EOF   |
/// | `crash`    | a notification, a panic on stderr, half a line, exit 3                     |
/// | `term`     | starts a `sleep` grandchild, ignores stdin EOF, dies on SIGTERM            |
/// | `stubborn` | as `term`, but SIGTERM is ignored (by the grandchild too)                   |
///
/// `normal` methods: `initialize` (answers nick, cwd, `$FAKE_EXTRA`), `big` (a notification
/// of `params.bytes` bytes, then a result), `ask` (a server request `item/tool/call`, then
/// answers with the reply it got); anything else gets codex's -32600.
const FAKE_APP_SERVER: &str = r#"
import json, os, signal, subprocess, sys, time
scenario = sys.argv[1]
out = sys.stdout.buffer
def send(obj):
    out.write(json.dumps(obj).encode() + b"\n")
    out.flush()
def err(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
err("fake app-server " + scenario + " starting")
if scenario == "crash":
    send({"method": "turn/started", "params": {"threadId": "t"}})
    err("thread 'main' panicked at fake.rs:1")
    out.write(b'{"method":"item/sta')
    out.flush()
    os._exit(3)
if scenario in ("term", "stubborn"):
    if scenario == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "300"])
    send({"method": "ready", "params": {"grandchild": child.pid}})
    while True:
        time.sleep(1)
send({"method": "remoteControl/status/changed", "params": {"status": "disabled"}, "emittedAtMs": 1})
out.write(b"this line is not json\n")
out.flush()
while True:
    line = sys.stdin.buffer.readline()
    if not line:
        break
    msg = json.loads(line)
    method, id = msg.get("method"), msg.get("id")
    if method == "initialize":
        env = os.environ
        send({"id": id, "result": {"nick": env.get("CULTURE_NICK"), "cwd": os.getcwd(), "extra": env.get("FAKE_EXTRA")}})
    elif method == "big":
        send({"method": "item/agentMessage/delta", "params": {"delta": "x" * msg["params"]["bytes"]}})
        send({"id": id, "result": {}})
    elif method == "ask":
        send({"id": 0, "method": "item/tool/call", "params": {"tool": "nope"}})
        send({"id": id, "result": {"reply": json.loads(sys.stdin.buffer.readline())}})
    elif id is not None:
        send({"id": id, "error": {"code": -32600, "message": "Invalid request: unknown variant `" + method + "`"}})
err("stdin closed, bye")
"#;

/// A deadline for anything a fake does in response to us.
const PATIENCE: Duration = Duration::from_secs(20);
/// Short stop steps for fakes that ignore them.
const QUICK: Grace = Grace {
    eof: Duration::from_millis(200),
    term: Duration::from_millis(200),
};

fn fake(scenario: &str) -> CodexCommand {
    let mut command = CodexCommand::new("/usr/bin/python3", "spark-alpha");
    command.args = vec!["-c".into(), FAKE_APP_SERVER.into(), scenario.into()];
    command
}

struct Fake {
    process: Option<CodexChild>,
    events: mpsc::UnboundedReceiver<ProcessEvent>,
    outstanding: Outstanding<()>,
}

impl Fake {
    fn spawn(command: &CodexCommand) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let process = CodexChild::spawn(command, move |event| tx.send(event).is_ok())
            .expect("the fake starts");
        Self {
            process: Some(process),
            events,
            outstanding: Outstanding::new(),
        }
    }

    fn process(&self) -> &CodexChild {
        self.process.as_ref().expect("not stopped yet")
    }

    async fn stop(&mut self, grace: Grace) -> ProcessExit {
        self.process
            .take()
            .expect("not stopped yet")
            .stop(grace)
            .await
    }

    async fn next(&mut self) -> ProcessEvent {
        let event = tokio::time::timeout(PATIENCE, self.events.recv()).await;
        event.expect("an event in time").expect("the sink is open")
    }

    async fn message(&mut self) -> Incoming {
        match self.next().await {
            ProcessEvent::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    async fn exited(&mut self) -> ProcessExit {
        loop {
            if let ProcessEvent::Exited(exit) = self.next().await {
                return exit;
            }
        }
    }

    /// Sends a request and returns the result of its response (other messages are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, RpcError> {
        let deadline = Instant::now() + PATIENCE;
        let request = self.outstanding.start(method, Some(params), deadline, ());
        self.process().send(&request).expect("queued");
        loop {
            if let Incoming::Response { id, outcome } = self.message().await {
                assert!(self.outstanding.resolve(&id).is_some(), "{id} was pending");
                return outcome;
            }
        }
    }
}

/// The process state letter from `/proc/<pid>/stat`, `None` once the pid is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Polls until `pid` is gone or a zombie (reparented grandchildren are init's to reap).
async fn dead(pid: u32) -> Option<char> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = proc_state(pid);
        if matches!(state, None | Some('Z')) || Instant::now() >= deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_session_survives_garbage_and_gets_env_cwd_and_replies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = fake("normal");
    command.cwd = Some(dir.path().to_path_buf());
    command.env = vec![
        ("FAKE_EXTRA".into(), "42".into()),
        ("CULTURE_NICK".into(), "wrong".into()),
    ];
    let mut fake = Fake::spawn(&command);

    let Incoming::Notification { method, .. } = fake.message().await else {
        panic!("expected the greeting notification");
    };
    assert_eq!(method, "remoteControl/status/changed");
    let Incoming::Garbage { line, error } = fake.message().await else {
        panic!("expected the garbage line");
    };
    assert_eq!(line, "this line is not json");
    assert!(matches!(error, Malformed::NotJson(_)));

    let cwd = dir
        .path()
        .canonicalize()
        .expect("cwd")
        .display()
        .to_string();
    let init = fake.call("initialize", json!({})).await;
    assert_eq!(
        init,
        Ok(json!({"nick": "spark-alpha", "cwd": cwd, "extra": "42"}))
    );
    let unknown = fake
        .call("no/such/method", json!({}))
        .await
        .expect_err("rejected");
    assert_eq!(unknown.code, INVALID_REQUEST);

    let exit = fake.stop(Grace::default()).await;
    assert_eq!(
        (exit.status, exit.ended),
        (ExitStatus::Code(0), Ended::StdinClosed)
    );
    assert!(exit.stderr.contains("stdin closed, bye"), "{}", exit.stderr);
    assert!(matches!(fake.exited().await.ended, Ended::StdinClosed));
}

#[tokio::test]
async fn a_ten_mib_line_arrives_whole() {
    let mut fake = Fake::spawn(&fake("normal"));
    let bytes = 10 * 1024 * 1024;
    let request = fake.outstanding.start(
        "big",
        Some(json!({"bytes": bytes})),
        Instant::now() + PATIENCE,
        (),
    );
    fake.process().send(&request).expect("queued");
    let params = loop {
        match fake.message().await {
            Incoming::Notification { method, params } if method == "item/agentMessage/delta" => {
                break params;
            }
            _ => {}
        }
    };
    assert_eq!(params["delta"].as_str().map(str::len), Some(bytes));
    assert!(matches!(
        fake.message().await,
        Incoming::Response { outcome: Ok(_), .. }
    ));
    fake.stop(Grace::default()).await;
}

#[tokio::test]
async fn a_line_over_the_limit_is_garbage_and_the_session_goes_on() {
    let mut command = fake("normal");
    command.max_line = 64 * 1024;
    let mut fake = Fake::spawn(&command);
    let request = fake.outstanding.start(
        "big",
        Some(json!({"bytes": 100_000})),
        Instant::now() + PATIENCE,
        (),
    );
    fake.process().send(&request).expect("queued");
    loop {
        match fake.message().await {
            Incoming::Garbage {
                line,
                error: Malformed::TooLong(len),
            } => {
                assert!(len > 100_000 && line.len() <= 64 * 1024 + 1024, "{len}");
                break;
            }
            Incoming::Notification { .. } | Incoming::Garbage { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(matches!(
        fake.message().await,
        Incoming::Response { outcome: Ok(_), .. }
    ));
    fake.stop(Grace::default()).await;
}

#[tokio::test]
async fn an_unknown_server_request_is_answered_with_an_error() {
    let mut fake = Fake::spawn(&fake("normal"));
    let request = fake
        .outstanding
        .start("ask", None, Instant::now() + PATIENCE, ());
    fake.process().send(&request).expect("queued");
    let (id, method) = loop {
        if let Incoming::ServerRequest { id, method, .. } = fake.message().await {
            break (id, method);
        }
    };
    assert_eq!(
        (&id, method.as_str()),
        (&RequestId::Int(0), "item/tool/call")
    );
    fake.process()
        .send(&Outgoing::method_not_found(id, &method))
        .expect("queued");
    let Incoming::Response { outcome, .. } = fake.message().await else {
        panic!("expected the ask result");
    };
    let reply = json!({"id": 0, "error": {"code": -32601, "message": "unsupported by this client: item/tool/call"}});
    assert_eq!(outcome, Ok(json!({"reply": reply})));
    fake.stop(Grace::default()).await;
}

#[tokio::test]
async fn a_crash_mid_stream_delivers_every_line_then_the_exit_code() {
    let mut fake = Fake::spawn(&fake("crash"));
    assert!(matches!(
        fake.message().await,
        Incoming::Notification { .. }
    ));
    let Incoming::Garbage { line, .. } = fake.message().await else {
        panic!("expected the half line");
    };
    assert_eq!(line, r#"{"method":"item/sta"#);
    let exit = fake.exited().await;
    assert_eq!(
        (exit.status.clone(), exit.ended),
        (ExitStatus::Code(3), Ended::OnItsOwn)
    );
    assert!(
        exit.stderr.contains("panicked at fake.rs:1"),
        "{}",
        exit.stderr
    );
    assert_eq!(proc_state(fake.process().pid()), None, "reaped");
    assert_eq!(
        fake.process().send(&Outgoing::notification("x", None)),
        Err(SendError::Closed)
    );
    assert_eq!(
        fake.stop(QUICK).await,
        exit,
        "stop after a crash reports the crash"
    );
}

/// Waits for the `ready` notification and returns the grandchild's pid.
async fn ready(fake: &mut Fake) -> u32 {
    let Incoming::Notification { method, params } = fake.message().await else {
        panic!("expected ready");
    };
    assert_eq!(method, "ready");
    let grandchild = params["grandchild"].as_u64().expect("a pid");
    u32::try_from(grandchild).expect("a pid")
}

#[tokio::test]
async fn sigterm_stops_a_child_that_ignores_stdin_eof() {
    let mut fake = Fake::spawn(&fake("term"));
    let grandchild = ready(&mut fake).await;
    let pid = fake.process().pid();
    let exit = fake.stop(QUICK).await;
    assert_eq!(
        (exit.status, exit.ended),
        (ExitStatus::Signal(15), Ended::Terminated)
    );
    assert_eq!(proc_state(pid), None, "reaped");
    assert!(
        matches!(dead(grandchild).await, None | Some('Z')),
        "the group got SIGTERM"
    );
}

#[tokio::test]
async fn sigkill_stops_a_child_that_ignores_eof_and_sigterm_and_it_is_reaped() {
    let mut fake = Fake::spawn(&fake("stubborn"));
    let grandchild = ready(&mut fake).await;
    let pid = fake.process().pid();
    assert!(
        matches!(proc_state(pid), Some('S' | 'R')),
        "running before the stop"
    );
    let started = Instant::now();
    let exit = fake.stop(QUICK).await;
    let took = started.elapsed();
    assert_eq!(
        (exit.status, exit.ended),
        (ExitStatus::Signal(9), Ended::Killed)
    );
    assert!(took >= QUICK.eof + QUICK.term, "{took:?}");
    assert!(took < QUICK.eof + QUICK.term + DRAIN, "{took:?}");
    assert_eq!(proc_state(pid), None, "reaped: no zombie");
    assert!(
        matches!(dead(grandchild).await, None | Some('Z')),
        "the group got SIGKILL"
    );
    assert!(matches!(fake.exited().await.ended, Ended::Killed));
}

#[tokio::test]
async fn dropping_the_handle_kills_and_reaps() {
    let mut fake = Fake::spawn(&fake("stubborn"));
    ready(&mut fake).await;
    let pid = fake.process().pid();
    drop(fake.process.take());
    let ProcessEvent::Exited(exit) = tokio::time::timeout(PATIENCE, fake.events.recv())
        .await
        .expect("an exit in time")
        .expect("the sink is open")
    else {
        panic!("expected the exit");
    };
    assert_eq!(
        (exit.status, exit.ended),
        (ExitStatus::Signal(9), Ended::Killed)
    );
    assert_eq!(proc_state(pid), None, "reaped: no zombie");
}

#[tokio::test]
async fn a_missing_binary_or_cwd_is_a_clear_error() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let command = CodexCommand::new("/nonexistent/bin/codex", "spark-alpha");
    let sink = move |event| tx.send(event).is_ok();
    let error = CodexChild::spawn(&command, sink.clone()).expect_err("no such binary");
    assert!(
        matches!(&error, SpawnError::Program { source, .. } if source.kind() == io::ErrorKind::NotFound)
    );
    let text = error.to_string();
    assert!(text.contains("/nonexistent/bin/codex"), "{text}");

    let mut command = fake("normal");
    command.cwd = Some("/nonexistent/work".into());
    let error = CodexChild::spawn(&command, sink).expect_err("no such directory");
    assert!(matches!(error, SpawnError::Cwd { .. }));
    assert!(error.to_string().contains("/nonexistent/work"), "{error}");
}

#[tokio::test]
async fn a_child_that_does_not_read_backs_up_its_queue_and_still_stops() {
    let mut fake = Fake::spawn(&fake("stubborn"));
    ready(&mut fake).await;
    let filler = Outgoing::notification("fill", Some(json!("x".repeat(1024))));
    let sent = (0..10_000)
        .map(|_| fake.process().send(&filler))
        .position(|sent| sent == Err(SendError::Backlogged));
    assert!(sent.is_some_and(|n| n >= STDIN_QUEUE), "{sent:?}");
    let exit = fake.stop(QUICK).await;
    assert_eq!(
        (exit.status, exit.ended),
        (ExitStatus::Signal(9), Ended::Killed)
    );
}
