//! The `overseer` actor (Culture's "supervisor", codexd-spec §13): watches the agent's
//! messages and, every `eval_interval` of them, asks a model whether the agent is doing
//! well; whispers guidance to the agent, or alerts humans and pauses it.
//!
//! | part                                  | module       |
//! |---------------------------------------|--------------|
//! | window, when due, verdict → step      | [`policy`]   |
//! | transcript, prompt, `prompt_override` | [`prompt`]   |
//! | verdict parsing                       | [`verdict`]  |
//! | one `codex exec` run                  | [`evaluate`] |
//!
//! The overseer listens to the runner's events: each [`RunnerEvent::AgentMessage`] (an agent
//! message of a journaled turn: mentions, DMs, channel polls; a status query's answer is not
//! agent activity) becomes an [`OverseerMessage::Observe`]; the runner never waits on it. An evaluation runs in a task that casts the
//! result back ([`OverseerMessage::Evaluated`]), one at a time: an evaluation that falls
//! due while one runs is coalesced into one more run, over the newest window, when it ends.
//! A failed or timed-out evaluation is logged and counted; it yields no verdict.
//!
//! | verdict                      | does                                                     |
//! |------------------------------|----------------------------------------------------------|
//! | `OK`                         | resets the escalation count                              |
//! | `CORRECTION`, `THINK_DEEPER` | whisper over the `socket` actor; resets the count        |
//! | `ESCALATION`                 | count + 1; at the threshold, once: `agent_spiraling` alert and pause (`escalation`) |
//!
//! The window, counters and escalation count outlive restarts of the actor.

pub mod evaluate;
pub mod policy;
pub mod prompt;
pub mod verdict;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::child::{ChildFactory, ChildHandle, ControlMsg, Report, spawn_linked};
use crate::codex::child::CodexCommand;
use crate::fault;
use crate::link::Link;
use crate::pause::{PauseReason, PauseSwitch};
use crate::runner::RunnerEvent;
use crate::socket::{SocketMessage, Whisper};
use crate::trace::TraceCtx;
use crate::webhook::{Alert, AlertEvent, WebhookMessage};
use evaluate::EvalError;
use policy::{Escalations, Step, Window};
use prompt::Template;
use verdict::Parsed;

/// How an agent's overseer evaluates it.
#[derive(Debug, Clone)]
pub struct OverseerSettings {
    /// The agent's nick.
    pub nick: String,
    /// The agent's codex binary, directory and environment, with [`evaluate::exec_args`].
    pub command: CodexCommand,
    /// `supervisor.model`.
    pub model: String,
    /// The prompt (`prompt_override` or Culture's).
    pub template: Template,
    /// Agent messages kept for the transcript (`window_size`).
    pub window_size: usize,
    /// Evaluate every this many messages (`eval_interval`).
    pub eval_interval: u64,
    /// Consecutive escalations that alert and pause (`escalation_threshold`).
    pub escalation_threshold: u32,
    /// An evaluation running longer is killed (`supervisor.timeout`).
    pub timeout: Duration,
}

impl OverseerSettings {
    /// Culture's defaults (20 messages, every 5, threshold 3, default prompt) and a 60 s
    /// timeout, evaluating with `command`'s binary, cwd and environment and `model`.
    pub fn new(nick: &str, mut command: CodexCommand, model: &str) -> Self {
        command.args = evaluate::exec_args(model);
        Self {
            nick: nick.to_owned(),
            command,
            model: model.to_owned(),
            template: Template::default_prompt(),
            window_size: 20,
            eval_interval: 5,
            escalation_threshold: 3,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The agent's other parts the overseer reaches; all outlive its restarts.
#[derive(Debug, Clone)]
pub struct OverseerPeers {
    /// The `socket` actor (whispers).
    pub socket: Link<SocketMessage>,
    /// The webhook (alerts).
    pub webhook: Link<WebhookMessage>,
    /// The agent's pause switch.
    pub pause: PauseSwitch,
    /// The runner's events (each instance subscribes when it starts).
    pub runner: tokio::sync::broadcast::Sender<RunnerEvent>,
}

/// What outlives the actor's restarts.
#[derive(Debug)]
struct Book {
    window: Window,
    escalations: Escalations,
    evaluations: u64,
    evaluations_failed: u64,
    last_verdict: Option<String>,
    last_error: Option<String>,
}

/// Starts the overseer; holds its window and counters across restarts.
pub struct OverseerFactory {
    settings: Arc<OverseerSettings>,
    peers: OverseerPeers,
    book: Arc<Mutex<Book>>,
}

impl OverseerFactory {
    /// A factory for the agent `settings` describe.
    pub fn new(settings: OverseerSettings, peers: OverseerPeers) -> Self {
        let book = Book {
            window: Window::new(settings.window_size, settings.eval_interval),
            escalations: Escalations::new(settings.escalation_threshold),
            evaluations: 0,
            evaluations_failed: 0,
            last_verdict: None,
            last_error: None,
        };
        Self {
            settings: Arc::new(settings),
            peers,
            book: Arc::new(Mutex::new(book)),
        }
    }
}

impl ChildFactory for OverseerFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let args = OverseerArgs {
            settings: self.settings.clone(),
            peers: self.peers.clone(),
            book: self.book.clone(),
        };
        spawn_linked(Overseer, args, supervisor)
    }
}

/// The actor.
pub struct Overseer;

/// What each instance starts with.
pub struct OverseerArgs {
    settings: Arc<OverseerSettings>,
    peers: OverseerPeers,
    book: Arc<Mutex<Book>>,
}

/// Messages of the [`Overseer`] actor.
#[derive(Debug)]
pub enum OverseerMessage {
    /// Supervisor and operator requests (status; faults `panic`, `error`, `hang`).
    Control(ControlMsg),
    /// The agent completed a message in a turn (the runner's [`RunnerEvent::AgentMessage`]).
    Observe {
        /// The message's text.
        text: String,
        /// The turn it belongs to.
        trace: TraceCtx,
    },
    /// An evaluation ended (sent by its task).
    Evaluated(Evaluation),
}

impl From<ControlMsg> for OverseerMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// The result of one evaluation, with its span (still open).
#[derive(Debug)]
pub struct Evaluation {
    result: Result<String, EvalError>,
    span: tracing::Span,
    elapsed: Duration,
}

/// The actor's state; a running evaluation is aborted (its codex killed) on drop.
pub struct OverseerState {
    settings: Arc<OverseerSettings>,
    peers: OverseerPeers,
    book: Arc<Mutex<Book>>,
    myself: ActorRef<OverseerMessage>,
    running: Option<JoinHandle<()>>,
    /// An evaluation fell due while one ran: the trace of the message that made it due.
    pending: Option<TraceCtx>,
    /// The task forwarding the runner's events.
    listener: JoinHandle<()>,
}

impl Drop for OverseerState {
    fn drop(&mut self) {
        self.listener.abort();
        if let Some(task) = self.running.take() {
            task.abort();
        }
    }
}

/// `codexd status` detail of the overseer child.
#[derive(Debug, Clone, Serialize)]
struct OverseerStatus {
    model: String,
    observed: u64,
    window: usize,
    window_size: usize,
    eval_interval: u64,
    evaluations: u64,
    evaluations_failed: u64,
    evaluating: bool,
    last_verdict: Option<String>,
    last_error: Option<String>,
    escalations: u32,
    escalation_threshold: u32,
    summary: String,
}

impl Actor for Overseer {
    type Msg = OverseerMessage;
    type State = OverseerState;
    type Arguments = OverseerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<OverseerMessage>,
        args: OverseerArgs,
    ) -> Result<OverseerState, ActorProcessingErr> {
        let listener = tokio::spawn(listen(args.peers.runner.subscribe(), myself.clone()));
        Ok(OverseerState {
            settings: args.settings,
            peers: args.peers,
            book: args.book,
            myself,
            running: None,
            pending: None,
            listener,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<OverseerMessage>,
        msg: OverseerMessage,
        state: &mut OverseerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            OverseerMessage::Control(control) => return state.on_control(control).await,
            OverseerMessage::Observe { text, trace } => state.observe(text, trace),
            OverseerMessage::Evaluated(evaluation) => state.evaluated(evaluation),
        }
        Ok(())
    }
}

/// Forwards the runner's agent messages to the overseer as [`OverseerMessage::Observe`].
async fn listen(
    mut events: tokio::sync::broadcast::Receiver<RunnerEvent>,
    overseer: ActorRef<OverseerMessage>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(RunnerEvent::AgentMessage { text, trace }) => {
                if overseer
                    .cast(OverseerMessage::Observe { text, trace })
                    .is_err()
                {
                    return;
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "the overseer fell behind the runner's messages");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

impl OverseerState {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn on_control(&mut self, control: ControlMsg) -> Result<(), ActorProcessingErr> {
        match control {
            ControlMsg::Status { reply, .. } => {
                let _ = reply.send(Report::leaf(&self.status()));
                Ok(())
            }
            other => fault::handle_leaf(other, "overseer").await,
        }
    }

    fn observe(&mut self, text: String, trace: TraceCtx) {
        if !self.book().window.observe(text) {
            return;
        }
        match self.running {
            Some(_) => self.pending = Some(trace),
            None => self.start(trace),
        }
    }

    /// Starts an evaluation of the current window, as a child of `trace`.
    fn start(&mut self, trace: TraceCtx) {
        let messages = self.book().window.messages();
        let prompt = self
            .settings
            .template
            .render(&prompt::transcript(&messages));
        let span = trace.follow(tracing::info_span!(
            "codexd.overseer.evaluate",
            agent.nick = %self.settings.nick,
            overseer.model = %self.settings.model,
            overseer.window = messages.len(),
            verdict = tracing::field::Empty,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        ));
        let command = self.settings.command.clone();
        let timeout = self.settings.timeout;
        let myself = self.myself.clone();
        let task_span = span.clone();
        let task = async move {
            let started = Instant::now();
            let result = evaluate::run(&command, prompt, timeout).await;
            let elapsed = started.elapsed();
            let evaluation = Evaluation {
                result,
                span,
                elapsed,
            };
            let _ = myself.cast(OverseerMessage::Evaluated(evaluation));
        };
        self.running = Some(tokio::spawn(task.instrument(task_span)));
    }

    fn evaluated(&mut self, evaluation: Evaluation) {
        self.running = None;
        let Evaluation {
            result,
            span,
            elapsed,
        } = evaluation;
        span.record("duration_ms", elapsed.as_millis() as u64);
        let nick = self.settings.nick.clone();
        match result {
            Err(error) => {
                let outcome = match error {
                    EvalError::TimedOut(_) => "timeout",
                    _ => "failed",
                };
                span.record("outcome", outcome);
                tracing::warn!(parent: &span, agent.nick = %nick, error = %error, "overseer evaluation failed; no verdict");
                let mut book = self.book();
                book.evaluations += 1;
                book.evaluations_failed += 1;
                book.last_error = Some(error.to_string());
            }
            Ok(stdout) => self.verdict(&stdout, &span),
        }
        if let Some(trace) = self.pending.take() {
            self.start(trace);
        }
    }

    fn verdict(&mut self, stdout: &str, span: &tracing::Span) {
        let nick = &self.settings.nick;
        let parsed = verdict::parse(stdout);
        if let Parsed::Unknown { word } = &parsed {
            tracing::warn!(parent: span, agent.nick = %nick, verdict = %word, "unknown overseer verdict, defaulting to OK");
        }
        let verdict = parsed.verdict();
        span.record("verdict", verdict.action.name());
        span.record("outcome", "ok");
        tracing::info!(parent: span, agent.nick = %nick, verdict = %verdict.action, message = %verdict.message, "overseer verdict");
        let paused = self.peers.pause.is_paused();
        let step = {
            let mut book = self.book();
            book.evaluations += 1;
            book.last_verdict = Some(verdict.action.name().to_owned());
            book.escalations.on_verdict(&verdict, paused)
        };
        let trace = {
            let _entered = span.enter();
            TraceCtx::current()
        };
        match step {
            Step::Nothing => {}
            Step::Whisper { kind, message } => self.whisper(kind.name(), message, trace),
            Step::Escalate { message } => self.escalate(&message, trace),
        }
    }

    fn whisper(&self, kind: &str, message: String, trace: TraceCtx) {
        let whisper = Whisper {
            message,
            kind: kind.to_owned(),
            trace,
        };
        let sent = self
            .peers
            .socket
            .get()
            .is_some_and(|socket| socket.cast(SocketMessage::Whisper(whisper)).is_ok());
        if !sent {
            tracing::warn!(agent.nick = %self.settings.nick, whisper.kind = kind, "whisper dropped: the socket actor is not running");
        }
    }

    fn escalate(&self, message: &str, trace: TraceCtx) {
        let nick = &self.settings.nick;
        let count = self.book().escalations.count();
        tracing::error!(agent.nick = %nick, escalations = count, "Agent {nick} paused after {count} consecutive overseer escalations");
        self.peers.pause.pause(PauseReason::Escalation);
        let alert = Alert {
            event: AlertEvent::AgentSpiraling,
            nick: nick.clone(),
            message: format!("[ESCALATION] {nick}: {message}"),
            trace,
        };
        let sent = self
            .peers
            .webhook
            .get()
            .is_some_and(|webhook| webhook.cast(WebhookMessage::Alert(alert)).is_ok());
        if !sent {
            tracing::warn!(agent.nick = %nick, "escalation alert not delivered: no webhook actor runs");
        }
    }

    fn status(&self) -> OverseerStatus {
        let book = self.book();
        let evaluating = self.running.is_some();
        let summary = format!(
            "{} message(s) observed, {} evaluation(s) ({} failed), last verdict {}{}",
            book.window.observed(),
            book.evaluations,
            book.evaluations_failed,
            book.last_verdict.as_deref().unwrap_or("none"),
            if evaluating { ", evaluating" } else { "" },
        );
        OverseerStatus {
            model: self.settings.model.clone(),
            observed: book.window.observed(),
            window: book.window.len(),
            window_size: self.settings.window_size,
            eval_interval: self.settings.eval_interval,
            evaluations: book.evaluations,
            evaluations_failed: book.evaluations_failed,
            evaluating,
            last_verdict: book.last_verdict.clone(),
            last_error: book.last_error.clone(),
            escalations: book.escalations.count(),
            escalation_threshold: self.settings.escalation_threshold,
            summary,
        }
    }
}

#[cfg(test)]
#[path = "overseer/actor_tests.rs"]
mod tests;
