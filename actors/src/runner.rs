//! The `runner` actor: the agent's conversation on its codex process (attached through
//! its [`Slot`]: the process itself belongs to the `codex` service, [`crate::codex`]) and
//! the agent's turn loop (reference/codex-app-server.md, codexd-spec.md §7, §11, §14).
//!
//! | part                   | module       | outlives a runner restart |
//! |------------------------|--------------|---------------------------|
//! | protocol params        | [`session`]  | —                         |
//! | one turn's notifications | `turn`     | no (its entry is replayed)|
//! | journal, thread id     | [`journal`]  | yes (on disk)             |
//! | intake (mention → journal), relay (→ irc) | `inbox` | yes            |
//! | prompt formats, reply cleanup | [`prompt`] | —                    |
//!
//! A mention is journaled by the intake, then run as one turn by the actor (one turn at a
//! time, never while paused); each turn carries its own reply target, and its agent
//! messages are relayed as they complete. The entry leaves the journal once its turn ended
//! and its replies were handed to `irc`. Whatever is pending when codex dies, the runner
//! restarts or the daemon stops is replayed on the same codex thread (`thread/resume`)
//! once the process is back: a codex death is the process's failure, not the runner's. Three failed turns in a row pause the agent and raise
//! `agent_spiraling`.

mod actor;
pub mod admission;
pub mod conversation;
mod inbox;
mod intake;
pub mod journal;
pub mod prompt;
pub mod session;
pub(crate) mod turn;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{ActorCell, RpcReplyPort, SpawnErr};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::child::{ChildFactory, ChildHandle, ControlMsg, spawn_linked};
use crate::codex::{SessionEvent, Slot};
use crate::irc::{Addressed, IrcMessage};
use crate::link::Link;
use crate::pause::PauseSwitch;
use crate::tools::ToolChoice;
use crate::trace::TraceCtx;
use crate::webhook::WebhookMessage;
pub use actor::{Runner, RunnerArgs, RunnerState};
use admission::AdmissionSettings;
use conversation::{Conversation, ConversationSettings, SHARED_KEY, ThreadMode};
pub use inbox::{Inbox, PollIntake};
pub use intake::{InboxPeers, IntakeStats};
use session::{Approvals, ThreadConfig};

/// Consecutive failed turns that pause the agent (Culture's `MAX_CONSECUTIVE_TURN_FAILURES`).
pub const MAX_TURN_FAILURES: u32 = 3;

/// How an agent's runner drives codex.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// The agent's nick.
    pub nick: String,
    /// Its place on a codex process (the `codex` service runs the process).
    pub codex: Slot,
    /// What every thread start and resume carries.
    pub thread: ThreadConfig,
    /// How approval requests are answered.
    pub approvals: Approvals,
    /// A turn running longer is interrupted (`turn_timeout_seconds`); `None`: never.
    pub turn_timeout: Option<Duration>,
    /// Budget of every JSON-RPC request (Culture: 30 s; `codex.request_timeout`); one left
    /// unanswered longer (but `thread/compact/start`) means codex is wedged.
    pub request_timeout: Duration,
    /// How long codex may take to end an interrupted turn before it is restarted
    /// (`codex.interrupt_timeout`).
    pub interrupt_timeout: Duration,
    /// How long a `status` query waits for the agent's answer (Culture: 10 s).
    pub query_timeout: Duration,
    /// The agent's state directory (journal, thread id).
    pub state_dir: PathBuf,
    /// What a mention or DM must pass to be journaled (`admission:`).
    pub admission: AdmissionSettings,
    /// The agent's IRC tools, declared on `thread/start` (`tools:`).
    pub tools: ToolChoice,
    /// The agent takes repository jobs (`repo:`): `repo_run` is declared too.
    pub repo_jobs: bool,
    /// How long one tool call may take before the model is told it timed out
    /// (`codex.tool_timeout`).
    pub tool_timeout: Duration,
    /// Threads per conversation or shared, turns at once, steering (`conversations:`).
    pub conversations: ConversationSettings,
    /// The agent's first configured channel: an upgraded agent's thread carries on as its
    /// conversation.
    pub home: Option<String>,
    /// The agent's tags (Culture's ROOMINVITE prompt shows them).
    pub tags: Vec<String>,
    /// The audit log (messages in, turns, tool calls): its files, if on, and the live tap
    /// `codexd watch` follows; `None` records nothing (tests).
    pub audit: Option<crate::audit::Audit>,
}

impl RunnerSettings {
    /// Culture's budgets around `codex` and `thread`.
    pub fn new(nick: &str, codex: Slot, thread: ThreadConfig, state_dir: PathBuf) -> Self {
        Self {
            nick: nick.to_owned(),
            codex,
            thread,
            approvals: Approvals::default(),
            turn_timeout: Some(Duration::from_secs(600)),
            request_timeout: Duration::from_secs(30),
            interrupt_timeout: Duration::from_secs(10),
            query_timeout: Duration::from_secs(10),
            state_dir,
            admission: AdmissionSettings::default(),
            tools: ToolChoice::All,
            repo_jobs: false,
            tool_timeout: Duration::from_secs(30),
            conversations: ConversationSettings::default(),
            home: None,
            tags: Vec::new(),
            audit: None,
        }
    }

    /// The thread key of `conversation`: itself, or the shared thread's.
    pub fn thread_key(&self, conversation: &Conversation) -> String {
        match self.conversations.threads {
            ThreadMode::PerConversation => conversation.as_str().to_owned(),
            ThreadMode::Shared => SHARED_KEY.to_owned(),
        }
    }

    /// The tools its threads start with.
    pub fn tool_set(&self) -> crate::tools::ToolSet<'_> {
        crate::tools::ToolSet {
            irc: &self.tools,
            jobs: self.repo_jobs,
        }
    }

    /// Whether thread key `key` is a private conversation (a DM with threads per
    /// conversation): its content is shown to nobody else.
    pub fn is_private(&self, key: &str) -> bool {
        self.conversations.threads == ThreadMode::PerConversation && key.starts_with("DM:")
    }

    /// Where an upgraded agent's single thread goes: the first channel's conversation.
    pub fn home_key(&self) -> String {
        match (&self.home, self.conversations.threads) {
            (Some(home), ThreadMode::PerConversation) => home.clone(),
            _ => SHARED_KEY.to_owned(),
        }
    }
}

/// The agent's other parts the runner reaches; all outlive its restarts.
#[derive(Debug, Clone)]
pub struct RunnerPeers {
    /// Its `irc` actor (presence).
    pub irc: Link<IrcMessage>,
    /// Its webhook (alerts).
    pub webhook: Link<WebhookMessage>,
    /// Where it publishes its events (the overseer listens).
    pub events: broadcast::Sender<RunnerEvent>,
    /// Its pause switch: no turn starts while paused.
    pub pause: PauseSwitch,
    /// The turn in progress, for the `socket` actor.
    pub turn: CurrentTurn,
    /// Where each runner instance registers itself.
    pub link: Link<RunnerMessage>,
    /// Where the model's tool calls are carried out (the agent's `socket` actor).
    pub tools: crate::tools::ToolDoor,
}

/// What the runner keeps across its own restarts (for `status`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunnerStats {
    /// Turns that produced at least one agent message.
    pub turn_count: u64,
    /// Turns ended, by outcome.
    pub turns_completed: u64,
    /// Failed turns (codex reported a failure).
    pub turns_failed: u64,
    /// Turns interrupted after `turn_timeout`.
    pub turns_timed_out: u64,
    /// Failed or timed-out turns in a row (reset by a good turn and by `resume`).
    pub consecutive_failures: u32,
    /// Epoch seconds of the last mention dispatched to a turn.
    pub last_activation: Option<f64>,
    /// The last agent message (for `status`).
    #[serde(skip)]
    pub last_text: String,
    /// Tokens of all turns: input, output.
    pub tokens_input: u64,
    /// See `tokens_input`.
    pub tokens_output: u64,
}

/// Starts the runner; holds the inbox (journal, intake, relay) and the stats, which
/// outlive every restart of the actor.
pub struct RunnerFactory {
    settings: Arc<RunnerSettings>,
    peers: RunnerPeers,
    inbox: Result<Arc<Inbox>, String>,
    stats: Arc<Mutex<RunnerStats>>,
}

impl RunnerFactory {
    /// Opens the journal in `settings.state_dir` and starts the intake on what the `irc`
    /// actor hands to the agent's intake path (`intake`) and the relay (within a tokio
    /// runtime). A journal that cannot be opened makes every start fail with the reason.
    pub fn new(
        settings: RunnerSettings,
        peers: RunnerPeers,
        intake: mpsc::UnboundedReceiver<Addressed>,
    ) -> Self {
        let inbox = journal::Journal::open(&settings.state_dir)
            .map(|(journal, pending)| {
                if !pending.is_empty() {
                    tracing::info!(agent.nick = %settings.nick, pending = pending.len(), "journal holds accepted mentions; they will be replayed");
                }
                let inbox_peers = InboxPeers {
                    nick: settings.nick.clone(),
                    irc: peers.irc.clone(),
                    runner: peers.link.clone(),
                    webhook: peers.webhook.clone(),
                    tags: settings.tags.clone(),
                    audit: settings.audit.clone(),
                };
                let admission = settings.admission;
                Arc::new(Inbox::start(journal, intake, admission, inbox_peers))
            })
            .map_err(|error| error.to_string());
        if let Err(error) = &inbox {
            tracing::error!(agent.nick = %settings.nick, error = %error, "the runner's journal cannot be opened; the runner cannot start");
        }
        Self {
            settings: Arc::new(settings),
            peers,
            inbox,
            stats: Arc::default(),
        }
    }
}

impl RunnerFactory {
    /// Where the `attention` actor submits channel polls; `None` when the journal could
    /// not be opened (the runner cannot start either).
    pub fn polls(&self) -> Option<PollIntake> {
        let inbox = self.inbox.as_ref().ok()?;
        Some(inbox.polls(&self.settings.nick, self.peers.link.clone()))
    }
}

impl ChildFactory for RunnerFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let inbox = match &self.inbox {
            Ok(inbox) => inbox.clone(),
            Err(error) => {
                let error = SpawnErr::StartupFailed(format!("journal: {error}").into());
                return Box::pin(async move { Err(error) });
            }
        };
        let args = RunnerArgs {
            settings: self.settings.clone(),
            peers: self.peers.clone(),
            inbox,
            stats: self.stats.clone(),
        };
        spawn_linked(Runner, args, supervisor)
    }
}

/// What the runner publishes for the actors that listen (an event, not a command: the
/// runner neither knows nor waits for its listeners).
#[derive(Debug, Clone)]
pub enum RunnerEvent {
    /// The agent completed a message in a journaled turn (not a status query's answer).
    AgentMessage {
        /// The message's text.
        text: String,
        /// The turn it belongs to.
        trace: TraceCtx,
    },
}

/// Events a listener may fall behind by before it misses some.
pub const RUNNER_EVENTS: usize = 256;

/// A Culture slash command the agent can be told to run between turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlashCommand {
    /// `/compact`: summarise the conversation to free context.
    Compact,
    /// `/clear`: start a fresh conversation.
    Clear,
}

impl SlashCommand {
    /// The prompt text.
    pub fn prompt(self) -> &'static str {
        match self {
            SlashCommand::Compact => "/compact",
            SlashCommand::Clear => "/clear",
        }
    }
}

/// What the runner says about its session (Culture's `status` fields it owns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnStatus {
    /// The codex process is up and its thread started.
    pub running: bool,
    /// Assistant messages seen so far.
    pub turn_count: u64,
    /// Epoch seconds of the last mention dispatched to a turn.
    pub last_activation: Option<f64>,
    /// First line of the last assistant text (≤ 120 chars), or `nothing`.
    pub description: String,
    /// The runner waits for its codex process, whose circuit is open (Culture's
    /// `circuit_open` after a codex crash loop).
    pub codex_circuit_open: bool,
}

/// Messages of the runner actor.
#[derive(Debug)]
pub enum RunnerMessage {
    /// Supervisor and operator requests (faults: `kill`, `panic`, `error`, `hang`).
    Control(ControlMsg),
    /// The journal has new entries, or the pause switch moved: start a turn if idle.
    Wake,
    /// Something happened on the runner's session `generation` on its codex process.
    Process {
        /// Which session (events of an older one are dropped).
        generation: u64,
        /// The event.
        event: SessionEvent,
    },
    /// The agent's codex process came up or went down ([`Slot::watch`]): attach if idle.
    CodexChanged,
    /// A deadline may have passed (requests, turn timeout, interrupt, status query).
    Tick,
    /// A whisper (an overseer correction): the model reads it at the start of its next
    /// turn for a mention or DM (skill clients get it from the socket as before).
    Whisper {
        /// `CORRECTION`, `THINK_DEEPER`, …
        kind: String,
        /// The text.
        message: String,
    },
    /// A tool call of session `generation` finished: answer codex's request `id`.
    ToolDone {
        /// The session it belongs to (an older one's answer is dropped).
        generation: u64,
        /// codex's `item/tool/call` request.
        id: crate::codex::jsonrpc::RequestId,
        /// What the model reads.
        outcome: crate::tools::ToolOutcome,
    },
    /// Run a slash command on a conversation's thread once it is idle.
    Command {
        /// Which.
        command: SlashCommand,
        /// The conversation; `None`: every one.
        conversation: Option<Conversation>,
        /// The request this continues.
        trace: TraceCtx,
        /// Accepted, or why not.
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// The session's status; `query` asks the agent itself what it is doing.
    Status {
        /// Ask the agent (a short turn, ≤ 10 s) instead of using the last assistant text.
        query: bool,
        /// The request this continues.
        trace: TraceCtx,
        /// The status.
        reply: RpcReplyPort<TurnStatus>,
    },
}

impl From<ControlMsg> for RunnerMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// The turns an agent's codex process is in: set by the runner when a turn starts and
/// cleared when it ends, read by the `socket` actor so that a request made by the codex
/// process (or a tool it runs) during a turn is traced as part of a turn.
#[derive(Debug, Clone, Default)]
pub struct CurrentTurn {
    slot: Arc<RwLock<Vec<(String, TurnScope)>>>,
    /// The agent's codex process, and whether its conversations are private (a thread per
    /// conversation): a request from under it acts in the running turns' conversations.
    codex: Arc<RwLock<Option<(u32, bool)>>>,
}

/// A running turn: the codex process and the turn's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnScope {
    /// The codex app-server's process id; its descendants act within the turn.
    pub pid: u32,
    /// The turn span's context.
    pub trace: TraceCtx,
    /// The conversation of a turn for mentions or DMs (with threads per conversation).
    pub conversation: Option<String>,
}

impl CurrentTurn {
    /// A turn started on thread key `key`.
    pub fn set(&self, key: &str, scope: TurnScope) {
        if let Ok(mut turns) = self.slot.write() {
            turns.retain(|(k, _)| k != key);
            turns.push((key.to_owned(), scope));
        }
    }

    /// `key`'s turn ended.
    pub fn clear(&self, key: &str) {
        if let Ok(mut turns) = self.slot.write() {
            turns.retain(|(k, _)| k != key);
        }
    }

    /// Every turn ended.
    pub fn clear_all(&self) {
        if let Ok(mut turns) = self.slot.write() {
            turns.clear();
        }
    }

    /// The turn started last among those running, if any (with several running, a
    /// request from the codex process cannot tell which it belongs to).
    pub fn get(&self) -> Option<TurnScope> {
        let turns = self.slot.read().ok()?;
        turns.last().map(|(_, scope)| scope.clone())
    }

    /// The agent is on codex process `pid` (`None`: it has none); `private`: threads per
    /// conversation.
    pub fn set_codex(&self, pid: Option<u32>, private: bool) {
        if let Ok(mut codex) = self.codex.write() {
            *codex = pid.map(|pid| (pid, private));
        }
    }

    /// The agent's codex process and whether its conversations are private.
    pub fn codex(&self) -> Option<(u32, bool)> {
        self.codex.read().ok().and_then(|codex| *codex)
    }

    /// The running turns.
    pub fn all(&self) -> Vec<TurnScope> {
        self.slot
            .read()
            .map(|turns| turns.iter().map(|(_, scope)| scope.clone()).collect())
            .unwrap_or_default()
    }
}
