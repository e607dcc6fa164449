//! The job's codex turn (defect 18-a fixed: it waits for *this* turn's `turn/completed`),
//! on the machinery the agents use: a session on a codex process of the `codex` service
//! ([`Slot::attach`], JSON-RPC ids and routing by `threadId` are the process's), the
//! runner's protocol params ([`session`]) and notification handling ([`Turn`]), approvals
//! answered by policy, the same request timeout, liveness probe and interrupt deadline.
//!
//! | step | sends                                   | waits for                                  |
//! |------|-----------------------------------------|--------------------------------------------|
//! | 1    | —                                       | the slot's process is up (`start_timeout`)  |
//! | 2    | `initialize`, then `initialized`        | the answer                                 |
//! | 3    | `thread/start` (ephemeral; cwd = the checkout, the model, `workspace-write`) | the thread id |
//! | 4    | `turn/start` with the task and a `sandboxPolicy` whose only writable root is the checkout | `turn/completed` of this turn |
//! | end  | `thread/unsubscribe`                    | —                                          |
//!
//! While the turn runs: a `thread/loaded/list` probe every `request_timeout` after the last
//! answer; past `turn_timeout`, or when cancelled, `turn/interrupt`; a request unanswered
//! for `request_timeout`, or an interrupted turn not ended within `interrupt_timeout`,
//! means codex is wedged: its process is killed (its supervisor starts the next one).
//!
//! | how it ends                         | result                          |
//! |-------------------------------------|---------------------------------|
//! | `turn/completed`, `completed`       | `Ok`                            |
//! | `turn/completed`, failed            | [`TurnError::Failed`]           |
//! | interrupted after `turn_timeout`    | [`TurnError::TimedOut`]         |
//! | interrupted because cancelled       | [`TurnError::Cancelled`]        |
//! | codex silent, or its process gone   | [`TurnError::Wedged`], [`TurnError::Gone`] |

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Cancel, HEARTBEAT, Progress, ProgressSink, Report};
use crate::codex::jsonrpc::{Incoming, Outgoing, Outstanding, RequestId, RpcError};
use crate::codex::{Attached, SessionEvent, SessionSink, Slot};
use crate::genai;
use crate::runner::session::{self, Approvals, ThreadConfig};
use crate::runner::turn::{Outcome, Step, TOOL_ITEMS, Turn};

/// How a job's turn runs.
#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// The codex process's place (the agent's, or the CLI's own).
    pub slot: Slot,
    /// cwd (the checkout), model, approval policy, sandbox, instructions, shell env.
    pub thread: ThreadConfig,
    /// How approval requests are answered.
    pub approvals: Approvals,
    /// The turn is interrupted after this long.
    pub turn_timeout: Duration,
    /// Budget of each request; the probe interval while the turn runs.
    pub request_timeout: Duration,
    /// How long an interrupted turn may take to end.
    pub interrupt_timeout: Duration,
    /// How long to wait for the process to be up.
    pub start_timeout: Duration,
    /// Who runs it, for spans and metrics (`harness.nick`).
    pub nick: String,
}

/// Why the turn did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnError {
    /// No codex process came up.
    #[error("codex is not available: {0}")]
    Unavailable(String),
    /// codex refused a request of the session (a bad model, config, cwd).
    #[error("codex refused {0}")]
    Refused(String),
    /// The turn ended as failed.
    #[error("the codex turn failed: {0}")]
    Failed(String),
    /// It ran past the turn timeout and was interrupted.
    #[error("the codex turn did not finish within {}s and was interrupted", .0.as_secs())]
    TimedOut(Duration),
    /// The job was cancelled; the turn was interrupted.
    #[error("the codex turn was cancelled")]
    Cancelled,
    /// codex stopped answering; its process was killed.
    #[error("codex stopped answering ({0}); its process was killed")]
    Wedged(String),
    /// The codex process went away under the turn.
    #[error("the codex process went away during the turn: {0}")]
    Gone(String),
}

/// How a completed turn went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnReport {
    /// Tool calls the model made.
    pub tools: usize,
    /// Its agent messages.
    pub messages: Vec<String>,
    /// Input and output tokens of its last model call.
    pub tokens: Option<(u64, u64)>,
}

/// Who waits for an answer.
#[derive(Debug)]
enum Waiter {
    /// The step in progress.
    Call,
    /// A liveness probe.
    Probe,
    /// `turn/interrupt`.
    Interrupt,
    /// `thread/unsubscribe`: nobody.
    Unsubscribe,
}

/// Runs `prompt` as one turn on a fresh thread (module table).
pub async fn run(
    settings: &TurnSettings,
    prompt: &str,
    progress: &ProgressSink,
    started: Instant,
    cancel: &Cancel,
) -> Result<TurnReport, TurnError> {
    let (attached, events) = attach(settings, cancel).await?;
    let mut session = Session {
        settings,
        attached,
        events,
        requests: Outstanding::new(),
        backlog: VecDeque::new(),
        progress,
        started,
    };
    let result = session.turn(prompt, cancel).await;
    session.close();
    result
}

/// Waits for the slot's process and attaches a session to it.
async fn attach(
    settings: &TurnSettings,
    cancel: &Cancel,
) -> Result<(Attached, mpsc::UnboundedReceiver<SessionEvent>), TurnError> {
    let mut up = settings.slot.watch();
    let wait = tokio::time::timeout(settings.start_timeout, up.wait_for(Option::is_some));
    tokio::select! {
        waited = wait => {
            if !matches!(waited, Ok(Ok(_))) {
                let why = settings.slot.down_reason().unwrap_or_else(|| {
                    format!("no codex process within {}s", settings.start_timeout.as_secs())
                });
                return Err(TurnError::Unavailable(why));
            }
        }
        () = cancel.cancelled() => return Err(TurnError::Cancelled),
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = SessionSink::new(move |event| tx.send(event).is_ok());
    let attached = settings.slot.attach(sink).ok_or_else(|| {
        TurnError::Unavailable(settings.slot.down_reason().unwrap_or_else(|| "down".into()))
    })?;
    Ok((attached, rx))
}

struct Session<'a> {
    settings: &'a TurnSettings,
    attached: Attached,
    events: mpsc::UnboundedReceiver<SessionEvent>,
    requests: Outstanding<Waiter>,
    /// Notifications that arrived while a step waited for its answer (`turn/started` may
    /// come before `turn/start`'s answer).
    backlog: VecDeque<(String, Value)>,
    progress: &'a ProgressSink,
    started: Instant,
}

/// A turn in flight: the runner's [`Turn`], why it was interrupted, the next probe.
struct Running {
    thread: String,
    turn: Turn,
    deadline: Instant,
    cancelled: bool,
    probe: Option<Instant>,
    heartbeat: Instant,
    tools: usize,
}

impl Session<'_> {
    async fn turn(&mut self, prompt: &str, cancel: &Cancel) -> Result<TurnReport, TurnError> {
        self.call("initialize", session::initialize()).await?;
        let _ = self
            .attached
            .send(Outgoing::notification("initialized", None));
        let started = self
            .call("thread/start", self.settings.thread.start_ephemeral())
            .await?;
        let thread = session::thread_id(&started)
            .ok_or_else(|| TurnError::Refused("thread/start: no thread id".to_owned()))?;
        let model = self.settings.thread.model.as_str();
        let span = tracing::info_span!(
            "harness.llm.call",
            harness.backend = "codex",
            harness.model = %model,
            harness.nick = %self.settings.nick,
            codex.thread_id = %thread,
            codex.turn_id = tracing::field::Empty,
            conversation = "repo",
            outcome = tracing::field::Empty,
            tokens.input = tracing::field::Empty,
            tokens.output = tracing::field::Empty,
            { genai::OPERATION_NAME } = genai::INVOKE_AGENT,
            { genai::PROVIDER_NAME } = genai::PROVIDER,
            { genai::SYSTEM } = genai::PROVIDER,
            { genai::REQUEST_MODEL } = %model,
            { genai::AGENT_NAME } = %self.settings.nick,
            { genai::CONVERSATION_ID } = %thread,
            { genai::USAGE_INPUT_TOKENS } = tracing::field::Empty,
            { genai::USAGE_OUTPUT_TOKENS } = tracing::field::Empty,
        );
        let now = Instant::now();
        let mut running = Running {
            thread: thread.clone(),
            turn: Turn::new(span),
            deadline: now + self.settings.turn_timeout,
            cancelled: false,
            probe: Some(now + self.settings.request_timeout),
            heartbeat: now + HEARTBEAT,
            tools: 0,
        };
        let answer = self
            .call(
                "turn/start",
                turn_start(&thread, prompt, &self.settings.thread),
            )
            .await;
        let outcome = match answer {
            Ok(result) => {
                if running.turn.id.is_none() {
                    running.turn.id = session::turn_id(&result);
                }
                self.follow(&mut running, cancel).await
            }
            Err(error) => Err(error),
        };
        let name = match &outcome {
            Ok(_) => "success",
            Err(TurnError::TimedOut(_)) => "timeout",
            Err(TurnError::Cancelled) => "cancelled",
            Err(_) => "error",
        };
        end_span(&running.turn, name);
        let _ = self.request(
            "thread/unsubscribe",
            session::unsubscribe(&thread),
            Waiter::Unsubscribe,
        );
        outcome.map(|()| TurnReport {
            tools: running.tools,
            messages: running.turn.messages.clone(),
            tokens: running.turn.tokens,
        })
    }

    /// Sends a request and handles what arrives until its answer.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, TurnError> {
        let id = self.request(method, params, Waiter::Call);
        loop {
            let deadline = self.requests.next_deadline();
            let event = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, self.events.recv()).await,
                None => Ok(self.events.recv().await),
            };
            match event {
                Err(_) => return Err(self.expired()),
                Ok(None) => return Err(TurnError::Gone("the session ended".to_owned())),
                Ok(Some(SessionEvent::Gone(gone))) => return Err(TurnError::Gone(gone.why)),
                Ok(Some(SessionEvent::Message(Incoming::Response {
                    id: answered,
                    outcome,
                }))) => {
                    let Some(pending) = self.requests.resolve(&answered) else {
                        continue;
                    };
                    if answered == id && matches!(pending.waiter, Waiter::Call) {
                        return outcome.map_err(|error| refused(method, &error));
                    }
                }
                Ok(Some(SessionEvent::Message(Incoming::Notification { method, params }))) => {
                    self.backlog.push_back((method, params));
                }
                Ok(Some(SessionEvent::Message(incoming))) => self.other(incoming),
            }
        }
    }

    /// Follows the running turn to its end (module docs).
    async fn follow(&mut self, running: &mut Running, cancel: &Cancel) -> Result<(), TurnError> {
        while let Some((method, params)) = self.backlog.pop_front() {
            if let Some(outcome) = self.on_notification(running, &method, &params) {
                return self.ended(running, outcome);
            }
        }
        loop {
            let wake = self.next_wake(running);
            let event = tokio::select! {
                event = self.events.recv() => event,
                () = tokio::time::sleep_until(wake) => {
                    self.on_tick(running)?;
                    continue;
                }
                () = cancel.cancelled(), if !running.cancelled => {
                    running.cancelled = true;
                    self.interrupt(running);
                    continue;
                }
            };
            let Some(event) = event else {
                return Err(TurnError::Gone("the session ended".to_owned()));
            };
            let message = match event {
                SessionEvent::Gone(gone) => return Err(TurnError::Gone(gone.why)),
                SessionEvent::Message(message) => message,
            };
            match message {
                Incoming::Response { id, outcome } => self.on_response(running, &id, outcome)?,
                Incoming::Notification { method, params } => {
                    if let Some(outcome) = self.on_notification(running, &method, &params) {
                        return self.ended(running, outcome);
                    }
                }
                other => self.other(other),
            }
        }
    }

    /// A notification of the turn's thread (others are another session's, or the
    /// process's own news); the turn's outcome once it ended.
    fn on_notification(
        &self,
        running: &mut Running,
        method: &str,
        params: &Value,
    ) -> Option<Outcome> {
        if params.get("threadId").and_then(Value::as_str) != Some(&running.thread) {
            return None;
        }
        if method == "item/started" {
            self.tool_started(running, params);
        }
        match running.turn.on_notification(method, params) {
            Step::Ended(outcome) => Some(outcome),
            _ => None,
        }
    }

    fn next_wake(&self, running: &Running) -> Instant {
        let turn = match running.turn.interrupted {
            Some(at) => at + self.settings.interrupt_timeout,
            None => running.deadline,
        };
        [
            Some(turn),
            running.probe,
            self.requests.next_deadline(),
            Some(running.heartbeat),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(turn)
    }

    fn on_tick(&mut self, running: &mut Running) -> Result<(), TurnError> {
        let now = Instant::now();
        if self.requests.next_deadline().is_some_and(|due| due <= now) {
            return Err(self.expired());
        }
        if let Some(at) = running.turn.interrupted {
            if now >= at + self.settings.interrupt_timeout {
                let why = format!(
                    "an interrupted turn did not end within {}s",
                    self.settings.interrupt_timeout.as_secs()
                );
                return Err(self.wedged(why));
            }
        } else if now >= running.deadline {
            tracing::warn!(
                timeout_s = self.settings.turn_timeout.as_secs(),
                "repository turn timed out; interrupting it"
            );
            self.interrupt(running);
        }
        if running.probe.is_some_and(|due| now >= due) {
            running.probe = None;
            self.request("thread/loaded/list", json!({}), Waiter::Probe);
        }
        if now >= running.heartbeat {
            running.heartbeat = now + HEARTBEAT;
            self.report(Progress::Working);
        }
        Ok(())
    }

    fn on_response(
        &mut self,
        running: &mut Running,
        id: &RequestId,
        outcome: Result<Value, RpcError>,
    ) -> Result<(), TurnError> {
        let Some(pending) = self.requests.resolve(id) else {
            return Ok(());
        };
        match (pending.waiter, outcome) {
            (Waiter::Probe, _) => {
                running.probe = Some(Instant::now() + self.settings.request_timeout);
            }
            (Waiter::Interrupt, Err(error)) if !error.message.contains("no active turn") => {
                return Err(self.wedged(format!("it refused to interrupt the turn: {error}")));
            }
            (Waiter::Interrupt, Err(_)) => {
                return Err(match running.cancelled {
                    true => TurnError::Cancelled,
                    false => TurnError::TimedOut(self.settings.turn_timeout),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn ended(&self, running: &Running, outcome: Outcome) -> Result<(), TurnError> {
        match outcome {
            Outcome::Completed if running.cancelled => Err(TurnError::Cancelled),
            Outcome::Completed => {
                let said = running.turn.messages.last().cloned();
                let tools = running.tools;
                self.report(Progress::TurnDone { tools, said });
                Ok(())
            }
            Outcome::Failed(reason) => Err(TurnError::Failed(crate::redact::text(&reason))),
            Outcome::Timeout if running.cancelled => Err(TurnError::Cancelled),
            Outcome::Timeout => Err(TurnError::TimedOut(self.settings.turn_timeout)),
        }
    }

    /// Server requests (approvals by policy, anything else an error) and stray lines.
    fn other(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::ServerRequest { id, method, params } => {
                let answer = session::answer(id, &method, self.settings.approvals);
                tracing::info!(method, item = ?params.get("itemId"), answer = %answer.encode(), "codex asked; answered");
                let _ = self.attached.send(answer);
            }
            Incoming::Garbage { line, error } => {
                let shown: String = line.chars().take(200).collect();
                tracing::warn!(error = %error, line = %shown, "codex wrote a line that is not a message; skipped");
            }
            _ => {}
        }
    }

    fn tool_started(&self, running: &mut Running, params: &Value) {
        let Some((kind, detail)) = describe_tool(params) else {
            return;
        };
        running.tools += 1;
        self.report(Progress::Tool { kind, detail });
    }

    fn interrupt(&mut self, running: &mut Running) {
        running.turn.interrupted = Some(Instant::now());
        match running.turn.id.clone() {
            Some(turn) => {
                let params = session::turn_interrupt(&running.thread, &turn);
                self.request("turn/interrupt", params, Waiter::Interrupt);
            }
            None => tracing::debug!("no turn id yet; the interrupt deadline stands"),
        }
    }

    fn request(&mut self, method: &str, params: Value, waiter: Waiter) -> RequestId {
        let deadline = Instant::now() + self.settings.request_timeout;
        let line = self.requests.start(method, Some(params), deadline, waiter);
        let id = line.id().cloned().unwrap_or(RequestId::Int(0));
        let _ = self.attached.send(line);
        id
    }

    /// A request went unanswered: codex is wedged.
    fn expired(&mut self) -> TurnError {
        let now = Instant::now();
        let method = self
            .requests
            .expire(now)
            .into_iter()
            .find(|(_, pending)| !matches!(pending.waiter, Waiter::Unsubscribe))
            .map(|(_, pending)| pending.method)
            .unwrap_or_else(|| "a request".to_owned());
        let why = format!(
            "it did not answer {method} within {}s",
            self.settings.request_timeout.as_secs()
        );
        self.wedged(why)
    }

    fn wedged(&self, why: String) -> TurnError {
        tracing::warn!(codex.pid = self.attached.pid(), reason = %why, "codex is wedged; killing its process");
        self.attached.kill(format!("repository job: {why}"));
        TurnError::Wedged(why)
    }

    fn report(&self, progress: Progress) {
        self.progress.report(Report {
            elapsed: self.started.elapsed(),
            progress,
        });
    }

    /// Leaves the process (dropping the session detaches it).
    fn close(self) {
        drop(self.attached);
    }
}

/// `turn/start` with the task and a `sandboxPolicy` whose only writable root is the thread's
/// cwd (the checkout), no network, no temp dirs; for the `workspace-write` sandbox only.
fn turn_start(thread: &str, prompt: &str, config: &ThreadConfig) -> Value {
    let mut params = session::turn_start(thread, prompt);
    if config.sandbox.as_deref() == Some("workspace-write") {
        params["sandboxPolicy"] = json!({
            "type": "workspaceWrite",
            "writableRoots": [config.cwd.display().to_string()],
            "networkAccess": false,
            "excludeTmpdirEnvVar": true,
            "excludeSlashTmp": true,
        });
    }
    params
}

fn refused(method: &str, error: &RpcError) -> TurnError {
    TurnError::Refused(crate::redact::text(&session::failure(method, error)))
}

/// A tool item's type and a short description: the files a patch touches, a command's
/// program; `None` for items that are not tool calls.
fn describe_tool(params: &Value) -> Option<(String, String)> {
    let item = params.get("item")?;
    let kind = item.get("type")?.as_str()?;
    if !TOOL_ITEMS.contains(&kind) {
        return None;
    }
    let detail = match kind {
        "fileChange" => item
            .get("changes")
            .and_then(Value::as_array)
            .map(|changes| {
                let names: Vec<&str> = changes
                    .iter()
                    .filter_map(|c| c.get("path").and_then(Value::as_str))
                    .map(|path| path.rsplit('/').next().unwrap_or(path))
                    .collect();
                names.join(", ")
            })
            .unwrap_or_default(),
        "commandExecution" => item
            .pointer("/commandActions/0/type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        "dynamicToolCall" | "mcpToolCall" => item
            .get("tool")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    Some((kind.to_owned(), detail))
}

fn end_span(turn: &Turn, outcome: &str) {
    turn.span.record("outcome", outcome);
    if let Some(id) = &turn.id {
        turn.span.record("codex.turn_id", id.as_str());
    }
    if let Some((input, output)) = turn.tokens {
        turn.span.record("tokens.input", input);
        turn.span.record("tokens.output", output);
        let int = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
        turn.span.record(genai::USAGE_INPUT_TOKENS, int(input));
        turn.span.record(genai::USAGE_OUTPUT_TOKENS, int(output));
    }
}
