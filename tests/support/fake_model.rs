//! A loopback fake of the OpenAI **Responses API** for driving the real `codex app-server`
//! offline (reference/codex-app-server.md §9). A hand-written HTTP/1.1 server on a tokio
//! `TcpListener` at 127.0.0.1:0: one request per connection, every answer `connection: close`.
//!
//! Every request is recorded (method, path, headers, JSON body). Each `POST …/responses`
//! is answered by the first of these that applies:
//!
//! | source                        | applies to a request …                                  |
//! |-------------------------------|---------------------------------------------------------|
//! | [`FakeModel::when`] rules     | whose last user message contains the needle, unless it  |
//! |                               | ends with a tool's output; the rule is used up          |
//! | [`FakeModel::when_always`]    | the same, and the rule stays (rules: insertion order)   |
//! | the script                    | any: the next scripted [`Reply`]                        |
//! | the fallback                  | any: [`FakeModel::set_fallback`]'s reply, else `Text("ok")` |
//!
//! A tool call is one reply: codex runs the tool and asks again with its output, and that
//! second request takes the next reply. Any other path gets a 404 (codex 0.169 sends none).
//!
//! The script is per request, in arrival order, not per turn: a turn whose codex is stopped
//! or killed before its request arrives (codex answers `turn/start` and sends `turn/started`
//! before the request goes out) leaves its reply to the next request, such as that turn's
//! replay on the next codex. To cut a turn off in the middle of its reply, wait for
//! [`FakeModel::deltas`] (its reply is streaming) before stopping codex.
//!
//! | reply         | what codex receives                                                     |
//! |---------------|-------------------------------------------------------------------------|
//! | `Text(t)`     | SSE: created, message added, one delta per word, message done, completed |
//! | `Slow{t,d}`   | the same, sleeping `d` before each delta and before `completed`           |
//! | `Exec{cmd,…}` | SSE: an `exec_command` function call (optionally `require_escalated`)    |
//! | `Patch{…}`    | an apply_patch that adds a file: the `apply_patch` tool if the request    |
//! |               | offers it, else an `exec_command` heredoc that codex intercepts           |
//! | `Status(s)`   | HTTP status `s` with an OpenAI-style JSON error body                      |
//! | `Cut(t)`      | the text stream, then the connection closes before `response.completed`  |
//! | `Calls(v)`    | SSE: one `function_call` per `(name, arguments)`, in one response (a client's dynamic tools) |
//! | `Drop`        | the connection closes without any response                              |
//! | `Held{t,gate}`| `Text(t)` paused after the first word's delta until the [`Gate`] opens;  |
//! |               | a client that hangs up meanwhile ends the connection quietly             |
//!
//! Real time only: do not combine with `#[tokio::test(start_paused = true)]`.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Hang detector for [`FakeModel::wait_requests`]: not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// The answer to one model request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A streamed assistant message.
    Text(String),
    /// A streamed assistant message with `delay` before each delta and before completion.
    Slow { text: String, delay: Duration },
    /// An `exec_command` call of `cmd`; `escalate: Some(justification)` asks to run it
    /// outside the sandbox (`sandbox_permissions: "require_escalated"`).
    Exec {
        cmd: String,
        escalate: Option<String>,
    },
    /// An apply_patch that adds `path` (relative to the thread's cwd) holding `contents`.
    Patch { path: String, contents: String },
    /// An HTTP error status.
    Status(u16),
    /// The text stream, cut before `response.completed`.
    Cut(String),
    /// The connection closed without a response.
    Drop,
    /// A turn that runs `cmd` and answers with its output: an `exec_command` call of `cmd`,
    /// unless the request ends with a tool's output, which is then answered as the text
    /// `tool said: <output lines joined by " | ">`. As a fallback it serves any number of
    /// concurrent agents, each turn in its own two requests.
    ToolEcho(String),
    /// Function calls of the tools named, with these arguments, all in one response (the
    /// tools a client declared with `dynamicTools`; several make parallel calls).
    Calls(Vec<(String, Value)>),
    /// A turn that calls `tool` with `arguments` and then answers `text`: the call, unless
    /// the request ends with a tool's output, which is then answered with `text`. As a
    /// fallback it serves any number of concurrent agents, each turn in two requests.
    CallThen {
        tool: String,
        arguments: Value,
        text: String,
    },
    /// A streamed assistant message held after its first word's delta until `gate` opens
    /// (a turn caught mid-stream, to steer or interrupt); [`FakeModel::held`] counts it
    /// while it waits.
    Held { text: String, gate: Gate },
}

impl Reply {
    pub fn text(text: &str) -> Reply {
        Reply::Text(text.to_owned())
    }

    pub fn exec(cmd: &str) -> Reply {
        Reply::Exec {
            cmd: cmd.to_owned(),
            escalate: None,
        }
    }

    /// One call of the tool `name` with `arguments`.
    pub fn call(name: &str, arguments: Value) -> Reply {
        Reply::Calls(vec![(name.to_owned(), arguments)])
    }

    pub fn patch(path: &str, contents: &str) -> Reply {
        Reply::Patch {
            path: path.to_owned(),
            contents: contents.to_owned(),
        }
    }

    /// `text`, streamed up to its first word's delta and held there until `gate` opens.
    pub fn held(text: &str, gate: &Gate) -> Reply {
        Reply::Held {
            text: text.to_owned(),
            gate: gate.clone(),
        }
    }
}

/// Lets [`Reply::Held`] streams go on: every clone is the same gate, and once opened it
/// stays open (a stream that reaches it later passes at once).
#[derive(Clone, Debug)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate(Arc::new(watch::Sender::new(false)))
    }

    /// Opens the gate for every stream held at it, now and later.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    /// Whether [`Gate::open`] was called.
    pub fn is_open(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once the gate is open.
    pub async fn wait(&self) {
        let mut open = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = open.wait_for(|open| *open).await;
    }
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new()
    }
}

/// One HTTP request as the fake read it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `Value::Null` when empty or not JSON.
    pub body: Value,
    /// When its body had been read.
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    fn is_responses(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/responses")
    }
}

/// The running fake; its listener and connections are closed on drop.
pub struct FakeModel {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    accept: JoinHandle<()>,
}

/// A reply for requests whose last user message contains `needle`.
struct Rule {
    needle: String,
    reply: Reply,
    /// Stays after a match ([`FakeModel::when_always`]); else used up by it.
    always: bool,
}

#[derive(Default)]
struct Shared {
    /// Checked before the script, in insertion order.
    rules: Vec<Rule>,
    script: VecDeque<Reply>,
    received: Vec<Request>,
    /// The answer once the script is empty; `None` means `Text("ok")`.
    fallback: Option<Reply>,
    /// Numbers the ids of responses, items and calls.
    next_id: u64,
    /// Text deltas written, every stream together.
    deltas: usize,
    /// Streams waiting at a [`Gate`] now.
    held: usize,
}

impl Shared {
    /// The reply to a model request: the first matching rule (used up unless `always`),
    /// else the next scripted reply, else the fallback.
    fn reply_to(&mut self, request: &Value) -> Reply {
        let matching = match last_user_text(request) {
            Some(text) if !ends_with_tool_output(request) => self
                .rules
                .iter()
                .position(|rule| text.contains(&rule.needle)),
            _ => None,
        };
        if let Some(index) = matching {
            if self.rules[index].always {
                return self.rules[index].reply.clone();
            }
            return self.rules.remove(index).reply;
        }
        match self.script.pop_front() {
            Some(reply) => reply,
            None => self.fallback.clone().unwrap_or_else(|| Reply::text("ok")),
        }
    }
}

impl FakeModel {
    pub async fn start(script: Vec<Reply>) -> FakeModel {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Mutex::new(Shared {
            script: script.into(),
            ..Shared::default()
        }));
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        FakeModel {
            port,
            shared,
            accept,
        }
    }

    /// The provider `base_url` for codex's config (`…/v1`; codex appends `/responses`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: Reply) {
        self.lock().script.push_back(reply);
    }

    /// Answers the next model request whose last user message contains `needle` (and that
    /// does not end with a tool's output) with `reply`, ahead of the script; used up by it.
    pub fn when(&self, needle: &str, reply: Reply) {
        self.add_rule(needle, reply, false);
    }

    /// Like [`FakeModel::when`], but answers every such request, not only the next.
    pub fn when_always(&self, needle: &str, reply: Reply) {
        self.add_rule(needle, reply, true);
    }

    fn add_rule(&self, needle: &str, reply: Reply, always: bool) {
        self.lock().rules.push(Rule {
            needle: needle.to_owned(),
            reply,
            always,
        });
    }

    /// Sets the answer to every model request once the script is empty (else `Text("ok")`).
    pub fn set_fallback(&self, reply: Reply) {
        self.lock().fallback = Some(reply);
    }

    /// The JSON bodies of the model (`POST …/responses`) requests so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.lock()
            .received
            .iter()
            .filter(|request| request.is_responses())
            .map(|request| request.body.clone())
            .collect()
    }

    /// The recorded request bodies with a user message containing `needle`, in order.
    pub fn requests_with(&self, needle: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|request| user_texts(request).iter().any(|t| t.contains(needle)))
            .collect()
    }

    /// How many text deltas have been written so far, every stream together: one means a
    /// reply is streaming, so the request it answers did arrive.
    pub fn deltas(&self) -> usize {
        self.lock().deltas
    }

    /// How many [`Reply::Held`] streams are waiting at their gate now: one means that
    /// turn is mid-stream.
    pub fn held(&self) -> usize {
        self.lock().held
    }

    /// Every HTTP request so far, model or not, in order.
    pub fn received(&self) -> Vec<Request> {
        self.lock().received.clone()
    }

    /// Waits until at least `n` model requests arrived; panics after [`PATIENCE`].
    pub async fn wait_requests(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "fake model: waited for {n} requests, got {}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().expect("fake model lock")
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        // Dropping the accept task's JoinSet aborts every connection task.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(serve(stream, Arc::clone(&shared)));
    }
}

/// Reads one request, records it, and answers it.
async fn serve(stream: TcpStream, shared: Arc<Mutex<Shared>>) {
    let mut stream = BufReader::new(stream);
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let (reply, ids) = {
        let mut shared = shared.lock().expect("fake model lock");
        let reply = request
            .is_responses()
            .then(|| shared.reply_to(&request.body));
        shared.next_id += 1;
        let ids = Ids(shared.next_id);
        shared.received.push(request.clone());
        (reply, ids)
    };
    let stream = stream.get_mut();
    let _ = match reply {
        None => write_status(stream, 404).await,
        Some(reply) => answer(stream, reply, &request.body, ids, &shared).await,
    };
    let _ = stream.shutdown().await;
}

/// Request line, headers, and a `content-length` or chunked body; `None` on EOF or garbage.
async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    stream.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| headers.iter().find(|(key, _)| key == name).map(|h| &h.1);
    let body = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(stream).await?
    } else {
        let length = find("content-length").map_or(Ok(0), |v| v.parse::<usize>());
        let mut body = vec![0; length.ok()?];
        stream.read_exact(&mut body).await.ok()?;
        body
    };
    Some(Request {
        method,
        path,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        headers,
        at: Instant::now(),
    })
}

async fn read_chunked(stream: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok()?;
        let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; size + 2]; // the chunk and its CRLF
        stream.read_exact(&mut chunk).await.ok()?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

async fn answer(
    stream: &mut TcpStream,
    reply: Reply,
    request: &Value,
    ids: Ids,
    shared: &Mutex<Shared>,
) -> std::io::Result<()> {
    match reply {
        Reply::Text(text) => stream_text(stream, shared, &ids, &text, Pace::PLAIN).await,
        Reply::Slow { text, delay } => {
            let pace = Pace {
                delay,
                ..Pace::PLAIN
            };
            stream_text(stream, shared, &ids, &text, pace).await
        }
        Reply::Cut(text) => {
            let pace = Pace {
                complete: false,
                ..Pace::PLAIN
            };
            stream_text(stream, shared, &ids, &text, pace).await
        }
        Reply::Held { text, gate } => {
            let pace = Pace {
                gate: Some(gate),
                ..Pace::PLAIN
            };
            stream_text(stream, shared, &ids, &text, pace).await
        }
        Reply::Exec { cmd, escalate } => {
            let mut arguments = json!({"cmd": cmd, "yield_time_ms": 10_000});
            if let Some(justification) = escalate {
                arguments["sandbox_permissions"] = json!("require_escalated");
                arguments["justification"] = json!(justification);
            }
            stream_item(stream, &ids, ids.function_call("exec_command", &arguments)).await
        }
        Reply::Patch { path, contents } => {
            let item = patch_call(&ids, request, &add_file_patch(&path, &contents));
            stream_item(stream, &ids, item).await
        }
        Reply::Calls(calls) => {
            let items = calls
                .iter()
                .enumerate()
                .map(|(n, (name, arguments))| ids.numbered_call(n, name, arguments))
                .collect();
            stream_items(stream, &ids, items).await
        }
        Reply::Status(status) => write_status(stream, status).await,
        Reply::Drop => Ok(()),
        Reply::CallThen {
            tool,
            arguments,
            text,
        } => {
            let reply = match tool_output(request) {
                Some(_) => Reply::Text(text),
                None => Reply::Calls(vec![(tool, arguments)]),
            };
            Box::pin(answer(stream, reply, request, ids, shared)).await
        }
        Reply::ToolEcho(cmd) => {
            let reply = match tool_output(request) {
                Some(output) => Reply::Text(format!("tool said: {output}")),
                None => Reply::exec(&cmd),
            };
            Box::pin(answer(stream, reply, request, ids, shared)).await
        }
    }
}

/// Whether the request's last input item is a tool's output (a tool call's follow-up).
fn ends_with_tool_output(request: &Value) -> bool {
    let last = request["input"].as_array().and_then(|input| input.last());
    last.is_some_and(|item| {
        item["type"] == "function_call_output" || item["type"] == "custom_tool_call_output"
    })
}

/// The command output in the request's last input item, if it is a tool's output: the
/// lines after codex's `Output:` header, joined by ` | `.
fn tool_output(request: &Value) -> Option<String> {
    let last = request["input"].as_array()?.last()?;
    if last["type"] != "function_call_output" {
        return None;
    }
    let text = last["output"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| last["output"].to_string());
    let body = text
        .split_once("Output:\n")
        .map_or(text.as_str(), |(_, b)| b);
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Some(lines.join(" | "))
}

/// The patch that creates `path` with `contents` (one `+` line per line).
fn add_file_patch(path: &str, contents: &str) -> String {
    let lines: String = contents.lines().map(|line| format!("+{line}\n")).collect();
    format!("*** Begin Patch\n*** Add File: {path}\n{lines}*** End Patch\n")
}

/// The call that applies `patch`, shaped by how the request offers `apply_patch`:
///
/// | request's `tools`                    | output item                                  |
/// |--------------------------------------|----------------------------------------------|
/// | `{"type":"custom","name":"apply_patch"}`   | `custom_tool_call` with `input: patch`  |
/// | `{"type":"function","name":"apply_patch"}` | `function_call` with `{"input": patch}` |
/// | none (e.g. an unknown model slug)    | `exec_command` of an `apply_patch` heredoc   |
fn patch_call(ids: &Ids, request: &Value, patch: &str) -> Value {
    let offered = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|tool| tool["name"] == "apply_patch");
    match offered.map(|tool| tool["type"].as_str()) {
        Some(Some("custom")) => json!({
            "type": "custom_tool_call",
            "id": ids.item(),
            "call_id": ids.call(),
            "name": "apply_patch",
            "input": patch,
        }),
        Some(_) => ids.function_call("apply_patch", &json!({"input": patch})),
        None => {
            let cmd = format!("apply_patch <<'EOF'\n{patch}EOF\n");
            ids.function_call("exec_command", &json!({"cmd": cmd}))
        }
    }
}

/// Ids for one request's response, item and call.
struct Ids(u64);

impl Ids {
    fn response(&self) -> String {
        format!("resp_fake{}", self.0)
    }

    fn item(&self) -> String {
        format!("msg_fake{}", self.0)
    }

    fn call(&self) -> String {
        format!("call_fake{}", self.0)
    }

    /// The `n`th function call of a response (`call_fake<request>_<n>`).
    fn numbered_call(&self, n: usize, name: &str, arguments: &Value) -> Value {
        json!({
            "type": "function_call",
            "id": format!("fc_fake{}_{n}", self.0),
            "call_id": format!("call_fake{}_{n}", self.0),
            "name": name,
            "arguments": arguments.to_string(),
        })
    }

    fn function_call(&self, name: &str, arguments: &Value) -> Value {
        json!({
            "type": "function_call",
            "id": format!("fc_fake{}", self.0),
            "call_id": self.call(),
            "name": name,
            "arguments": arguments.to_string(),
        })
    }
}

/// How [`stream_text`] paces a message.
///
/// | field      | effect                                                            |
/// |------------|-------------------------------------------------------------------|
/// | `delay`    | slept before each delta and before `response.completed`           |
/// | `complete` | `false` cuts the stream before `response.completed`               |
/// | `gate`     | `Some`: after the first word's delta, wait until the gate opens   |
struct Pace {
    delay: Duration,
    complete: bool,
    gate: Option<Gate>,
}

impl Pace {
    /// Every delta at once, then `response.completed`.
    const PLAIN: Pace = Pace {
        delay: Duration::ZERO,
        complete: true,
        gate: None,
    };
}

/// One assistant message, streamed word by word (`"say hi"` → deltas `"say "`, `"hi"`),
/// each delta counted in `shared` once written, paced by `pace`.
async fn stream_text(
    stream: &mut TcpStream,
    shared: &Mutex<Shared>,
    ids: &Ids,
    text: &str,
    pace: Pace,
) -> std::io::Result<()> {
    let item = ids.item();
    write_sse_head(stream).await?;
    send_event(stream, created(ids)).await?;
    let added = json!({
        "type": "response.output_item.added", "output_index": 0, "item": message(&item, json!([])),
    });
    send_event(stream, added).await?;
    let mut words = text.split_inclusive(' ');
    if let Some(first) = words.next() {
        send_delta(stream, shared, &item, first, pace.delay).await?;
    }
    if let Some(gate) = &pace.gate {
        hold(stream, shared, gate).await?;
    }
    for word in words {
        send_delta(stream, shared, &item, word, pace.delay).await?;
    }
    let full = message(
        &item,
        json!([{"type": "output_text", "text": text, "annotations": []}]),
    );
    send_event(stream, item_done(full)).await?;
    if pace.complete {
        tokio::time::sleep(pace.delay).await;
        send_event(stream, completed(ids)).await?;
    }
    Ok(())
}

/// One text delta after `delay`, counted in `shared` once written.
async fn send_delta(
    stream: &mut TcpStream,
    shared: &Mutex<Shared>,
    item: &str,
    word: &str,
    delay: Duration,
) -> std::io::Result<()> {
    tokio::time::sleep(delay).await;
    let delta = json!({
        "type": "response.output_text.delta",
        "item_id": item, "output_index": 0, "content_index": 0, "delta": word,
    });
    send_event(stream, delta).await?;
    shared.lock().expect("fake model lock").deltas += 1;
    Ok(())
}

/// Waits, counted in `shared.held`, until `gate` opens; an error if the client hangs up
/// first (codex drops a stream when its turn is steered or interrupted).
async fn hold(stream: &mut TcpStream, shared: &Mutex<Shared>, gate: &Gate) -> std::io::Result<()> {
    let _counted = HeldCount::new(shared);
    tokio::select! {
        () = gate.wait() => Ok(()),
        () = hung_up(stream) => Err(std::io::ErrorKind::ConnectionAborted.into()),
    }
}

/// Returns when the client closes its side (EOF or a reset); what it sends is discarded.
async fn hung_up(stream: &mut TcpStream) {
    let mut discard = [0; 1024];
    while let Ok(1..) = stream.read(&mut discard).await {}
}

/// One stream counted in `Shared::held` while this lives (so an aborted task uncounts too).
struct HeldCount<'a>(&'a Mutex<Shared>);

impl<'a> HeldCount<'a> {
    fn new(shared: &'a Mutex<Shared>) -> HeldCount<'a> {
        shared.lock().expect("fake model lock").held += 1;
        HeldCount(shared)
    }
}

impl Drop for HeldCount<'_> {
    fn drop(&mut self) {
        if let Ok(mut shared) = self.0.lock() {
            shared.held -= 1;
        }
    }
}

/// One finished output item (a tool call), then `response.completed`.
async fn stream_item(stream: &mut TcpStream, ids: &Ids, item: Value) -> std::io::Result<()> {
    write_sse_head(stream).await?;
    send_event(stream, created(ids)).await?;
    send_event(stream, item_done(item)).await?;
    send_event(stream, completed(ids)).await
}

/// Several finished output items (parallel tool calls), then `response.completed`.
async fn stream_items(stream: &mut TcpStream, ids: &Ids, items: Vec<Value>) -> std::io::Result<()> {
    write_sse_head(stream).await?;
    send_event(stream, created(ids)).await?;
    for (index, item) in items.into_iter().enumerate() {
        let done =
            json!({"type": "response.output_item.done", "output_index": index, "item": item});
        send_event(stream, done).await?;
    }
    send_event(stream, completed(ids)).await
}

/// The function tools a model request offered, by name (`dynamicTools` land here).
pub fn offered_tools(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|tool| tool["type"] == "function")
        .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
        .collect()
}

/// The text of a model request's last user message (`"role": "user"` in `input`), its
/// `input_text` parts joined by newlines; `None` when it has none.
pub fn last_user_text(request: &Value) -> Option<String> {
    user_texts(request).pop()
}

/// The texts of every user message in a model request's `input`, in order (codex's own
/// context messages included): what the model saw from the user.
pub fn user_texts(request: &Value) -> Vec<String> {
    request["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["role"] == "user")
        .map(|item| {
            let parts: Vec<&str> = item["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|part| part["type"] == "input_text")
                .filter_map(|part| part["text"].as_str())
                .collect();
            parts.join("\n")
        })
        .collect()
}

/// The outputs of function calls a model request carries: `(call_id, output text)`.
pub fn call_outputs(request: &Value) -> Vec<(String, String)> {
    request["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "function_call_output")
        .map(|item| {
            let output = item["output"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| item["output"].to_string());
            (
                item["call_id"].as_str().unwrap_or_default().to_owned(),
                output,
            )
        })
        .collect()
}

fn message(id: &str, content: Value) -> Value {
    json!({"type": "message", "id": id, "role": "assistant", "content": content})
}

fn created(ids: &Ids) -> Value {
    json!({"type": "response.created", "response": {"id": ids.response()}})
}

fn item_done(item: Value) -> Value {
    json!({"type": "response.output_item.done", "output_index": 0, "item": item})
}

/// `usage` feeds codex's `thread/tokenUsage/updated`.
fn completed(ids: &Ids) -> Value {
    json!({
        "type": "response.completed",
        "response": {
            "id": ids.response(),
            "usage": {
                "input_tokens": 10,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 15,
            },
        },
    })
}

/// A close-delimited event stream (no length, no chunking): the body ends when we close.
async fn write_sse_head(stream: &mut TcpStream) -> std::io::Result<()> {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                cache-control: no-cache\r\nconnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await
}

/// `event: <type>\ndata: <json>\n\n`, flushed at once.
async fn send_event(stream: &mut TcpStream, event: Value) -> std::io::Result<()> {
    let kind = event["type"].as_str().unwrap_or_default();
    let frame = format!("event: {kind}\ndata: {event}\n\n");
    stream.write_all(frame.as_bytes()).await?;
    stream.flush().await
}

async fn write_status(stream: &mut TcpStream, status: u16) -> std::io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let body = json!({
        "error": {
            "message": format!("fake model: HTTP {status}"), "type": "server_error", "code": null,
        },
    })
    .to_string();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await
}
