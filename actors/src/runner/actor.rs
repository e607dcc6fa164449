//! The runner actor: owns one codex process and its thread session, runs the journal's
//! entries as turns one at a time, and fails (so its supervisor restarts it under the
//! circuit breaker) when codex dies, the handshake fails or codex stops answering.
//!
//! | phase       | entered by                          | leaves on                                   |
//! |-------------|-------------------------------------|---------------------------------------------|
//! | `handshake` | start: `initialize` sent            | thread started or resumed → `ready`         |
//! | `ready`     | a thread id                         | `/clear` (new thread) → `handshake`         |
//! | (failed)    | codex exit, request timeout, a failed handshake, an unanswered interrupt | — |

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::inbox::{Inbox, RelayJob};
use super::jsonrpc::{Incoming, Outgoing, Outstanding, RequestId, RpcError};
use super::process::{CodexProcess, ProcessEvent, ProcessExit};
use super::turn::{Outcome, Step, Turn};
use super::{
    MAX_TURN_FAILURES, RunnerMessage, RunnerPeers, RunnerSettings, RunnerStats, SlashCommand,
    TurnScope, TurnStatus, prompt, session,
};
use crate::child::{ControlError, ControlMsg, FaultKind, Report};
use crate::fault;
use crate::irc::{IrcMessage, Presence};
use crate::pause::PauseReason;
use crate::trace::TraceCtx;
use crate::webhook::{Alert, AlertEvent, WebhookMessage};

/// Turns of one journal entry that codex may die during before the entry is given up.
/// Two: one replay after a crash, and a poison prompt still gives up before Culture's
/// circuit (3 crashes) opens. A turn cut off by a graceful stop does not count.
const MAX_ATTEMPTS: u32 = 2;

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
    /// A journal entry: replies go to `reply_to`, the entry is removed at the end.
    Entry { id: u64, reply_to: String },
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
}

/// The actor's state.
pub struct RunnerState {
    settings: Arc<RunnerSettings>,
    peers: RunnerPeers,
    inbox: Arc<Inbox>,
    stats: Arc<Mutex<RunnerStats>>,
    myself: ActorRef<RunnerMessage>,
    process: Option<CodexProcess>,
    generation: u64,
    requests: Outstanding<Waiter>,
    thread: Option<String>,
    active: Option<Active>,
    jobs: VecDeque<Job>,
    /// Highest journal entry id run by this instance (entries are run in id order).
    dispatched: u64,
    was_paused: bool,
    watcher: JoinHandle<()>,
}

impl Drop for RunnerState {
    fn drop(&mut self) {
        self.watcher.abort();
        self.peers.turn.clear();
    }
}

/// `codexd status` detail of the runner.
#[derive(Debug, serde::Serialize)]
struct RunnerStatus {
    pid: Option<u32>,
    thread_id: Option<String>,
    phase: &'static str,
    turn: Option<Value>,
    pending: usize,
    requests_in_flight: usize,
    paused: Option<PauseReason>,
    #[serde(flatten)]
    stats: RunnerStats,
    stderr_tail: String,
    summary: String,
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
        let mut state = RunnerState {
            was_paused: args.peers.pause.is_paused(),
            settings: args.settings,
            peers: args.peers,
            inbox: args.inbox,
            stats: args.stats,
            myself: myself.clone(),
            process: None,
            generation: 0,
            requests: Outstanding::new(),
            thread: None,
            active: None,
            jobs: VecDeque::new(),
            dispatched: 0,
            watcher,
        };
        state.spawn_codex()?;
        state.peers.link.set(myself);
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
            RunnerMessage::Tick => return state.on_tick(),
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
        if let Some(process) = state.process.take() {
            let exit = process.stop(state.settings.grace).await;
            tracing::info!(agent.nick = %state.settings.nick, exit = %exit, "codex stopped");
        }
        Ok(())
    }
}

impl RunnerState {
    fn spawn_codex(&mut self) -> Result<(), ActorProcessingErr> {
        self.generation += 1;
        let generation = self.generation;
        let myself = self.myself.clone();
        let sink = move |event| {
            myself
                .cast(RunnerMessage::Process { generation, event })
                .is_ok()
        };
        let process = CodexProcess::spawn(&self.settings.command, sink)?;
        self.process = Some(process);
        self.request(
            "initialize",
            Some(session::initialize()),
            Waiter::Initialize,
        )
    }

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

    fn send(&self, line: &Outgoing) -> Result<(), ActorProcessingErr> {
        let Some(process) = &self.process else {
            return Err("codex is not running".into());
        };
        process
            .send(line)
            .map_err(|error| format!("cannot write to codex: {error}").into())
    }

    fn arm(&self, deadline: Instant) {
        let delay = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(5);
        self.myself.send_after(delay, || RunnerMessage::Tick);
    }

    async fn on_control(&mut self, control: ControlMsg) -> Result<(), ActorProcessingErr> {
        match control {
            ControlMsg::Status { reply, .. } => {
                let detail = serde_json::to_value(self.status()).ok();
                let _ = reply.send(Report {
                    detail,
                    children: Vec::new(),
                });
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
                        process.kill();
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

    fn on_process(&mut self, event: ProcessEvent) -> Result<(), ActorProcessingErr> {
        match event {
            ProcessEvent::Message(incoming) => self.on_incoming(incoming),
            ProcessEvent::Exited(exit) => Err(self.on_exit(&exit).into()),
        }
    }

    fn on_incoming(&mut self, incoming: Incoming) -> Result<(), ActorProcessingErr> {
        match incoming {
            Incoming::Response { id, outcome } => self.on_response(&id, outcome),
            Incoming::Notification { method, params } => {
                self.on_notification(&method, &params);
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
                let kept = self.inbox.journal.lock().thread_id();
                match kept {
                    Some(thread) => {
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
                self.start_thread()?;
            }
            (Waiter::StartThread, Ok(result)) => {
                let Some(thread) = session::thread_id(&result) else {
                    return Err("thread/start answered without a thread id".into());
                };
                if let Err(error) = self.inbox.journal.lock().set_thread_id(Some(&thread)) {
                    tracing::error!(agent.nick = %nick, error = %error, "thread id not persisted; a restart will start a new thread");
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
        let params = self.settings.thread.start();
        self.request("thread/start", Some(params), Waiter::StartThread)
    }

    fn ready(&mut self, thread: String) {
        self.thread = Some(thread);
        self.next();
    }

    fn on_notification(&mut self, method: &str, params: &Value) {
        let thread = params.get("threadId").and_then(Value::as_str);
        if thread.is_some() && thread != self.thread.as_deref() {
            return;
        }
        let Some(active) = &mut self.active else {
            return;
        };
        match active.turn.on_notification(method, params) {
            Step::None => {}
            Step::Message(text) => self.on_message(text),
            Step::Ended(outcome) => self.finish(outcome),
        }
    }

    fn on_message(&mut self, text: String) {
        let Some(active) = &mut self.active else {
            return;
        };
        match &mut active.purpose {
            Purpose::Entry { reply_to, .. } => {
                let lines = prompt::relay_lines(&text);
                if !lines.is_empty() {
                    self.inbox.outbox.push(RelayJob::Say {
                        target: reply_to.clone(),
                        lines,
                        trace: active.trace.clone(),
                    });
                }
            }
            Purpose::Query { reply, .. } => {
                if let Some(reply) = reply.take() {
                    let _ = reply.send(self.turn_status(Some(&text)));
                }
            }
        }
        self.stats().last_text = text;
    }

    fn on_tick(&mut self) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        for (_, pending) in self.requests.expire(now) {
            match pending.waiter {
                Waiter::TurnStart => self.finish(Outcome::Failed(format!(
                    "turn/start unanswered after {}s",
                    self.settings.request_timeout.as_secs()
                ))),
                Waiter::Compact => {}
                _ => {
                    return Err(format!(
                        "codex did not answer {} within {}s",
                        pending.method,
                        self.settings.request_timeout.as_secs()
                    )
                    .into());
                }
            }
        }
        self.expire_queries(now);
        let Some(active) = &mut self.active else {
            return Ok(());
        };
        if let Some(interrupted) = active.turn.interrupted {
            if now >= interrupted + self.settings.interrupt_timeout {
                self.finish(Outcome::Timeout);
                return Err(format!(
                    "codex did not end an interrupted turn within {}s",
                    self.settings.interrupt_timeout.as_secs()
                )
                .into());
            }
        } else if active.deadline.is_some_and(|deadline| now >= deadline) {
            tracing::warn!(agent.nick = %self.settings.nick, timeout_s = ?self.settings.turn_timeout.map(|t| t.as_secs()), "turn timed out; interrupting it");
            active.turn.interrupted = Some(now);
            let turn_id = active.turn.id.clone();
            self.arm(now + self.settings.interrupt_timeout);
            match (turn_id, self.thread.clone()) {
                (Some(turn), Some(thread)) => {
                    let params = session::turn_interrupt(&thread, &turn);
                    self.request("turn/interrupt", Some(params), Waiter::Interrupt)?;
                }
                _ => self.finish(Outcome::Timeout),
            }
        }
        Ok(())
    }

    /// Answers status queries (waiting or running) whose time is up.
    fn expire_queries(&mut self, now: Instant) {
        let status = self.turn_status(None);
        let busy = || TurnStatus {
            description: "busy (no response)".to_owned(),
            ..status.clone()
        };
        self.jobs
            .retain(|job| !matches!(job, Job::Query { deadline, .. } if *deadline <= now));
        // The queue dropped expired queries' ports; answer the running one explicitly.
        if let Some(Active {
            purpose: Purpose::Query { reply, deadline },
            ..
        }) = &mut self.active
        {
            if *deadline <= now {
                if let Some(reply) = reply.take() {
                    let _ = reply.send(busy());
                }
            }
        }
    }

    /// Starts the next turn or job if the session is ready and idle.
    fn next(&mut self) {
        while self.thread.is_some() && self.active.is_none() {
            match self.jobs.pop_front() {
                Some(Job::Compact) => {
                    let Some(thread) = self.thread.clone() else {
                        return;
                    };
                    let params = session::compact(&thread);
                    if let Err(error) =
                        self.request("thread/compact/start", Some(params), Waiter::Compact)
                    {
                        tracing::warn!(agent.nick = %self.settings.nick, error = %error, "compact not sent");
                    }
                }
                Some(Job::Clear) => {
                    tracing::info!(agent.nick = %self.settings.nick, "clear: starting a new codex thread");
                    if let Err(error) = self.start_thread() {
                        tracing::warn!(agent.nick = %self.settings.nick, error = %error, "clear: thread/start not sent");
                    }
                    return;
                }
                Some(Job::Query { reply, deadline }) => {
                    let purpose = Purpose::Query {
                        reply: Some(reply),
                        deadline,
                    };
                    self.start_turn(prompt::STATUS_QUERY, purpose, TraceCtx::default());
                    return;
                }
                None => return self.next_entry(),
            }
        }
    }

    fn next_entry(&mut self) {
        if self.peers.pause.is_paused() {
            return;
        }
        let dispatched = self.dispatched;
        let next = self
            .inbox
            .journal
            .lock()
            .pending()
            .into_iter()
            .find(|entry| entry.id > dispatched);
        let Some(entry) = next else {
            return;
        };
        self.dispatched = entry.id;
        if entry.attempts >= MAX_ATTEMPTS {
            // Each earlier attempt ended with codex dying mid-turn: a poison prompt must
            // not keep the agent in a crash loop.
            tracing::error!(agent.nick = %self.settings.nick, entry = entry.id, attempts = entry.attempts, "giving up on a mention: codex died during every attempt at it");
            let target = entry.entry.reply_to.clone();
            self.inbox.outbox.push(RelayJob::Say {
                target,
                lines: vec![prompt::SORRY.to_owned()],
                trace: entry.entry.trace.clone(),
            });
            self.inbox
                .outbox
                .push(RelayJob::Complete { entry: entry.id });
            let failures = {
                let mut stats = self.stats();
                stats.turns_failed += 1;
                stats.consecutive_failures += 1;
                stats.consecutive_failures
            };
            self.breaker(failures, &entry.entry.trace);
            return self.next_entry();
        }
        if entry.attempts > 0 {
            tracing::info!(agent.nick = %self.settings.nick, entry = entry.id, crashed_attempts = entry.attempts, "replaying an accepted mention");
        }
        self.stats().last_activation = Some(epoch_now());
        let purpose = Purpose::Entry {
            id: entry.id,
            reply_to: entry.entry.reply_to.clone(),
        };
        self.start_turn(&entry.entry.prompt, purpose, entry.entry.trace.clone());
    }

    fn start_turn(&mut self, text: &str, purpose: Purpose, parent: TraceCtx) {
        let Some(thread) = self.thread.clone() else {
            return;
        };
        let span = parent.follow(tracing::info_span!(
            "harness.llm.call",
            harness.backend = "codex",
            harness.model = %self.settings.thread.model,
            harness.nick = %self.settings.nick,
            codex.thread_id = %thread,
            codex.turn_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
            tokens.input = tracing::field::Empty,
            tokens.output = tracing::field::Empty,
        ));
        let trace = {
            let _entered = span.enter();
            TraceCtx::current()
        };
        if let Some(process) = &self.process {
            self.peers.turn.set(TurnScope {
                pid: process.pid(),
                trace: trace.clone(),
            });
        }
        self.presence(Presence::Thinking);
        let deadline = self.settings.turn_timeout.map(|t| Instant::now() + t);
        if let Some(deadline) = deadline {
            self.arm(deadline);
        }
        self.active = Some(Active {
            turn: Turn::new(span),
            purpose,
            deadline,
            trace,
        });
        let params = session::turn_start(&thread, text);
        if let Err(error) = self.request("turn/start", Some(params), Waiter::TurnStart) {
            self.finish(Outcome::Failed(error.to_string()));
        }
    }

    /// Ends the running turn: spans, metrics, the breaker, the reply target's last word and
    /// the journal entry; then starts the next one.
    fn finish(&mut self, outcome: Outcome) {
        let Some(mut active) = self.active.take() else {
            return;
        };
        active.turn.close_open_items();
        end_span(&active.turn, outcome.name());
        self.record_metrics(&active.turn, &outcome);
        self.peers.turn.clear();
        self.presence(Presence::Idle);
        if let Outcome::Failed(reason) = &outcome {
            tracing::warn!(agent.nick = %self.settings.nick, reason = %reason, "turn failed");
        }
        let failures = {
            let mut stats = self.stats();
            match &outcome {
                Outcome::Completed => {
                    stats.turns_completed += 1;
                    stats.consecutive_failures = 0;
                }
                Outcome::Failed(_) => stats.turns_failed += 1,
                Outcome::Timeout => stats.turns_timed_out += 1,
            }
            if !active.turn.messages.is_empty() {
                stats.turn_count += 1;
            }
            if outcome != Outcome::Completed {
                stats.consecutive_failures += 1;
            }
            if let Some((input, output)) = active.turn.tokens {
                stats.tokens_input += input;
                stats.tokens_output += output;
            }
            stats.consecutive_failures
        };
        match active.purpose {
            Purpose::Entry { id, reply_to } => {
                if outcome != Outcome::Completed {
                    self.inbox.outbox.push(RelayJob::Say {
                        target: reply_to,
                        lines: vec![prompt::SORRY.to_owned()],
                        trace: active.trace.clone(),
                    });
                }
                self.inbox.outbox.push(RelayJob::Complete { entry: id });
            }
            Purpose::Query { reply, .. } => {
                if let Some(reply) = reply {
                    let text = active.turn.messages.first().map(String::as_str);
                    let _ = reply.send(self.turn_status(Some(text.unwrap_or(""))));
                }
            }
        }
        if outcome != Outcome::Completed {
            self.breaker(failures, &active.trace);
        }
        self.next();
    }

    /// Culture's turn-failure breaker (§14.3): pauses the agent and raises
    /// `agent_spiraling` once, when the count reaches the limit.
    fn breaker(&self, failures: u32, trace: &TraceCtx) {
        if failures != MAX_TURN_FAILURES || self.peers.pause.is_paused() {
            return;
        }
        let nick = &self.settings.nick;
        tracing::error!(agent.nick = %nick, failures, "Agent {nick} paused after {failures} consecutive turn failures");
        self.peers.pause.pause(PauseReason::TurnFailures);
        let alert = Alert {
            event: AlertEvent::AgentSpiraling,
            nick: nick.clone(),
            message: format!(
                "[SPIRALING] {nick} paused after {failures} consecutive turn failures"
            ),
            trace: trace.clone(),
        };
        if let Some(webhook) = self.peers.webhook.get() {
            let _ = webhook.cast(WebhookMessage::Alert(alert));
        }
    }

    fn on_exit(&mut self, exit: &ProcessExit) -> String {
        self.process = None;
        let stderr: String = last_lines(&exit.stderr, 5);
        if let Some(active) = self.active.take() {
            // Not finished: the entry stays journaled and is replayed after the restart;
            // the journal counts the attempts codex died during (a graceful stop does not).
            if let Purpose::Entry { id, .. } = &active.purpose {
                if let Err(error) = self.inbox.journal.lock().started(*id) {
                    tracing::warn!(agent.nick = %self.settings.nick, error = %error, "crashed attempt not recorded");
                }
            }
            end_span(&active.turn, "crashed");
            self.peers.turn.clear();
            if let Purpose::Query {
                reply: Some(reply), ..
            } = active.purpose
            {
                let _ = reply.send(self.turn_status(None));
            }
        }
        for (_, pending) in self.requests.drain() {
            tracing::debug!(method = %pending.method, "request lost with codex");
        }
        match stderr.is_empty() {
            true => format!("codex {exit}"),
            false => format!("codex {exit}; stderr: {stderr}"),
        }
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

    fn presence(&self, state: Presence) {
        if let Some(irc) = self.peers.irc.get() {
            let _ = irc.cast(IrcMessage::SetPresence { state, task: None });
        }
    }

    fn record_metrics(&self, turn: &Turn, outcome: &Outcome) {
        let meter = opentelemetry::global::meter(METER);
        let model = self.settings.thread.model.clone();
        let by_outcome = [
            KeyValue::new("backend", "codex"),
            KeyValue::new("model", model.clone()),
            KeyValue::new("outcome", outcome.name()),
        ];
        meter
            .u64_counter("culture.harness.llm.calls")
            .with_description("Per-LLM-call count by backend/model/outcome")
            .build()
            .add(1, &by_outcome);
        meter
            .f64_histogram("culture.harness.llm.call.duration")
            .with_unit("ms")
            .with_description("Per-LLM-call wall-clock duration in milliseconds")
            .build()
            .record(turn.started.elapsed().as_secs_f64() * 1000.0, &by_outcome);
        if let Some((input, output)) = turn.tokens {
            let by_nick = [
                KeyValue::new("backend", "codex"),
                KeyValue::new("model", model),
                KeyValue::new("harness.nick", self.settings.nick.clone()),
            ];
            meter
                .u64_counter("culture.harness.llm.tokens.input")
                .with_description("Per-LLM-call input token count by backend/model/nick")
                .build()
                .add(input, &by_nick);
            meter
                .u64_counter("culture.harness.llm.tokens.output")
                .with_description("Per-LLM-call output token count by backend/model/nick")
                .build()
                .add(output, &by_nick);
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, RunnerStats> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn turn_status(&self, answer: Option<&str>) -> TurnStatus {
        let stats = self.stats();
        TurnStatus {
            running: self.thread.is_some() && self.process.is_some(),
            turn_count: stats.turn_count,
            last_activation: stats.last_activation,
            description: prompt::describe(answer.unwrap_or(&stats.last_text)),
        }
    }

    fn status(&self) -> RunnerStatus {
        let phase = match (&self.thread, &self.active) {
            (None, _) => "handshake",
            (Some(_), None) => "idle",
            (Some(_), Some(_)) => "turn",
        };
        let turn = self.active.as_ref().map(|active| {
            let reply_to = match &active.purpose {
                Purpose::Entry { reply_to, .. } => Some(reply_to.as_str()),
                Purpose::Query { .. } => None,
            };
            json!({
                "id": active.turn.id,
                "reply_to": reply_to,
                "elapsed_s": active.turn.started.elapsed().as_secs_f64(),
                "tools_open": active.turn.open_tools(),
                "interrupted": active.turn.interrupted.is_some(),
            })
        });
        let pending = self.inbox.journal.lock().pending().len();
        let stats = self.stats().clone();
        let pid = self.process.as_ref().map(CodexProcess::pid);
        let summary = format!(
            "codex pid {}, {phase}, {pending} pending, {} turn(s) answered",
            pid.map_or("-".to_owned(), |p| p.to_string()),
            stats.turn_count
        );
        RunnerStatus {
            pid,
            thread_id: self.thread.clone(),
            phase,
            turn,
            pending,
            requests_in_flight: self.requests.len(),
            paused: self.peers.pause.reason(),
            stats,
            stderr_tail: self
                .process
                .as_ref()
                .map(|p| last_lines(&p.stderr_tail(), 5))
                .unwrap_or_default(),
            summary,
        }
    }
}

/// Records the outcome and token counts on the turn's span (and so ends it when dropped).
fn end_span(turn: &Turn, outcome: &str) {
    turn.span.record("outcome", outcome);
    if let Some((input, output)) = turn.tokens {
        turn.span.record("tokens.input", input);
        turn.span.record("tokens.output", output);
    }
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(count)..].join(" | ")
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
