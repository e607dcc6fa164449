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
//!
//! The session's steps are here; following the running turn is `follow`, its params and
//! progress descriptions (pure) are `params`.

mod follow;
mod params;

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Cancel, HEARTBEAT, Progress, ProgressSink, Report};
use crate::codex::jsonrpc::{Incoming, Outgoing, Outstanding, RequestId};
use crate::codex::{Attached, SessionEvent, SessionSink, Slot};
use crate::genai;
use crate::runner::session::{self, Approvals, ThreadConfig};
use crate::runner::turn::Turn;
use params::{end_span, refused, turn_start};

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
