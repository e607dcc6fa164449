//! The runner actor: the agent's session on its codex process and its thread, running the
//! journal's entries as turns one at a time. The process belongs to the `codex` service:
//! when it dies the runner does not fail; it waits for the next process, resumes its thread
//! there and replays what is pending. It fails (so its supervisor restarts it under the
//! circuit breaker) only on its own errors: a failed handshake, a journal it cannot use.
//!
//! | phase       | entered by                          | leaves on                                   |
//! |-------------|-------------------------------------|---------------------------------------------|
//! | `waiting`   | start, or its process is gone       | the process is up: attach, `initialize` → `handshake` |
//! | `handshake` | attached                            | thread started or resumed → `ready`         |
//! | `ready`     | a thread id                         | `/clear` (new thread) → `handshake`; process gone → `waiting` |
//!
//! codex is **wedged** when a request other than `thread/compact/start` goes unanswered for
//! `request_timeout` (a `turn/start` included: its entry stays journaled, the attempt is
//! counted, and it is replayed on the next process) or an interrupted turn does not end
//! within `interrupt_timeout`; the runner has the process killed for every agent on it.
//! During a turn, every `request_timeout` after the last answer to one, the runner sends a
//! probe (`thread/loaded/list`; any answer, an error included, will do), so a codex that
//! stops mid-turn is found within two `request_timeout`s rather than at `turn_timeout`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::inbox::Inbox;
use super::turn::{Outcome, Turn};
use super::{
    RunnerMessage, RunnerPeers, RunnerSettings, RunnerStats, SlashCommand, TurnStatus, session,
};
use crate::child::{ControlError, ControlMsg, FaultKind, Report};
use crate::codex::jsonrpc::{Incoming, Outgoing, Outstanding, RequestId, RpcError};
use crate::codex::{Attached, SessionEvent};
use crate::fault;
use crate::trace::TraceCtx;

mod attach;
mod report;
mod tools;
mod turns;
mod watch;

use turns::end_span;

/// Turns of one journal entry that codex may die during before the entry is given up.
/// Two: one replay after a crash, and a poison prompt still gives up before Culture's
/// circuit (3 crashes) opens. A turn cut off by a graceful stop does not count.
const MAX_ATTEMPTS: u32 = 2;

/// How long a stopping runner waits for its process to take its last lines.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Culture's meter for turn metrics.
const METER: &str = "culture.harness";

/// The actor.
pub struct Runner;

/// What each instance starts with.
pub struct RunnerArgs {
    pub(super) settings: Arc<RunnerSettings>,
    pub(super) peers: RunnerPeers,
    pub(super) inbox: Arc<Inbox>,
    pub(super) stats: Arc<Mutex<RunnerStats>>,
}

/// Who waits for a request's answer.
#[derive(Debug)]
enum Waiter {
    Initialize,
    Resume(String),
    StartThread,
    TurnStart,
    Interrupt,
    Compact,
    /// A liveness probe during a turn: any answer will do.
    Probe,
}

/// Work that is not a journal entry.
#[derive(Debug)]
enum Job {
    /// IPC `status` with `query`: a short turn whose answer is not posted.
    Query {
        reply: RpcReplyPort<TurnStatus>,
        deadline: Instant,
    },
    /// IPC `compact`: codex's native compaction.
    Compact,
    /// IPC `clear`: a fresh thread.
    Clear,
}

/// What a running turn answers to.
#[derive(Debug)]
enum Purpose {
    /// The summary turn of thread `from`, replaced because its tool set changed: its answer
    /// seeds the new thread's first turn (nothing goes to IRC).
    Handover { from: String },
    /// A journal entry: replies go to `reply_to`, the entry is removed at the end;
    /// `asked` is false for a channel poll (no Sorry line when it fails).
    Entry {
        id: u64,
        reply_to: String,
        asked: bool,
    },
    /// A status query: the first agent message answers it.
    Query {
        reply: Option<RpcReplyPort<TurnStatus>>,
        deadline: Instant,
    },
}

#[derive(Debug)]
struct Active {
    turn: Turn,
    purpose: Purpose,
    deadline: Option<Instant>,
    trace: TraceCtx,
    /// When the next liveness probe is due; `None` while one is unanswered.
    probe: Option<Instant>,
}

/// The actor's state.
pub struct RunnerState {
    settings: Arc<RunnerSettings>,
    peers: RunnerPeers,
    inbox: Arc<Inbox>,
    stats: Arc<Mutex<RunnerStats>>,
    myself: ActorRef<RunnerMessage>,
    process: Option<Attached>,
    /// Bumped on every attach: events of an older session are dropped.
    generation: u64,
    /// Why the last process went away, while waiting for the next one.
    gone: Option<String>,
    requests: Outstanding<Waiter>,
    thread: Option<String>,
    /// The thread this instance replaced because it had another tool set.
    replaced_thread: Option<String>,
    /// A resumed thread with another tool set: its summary turn is due, then a new thread.
    handover_due: Option<String>,
    active: Option<Active>,
    jobs: VecDeque<Job>,
    /// Highest journal entry id run by this instance (entries are run in id order).
    dispatched: u64,
    was_paused: bool,
    watcher: JoinHandle<()>,
    codex_watcher: JoinHandle<()>,
}

impl Drop for RunnerState {
    fn drop(&mut self) {
        self.watcher.abort();
        self.codex_watcher.abort();
        self.peers.turn.clear();
    }
}

impl Actor for Runner {
    type Msg = RunnerMessage;
    type State = RunnerState;
    type Arguments = RunnerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RunnerMessage>,
        args: RunnerArgs,
    ) -> Result<RunnerState, ActorProcessingErr> {
        let mut pause = args.peers.pause.subscribe();
        let waker = myself.clone();
        let watcher = tokio::spawn(async move {
            while pause.changed().await.is_ok() {
                let _ = waker.cast(RunnerMessage::Wake);
            }
        });
        let mut codex = args.settings.codex.watch();
        let waker = myself.clone();
        let codex_watcher = tokio::spawn(async move {
            while codex.changed().await.is_ok() {
                let _ = waker.cast(RunnerMessage::CodexChanged);
            }
        });
        let mut state = RunnerState {
            was_paused: args.peers.pause.is_paused(),
            settings: args.settings,
            peers: args.peers,
            inbox: args.inbox,
            stats: args.stats,
            myself: myself.clone(),
            process: None,
            generation: 0,
            gone: None,
            requests: Outstanding::new(),
            thread: None,
            replaced_thread: None,
            handover_due: None,
            active: None,
            jobs: VecDeque::new(),
            dispatched: 0,
            watcher,
            codex_watcher,
        };
        state.attach()?;
        state.peers.link.set(myself);
        state.report_set_aside();
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RunnerMessage>,
        msg: RunnerMessage,
        state: &mut RunnerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RunnerMessage::Control(control) => return state.on_control(control).await,
            RunnerMessage::Command { command, reply, .. } => state.on_command(command, reply),
            RunnerMessage::Status { query, reply, .. } => state.on_status(query, reply),
            RunnerMessage::Wake => state.on_wake(),
            RunnerMessage::Process { generation, event } if generation == state.generation => {
                return state.on_process(event);
            }
            RunnerMessage::Process { .. } => {}
            RunnerMessage::CodexChanged => return state.on_codex_changed(),
            RunnerMessage::Tick => return state.on_tick(),
            RunnerMessage::Whisper { kind, message } => state.on_whisper(&kind, &message),
            RunnerMessage::ToolDone {
                generation,
                id,
                outcome,
            } => return state.tool_done(generation, id, outcome),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RunnerMessage>,
        state: &mut RunnerState,
    ) -> Result<(), ActorProcessingErr> {
        state.peers.link.clear(&state.myself);
        if let Some(active) = state.active.take() {
            // The entry stays journaled: it is replayed on the next start.
            state.interrupt(&active.turn);
            end_span(&active.turn, "stopped");
        }
        // The interrupt is queued for codex's stdin before the runner leaves (dropping the
        // session tells the process to forget it).
        if let Some(process) = state.process.take() {
            process.flush(FLUSH_TIMEOUT).await;
        }
        Ok(())
    }
}

impl RunnerState {
    /// Sends a request; an unwritable stdin is fatal (codex is gone or wedged).
    fn request(
        &mut self,
        method: &str,
        params: Option<Value>,
        waiter: Waiter,
    ) -> Result<(), ActorProcessingErr> {
        let deadline = Instant::now() + self.settings.request_timeout;
        let line = self.requests.start(method, params, deadline, waiter);
        self.arm(deadline);
        self.send(&line)
    }

    /// Sends a line on the session. A process that is gone is no error: its
    /// [`SessionEvent::Gone`] is on the way, and the runner resumes on the next one.
    fn send(&self, line: &Outgoing) -> Result<(), ActorProcessingErr> {
        if let Some(process) = &self.process {
            let _ = process.send(line.clone());
        }
        Ok(())
    }

    fn arm(&self, deadline: Instant) {
        let delay = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(5);
        self.myself.send_after(delay, || RunnerMessage::Tick);
    }

    async fn on_control(&mut self, control: ControlMsg) -> Result<(), ActorProcessingErr> {
        match control {
            ControlMsg::Status { reply, .. } => {
                let _ = reply.send(Report::leaf(&self.status()));
                Ok(())
            }
            ControlMsg::Fault {
                path,
                kind: FaultKind::Kill,
                reply,
                ..
            } if path.is_empty() => {
                let result = match &self.process {
                    Some(process) => {
                        tracing::warn!(agent.nick = %self.settings.nick, codex.pid = process.pid(), "fault injected: SIGKILL to codex");
                        process.kill(format!("fault injected by {}", self.settings.nick));
                        Ok(())
                    }
                    None => Err(ControlError::NotRunning {
                        name: "codex process".to_owned(),
                        state: "stopped".to_owned(),
                    }),
                };
                let _ = reply.send(result);
                Ok(())
            }
            other => fault::handle_leaf(other, "runner").await,
        }
    }

    fn on_command(&mut self, command: SlashCommand, reply: RpcReplyPort<Result<(), String>>) {
        if self.thread.is_none() {
            let _ = reply.send(Err("Agent runner is not running".to_owned()));
            return;
        }
        self.jobs.push_back(match command {
            SlashCommand::Compact => Job::Compact,
            SlashCommand::Clear => Job::Clear,
        });
        let _ = reply.send(Ok(()));
        self.next();
    }

    fn on_status(&mut self, query: bool, reply: RpcReplyPort<TurnStatus>) {
        if !query || self.thread.is_none() || self.peers.pause.is_paused() {
            let _ = reply.send(self.turn_status(None));
            return;
        }
        let deadline = Instant::now() + self.settings.query_timeout;
        self.arm(deadline);
        self.jobs.push_back(Job::Query { reply, deadline });
        self.next();
    }

    fn on_wake(&mut self) {
        let paused = self.peers.pause.is_paused();
        if self.was_paused && !paused {
            self.stats().consecutive_failures = 0;
        }
        self.was_paused = paused;
        self.next();
    }

    fn on_process(&mut self, event: SessionEvent) -> Result<(), ActorProcessingErr> {
        match event {
            SessionEvent::Message(incoming) => self.on_incoming(incoming),
            SessionEvent::Gone(gone) => {
                self.on_gone(&gone);
                self.on_codex_changed()
            }
        }
    }

    fn on_incoming(&mut self, incoming: Incoming) -> Result<(), ActorProcessingErr> {
        match incoming {
            Incoming::Response { id, outcome } => self.on_response(&id, outcome),
            Incoming::Notification { method, params } => {
                self.on_notification(&method, &params);
                Ok(())
            }
            Incoming::ServerRequest { id, method, params } if method == "item/tool/call" => {
                self.tool_call(id, &params);
                Ok(())
            }
            Incoming::ServerRequest { id, method, params } => {
                let answer = session::answer(id, &method, self.settings.approvals);
                tracing::info!(agent.nick = %self.settings.nick, method, item = ?params.get("itemId"), answer = %answer.encode(), "codex asked; answered");
                self.send(&answer)
            }
            Incoming::Garbage { line, error } => {
                let shown: String = line.chars().take(200).collect();
                tracing::warn!(agent.nick = %self.settings.nick, error = %error, line = %shown, bytes = line.len(), "codex wrote a line that is not a message; skipped");
                Ok(())
            }
        }
    }

    fn on_response(
        &mut self,
        id: &RequestId,
        outcome: Result<Value, RpcError>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(pending) = self.requests.resolve(id) else {
            tracing::debug!(agent.nick = %self.settings.nick, id = %id, "answer to no pending request");
            return Ok(());
        };
        let nick = &self.settings.nick;
        match (pending.waiter, outcome) {
            (Waiter::Initialize, Ok(_)) => {
                self.send(&Outgoing::notification("initialized", None))?;
                let (kept, recorded) = {
                    let journal = self.inbox.journal.lock();
                    (journal.thread_id(), journal.tool_set())
                };
                let current = self.settings.tools.tag();
                match kept {
                    Some(thread) if recorded.as_deref() == Some(current.as_str()) => {
                        let params = self.settings.thread.resume(&thread);
                        self.request("thread/resume", Some(params), Waiter::Resume(thread))?;
                    }
                    Some(thread) => {
                        let recorded = recorded.unwrap_or_else(|| "none".to_owned());
                        tracing::warn!(agent.nick = %nick, codex.thread_id = %thread, recorded = %recorded, current = %current, "the codex thread was started with another tool set (a thread's tools are fixed at its start); it writes a summary, then a new thread with the current tools starts from it");
                        self.handover_due = Some(thread.clone());
                        let params = self.settings.thread.resume(&thread);
                        self.request("thread/resume", Some(params), Waiter::Resume(thread))?;
                    }
                    None => self.start_thread()?,
                }
            }
            (Waiter::Resume(thread), Ok(result)) => {
                let thread = session::thread_id(&result).unwrap_or(thread);
                tracing::info!(agent.nick = %nick, codex.thread_id = %thread, "codex thread resumed");
                self.ready(thread);
            }
            (Waiter::Resume(thread), Err(error)) => {
                tracing::warn!(agent.nick = %nick, codex.thread_id = %thread, error = %error, "codex thread could not be resumed; starting a new thread (the earlier conversation is not in it)");
                self.handover_due = None;
                self.start_thread()?;
            }
            (Waiter::StartThread, Ok(result)) => {
                let Some(thread) = session::thread_id(&result) else {
                    return Err("thread/start answered without a thread id".into());
                };
                let tag = self.settings.tools.tag();
                let recorded = {
                    let mut journal = self.inbox.journal.lock();
                    journal
                        .set_thread_id(Some(&thread))
                        .and_then(|()| journal.set_tool_set(&tag))
                };
                if let Err(error) = recorded {
                    tracing::error!(agent.nick = %nick, error = %error, "thread id or tool set not persisted; a restart will start a new thread");
                }
                tracing::info!(agent.nick = %nick, codex.thread_id = %thread, "codex thread started");
                self.ready(thread);
            }
            (Waiter::TurnStart, Ok(result)) => {
                if let Some(active) = &mut self.active {
                    if active.turn.id.is_none() {
                        active.turn.id = session::turn_id(&result);
                    }
                    if let Some(id) = &active.turn.id {
                        active.turn.span.record("codex.turn_id", id.as_str());
                    }
                }
            }
            (Waiter::TurnStart, Err(error)) => {
                self.finish(Outcome::Failed(session::failure("turn/start", &error)));
            }
            (Waiter::Interrupt, Err(error)) => {
                tracing::warn!(agent.nick = %nick, error = %error, "turn/interrupt refused; ending the turn");
                self.finish(Outcome::Timeout);
            }
            (Waiter::Interrupt, Ok(_)) => {}
            (Waiter::Probe, _) => {
                let next = Instant::now() + self.settings.request_timeout;
                if let Some(active) = &mut self.active {
                    active.probe = Some(next);
                    self.arm(next);
                }
            }
            (Waiter::Compact, result) => {
                tracing::info!(agent.nick = %nick, ok = result.is_ok(), "thread/compact/start answered")
            }
            (waiter @ (Waiter::Initialize | Waiter::StartThread), Err(error)) => {
                let method = match waiter {
                    Waiter::Initialize => "initialize",
                    _ => "thread/start",
                };
                return Err(session::failure(method, &error).into());
            }
        }
        Ok(())
    }

    fn start_thread(&mut self) -> Result<(), ActorProcessingErr> {
        self.thread = None;
        let mut params = self.settings.thread.start();
        let tools = self.settings.tools.declared();
        if !tools.is_empty() {
            params["dynamicTools"] = Value::Array(tools);
        }
        self.request("thread/start", Some(params), Waiter::StartThread)
    }

    fn ready(&mut self, thread: String) {
        self.thread = Some(thread);
        self.next();
    }

    fn interrupt(&self, turn: &Turn) {
        if let (Some(turn), Some(thread)) = (&turn.id, &self.thread) {
            // An id outside the request map: nobody waits for this answer.
            let request = Outgoing::Request {
                id: RequestId::Str("shutdown-interrupt".into()),
                method: "turn/interrupt".into(),
                params: Some(session::turn_interrupt(thread, turn)),
            };
            let _ = self.send(&request);
        }
    }
}
