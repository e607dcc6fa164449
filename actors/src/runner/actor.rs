//! The runner actor: the agent's session on its codex process and its conversations'
//! threads, running the journal's entries as turns (one at a time per thread, up to
//! `conversations.max_turns` threads at once; [`super::conversation`]). The process belongs
//! to the `codex` service: when it dies the runner does not fail; it waits for the next
//! process, resumes each conversation's thread there as its next entry needs it and replays
//! what is pending. It fails (so its supervisor restarts it under the
//! circuit breaker) only on its own errors: a failed handshake, a journal it cannot use.
//!
//! | phase       | entered by                          | leaves on                                   |
//! |-------------|-------------------------------------|---------------------------------------------|
//! | `waiting`   | start, or its process is gone       | the process is up: attach, `initialize` → `handshake` |
//! | `handshake` | attached                            | `initialize` answered → `ready`             |
//! | `ready`     | the session is initialized          | process gone → `waiting`                    |
//!
//! In `ready`, a conversation's thread is opened when its next entry (or a job) needs it:
//! `thread/resume` of the thread in the [`ThreadBook`], else `thread/start`; a resumed thread
//! started with another tool set first writes a summary (a handover turn) and is replaced.
//!
//! codex is **wedged** when a request other than `thread/compact/start` goes unanswered for
//! `request_timeout` (a `turn/start` included: its entry stays journaled, the attempt is
//! counted, and it is replayed on the next process) or an interrupted turn does not end
//! within `interrupt_timeout`; the runner has the process killed for every agent on it.
//! While turns run, every `request_timeout` after the last answer to one, the runner sends a
//! probe (`thread/loaded/list`; any answer, an error included, will do), so a codex that
//! stops mid-turn is found within two `request_timeout`s rather than at `turn_timeout`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::conversation::{Conversation, ThreadBook};
use super::inbox::Inbox;
use super::turn::{Outcome, Turn};
use super::{RunnerMessage, RunnerPeers, RunnerSettings, RunnerStats, SlashCommand, TurnStatus};
use crate::child::{ControlError, ControlMsg, FaultKind, Report};
use crate::codex::jsonrpc::{Incoming, Outgoing, Outstanding, RequestId, RpcError};
use crate::codex::{Attached, SessionEvent};
use crate::fault;
use crate::trace::TraceCtx;

mod attach;
mod audit;
mod invite;
mod report;
mod schedule;
mod threads;
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

/// Who waits for a request's answer (`key`: the thread key it is about).
#[derive(Debug)]
enum Waiter {
    Initialize,
    Resume {
        key: String,
        thread: String,
    },
    StartThread {
        key: String,
    },
    /// `turn/start` of the turn numbered `seq` on `key` (a late answer of an earlier turn
    /// of that key is not this one's).
    TurnStart {
        key: String,
        seq: u64,
    },
    /// `turn/steer` of journal entry `entry` into turn `turn` of `key` (`asked`: not a poll).
    Steer {
        key: String,
        entry: u64,
        turn: String,
        asked: bool,
    },
    Interrupt {
        key: String,
    },
    Compact {
        key: String,
    },
    /// `thread/unsubscribe` of a finished short-lived thread: any answer will do.
    Unsubscribe,
    /// A liveness probe while turns run: any answer will do.
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
    /// IPC `compact` of thread key `key`: codex's native compaction.
    Compact { key: String },
    /// IPC `clear` of thread key `key`: its next turn starts a new thread.
    Clear { key: String },
}

/// What a running turn answers to.
#[derive(Debug)]
enum Purpose {
    /// The summary turn of thread `from`, replaced because its tool set changed: its answer
    /// seeds the new thread's first turn (nothing goes to IRC).
    Handover { from: String },
    /// Journal entries of one conversation: the first started the turn, the others were
    /// steered into it. Replies go to `reply_to`; `asked` is false for a channel poll (no
    /// Sorry line when it fails). `ids` are removed from the journal at the end, but those
    /// already answered when a follow-up is steered in are removed then (a crash after it
    /// replays only what was not answered); `fresh`: how many of the last `ids` joined
    /// after the turn's last agent message.
    Entry {
        ids: Vec<u64>,
        fresh: usize,
        conversation: Conversation,
        reply_to: String,
        asked: bool,
    },
    /// The evaluation of a room invitation (journal entry `id`) on a short-lived thread:
    /// a final YES joins `channel`.
    Invite { id: u64, channel: String },
    /// A status query: the first agent message answers it.
    Query {
        reply: Option<RpcReplyPort<TurnStatus>>,
        deadline: Instant,
    },
}

#[derive(Debug)]
struct Active {
    /// The codex thread it runs on.
    thread: String,
    turn: Turn,
    purpose: Purpose,
    deadline: Option<Instant>,
    trace: TraceCtx,
    /// A `turn/steer` in flight into this turn (its journal entry).
    steering: Option<u64>,
    /// codex refused a steer into this turn while it ran: later follow-ups wait for its end.
    steer_refused: bool,
    /// The runner's number for this turn ([`Waiter::TurnStart`]).
    seq: u64,
    /// It replays an entry codex died during: it runs alone ([`schedule`]).
    suspect: bool,
}

/// A thread key's thread on the current session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Open {
    /// `thread/resume` or `thread/start` sent.
    Opening,
    /// Loaded; `handover`: it was started with another tool set and its summary turn is
    /// due before anything else runs on it.
    Ready { thread: String, handover: bool },
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
    /// `initialize` was answered on the current session.
    initialized: bool,
    /// The conversations' threads, on disk.
    book: ThreadBook,
    /// The threads opened on the current session, by thread key.
    threads: HashMap<String, Open>,
    /// The turns running, by thread key (at most one per thread).
    turns: BTreeMap<String, Active>,
    /// Thread keys whose compaction (a turn codex runs itself) has not completed, with the
    /// time after which it is given up: a `turn/start` there would fail
    /// (`ActiveTurnNotSteerable`).
    compacting: HashMap<String, Instant>,
    /// Steers in flight, by journal entry: their thread key takes nothing else until codex
    /// answers (the turn may end first).
    steers: HashMap<u64, String>,
    /// The number of the last turn started.
    turn_seq: u64,
    /// The number of the last turn of each loaded thread key (the one idle longest is
    /// unloaded first).
    used: HashMap<String, u64>,
    /// The last thread replaced because it had another tool set.
    replaced_thread: Option<String>,
    jobs: VecDeque<Job>,
    /// Journal entries in a turn of this instance (run, steered, or handed to completion).
    dispatched: BTreeSet<u64>,
    /// When the next liveness probe is due while turns run; `None` while one is unanswered
    /// or no turn runs.
    probe: Option<Instant>,
    /// What the room invitations came to (for `status`).
    invitations: invite::Invitations,
    was_paused: bool,
    watcher: JoinHandle<()>,
    codex_watcher: JoinHandle<()>,
}

impl Drop for RunnerState {
    fn drop(&mut self) {
        self.watcher.abort();
        self.codex_watcher.abort();
        self.peers.turn.clear_all();
        self.peers.turn.set_codex(None, false);
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
        let (book, set_aside) =
            ThreadBook::open(&args.settings.state_dir, &args.settings.home_key())?;
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
            settings: args.settings,
            peers: args.peers,
            inbox: args.inbox,
            stats: args.stats,
            myself: myself.clone(),
            process: None,
            generation: 0,
            gone: None,
            requests: Outstanding::new(),
            initialized: false,
            book,
            threads: HashMap::new(),
            turns: BTreeMap::new(),
            compacting: HashMap::new(),
            steers: HashMap::new(),
            turn_seq: 0,
            used: HashMap::new(),
            replaced_thread: None,
            jobs: VecDeque::new(),
            dispatched: BTreeSet::new(),
            probe: None,
            invitations: invite::Invitations::default(),
            was_paused: false,
            watcher,
            codex_watcher,
        };
        state.was_paused = state.peers.pause.is_paused();
        state.attach()?;
        state.peers.link.set(myself);
        state.report_set_aside(set_aside);
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
            RunnerMessage::Command {
                command,
                conversation,
                reply,
                ..
            } => state.on_command(command, conversation, reply),
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
        for (_, active) in std::mem::take(&mut state.turns) {
            // The entries stay journaled: they are replayed on the next start.
            state.interrupt(&active);
            end_span(&active.turn, "stopped");
        }
        // The interrupts are queued for codex's stdin before the runner leaves (dropping
        // the session tells the process to forget it).
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

    /// `compact` / `clear` of one conversation, or of every one (`None`).
    fn on_command(
        &mut self,
        command: SlashCommand,
        conversation: Option<Conversation>,
        reply: RpcReplyPort<Result<(), String>>,
    ) {
        if !self.initialized {
            let _ = reply.send(Err("Agent runner is not running".to_owned()));
            return;
        }
        let keys: Vec<String> = match &conversation {
            Some(conversation) => vec![self.settings.thread_key(conversation)],
            None => self.known_keys(),
        };
        for key in keys {
            self.jobs.push_back(match command {
                SlashCommand::Compact => Job::Compact { key },
                SlashCommand::Clear => Job::Clear { key },
            });
        }
        let _ = reply.send(Ok(()));
        self.next();
    }

    fn on_status(&mut self, query: bool, reply: RpcReplyPort<TurnStatus>) {
        if !query || !self.initialized || self.peers.pause.is_paused() {
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
                let answer = super::session::answer(id, &method, self.settings.approvals);
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
                self.initialized = true;
                tracing::info!(agent.nick = %nick, "codex session ready");
                self.next();
            }
            (Waiter::Initialize, Err(error)) => {
                return Err(super::session::failure("initialize", &error).into());
            }
            (Waiter::Resume { key, thread }, result) => self.resumed(key, thread, result),
            (Waiter::StartThread { key }, result) => self.started(key, result)?,
            (Waiter::TurnStart { key, seq }, Ok(result)) => {
                let active = self.turns.get_mut(&key).filter(|a| a.seq == seq);
                if let Some(active) = active {
                    if active.turn.id.is_none() {
                        active.turn.id = super::session::turn_id(&result);
                    }
                    if let Some(id) = &active.turn.id {
                        active.turn.span.record("codex.turn_id", id.as_str());
                    }
                    self.audit_turn_start(&key);
                }
                self.next();
            }
            (Waiter::TurnStart { key, seq }, Err(error)) => {
                if self.turns.get(&key).is_some_and(|a| a.seq == seq) {
                    let reason = super::session::failure("turn/start", &error);
                    self.finish(&key, Outcome::Failed(reason));
                }
            }
            (
                Waiter::Steer {
                    key,
                    entry,
                    turn,
                    asked,
                },
                result,
            ) => self.steered(&key, (entry, asked), &turn, result),
            (Waiter::Interrupt { key }, Err(error)) => {
                let ended = error.message.contains("no active turn");
                tracing::warn!(agent.nick = %nick, error = %error, "turn/interrupt refused; ending the turn");
                if !ended {
                    // It may still run: nothing may start on its thread, so codex goes.
                    self.wedged(format!("codex refused to interrupt a turn: {error}"));
                }
                self.finish(&key, Outcome::Timeout);
            }
            (Waiter::Interrupt { .. }, Ok(_)) => {}
            (Waiter::Probe, _) => {
                self.probe = None;
                if !self.turns.is_empty() {
                    let next = Instant::now() + self.settings.request_timeout;
                    self.probe = Some(next);
                    self.arm(next);
                }
            }
            (Waiter::Compact { key }, result) => {
                tracing::info!(agent.nick = %nick, conversation = %key, ok = result.is_ok(), "thread/compact/start answered");
                if result.is_err() {
                    self.compacting.remove(&key);
                    self.next();
                }
            }
            (Waiter::Unsubscribe, result) => {
                tracing::debug!(agent.nick = %nick, ok = result.is_ok(), "thread/unsubscribe answered")
            }
        }
        Ok(())
    }

    /// Interrupts `active`'s turn with a request nobody waits for (the runner is stopping).
    fn interrupt(&self, active: &Active) {
        if let Some(turn) = &active.turn.id {
            let request = Outgoing::Request {
                id: RequestId::Str("shutdown-interrupt".into()),
                method: "turn/interrupt".into(),
                params: Some(super::session::turn_interrupt(&active.thread, turn)),
            };
            let _ = self.send(&request);
        }
    }
}
