//! The `socket` actor: Culture's agent IPC at `$XDG_RUNTIME_DIR/culture-<nick>.sock`
//! (fallback `~/.culture/run/`), so Culture's skill client and `culture channel` CLI drive
//! the agent unchanged.
//!
//! The socket is bound once per agent ([`AgentSocket::bind`], before the agent starts: a
//! live socket of another daemon makes the agent fail to start instead of being stolen) and
//! outlives restarts of this actor, as do the waiting whispers; a restart only drops the
//! open connections, and clients reconnect to the same path. The actor owns the accept
//! loop; each connection is a task ([`conn`]) and every request is carried out there
//! ([`verbs`]), so the mailbox stays free for status, faults and whispers.
//!
//! | request             | does                                        | `data`                       |
//! |---------------------|---------------------------------------------|------------------------------|
//! | `irc_send`          | PRIVMSG (joined check for channels)         | — (`warnings` maybe)         |
//! | `irc_read`          | destructive read of `#chan` / `DM:<nick>`   | `messages`                   |
//! | `irc_join/part`     | JOIN / PART                                 | —                            |
//! | `irc_channels`      | —                                           | `channels`                   |
//! | `irc_who`           | WHO, answer collected                       | `target`, `members`          |
//! | `irc_topic`         | TOPIC set or query                          | —                            |
//! | `irc_ask`           | PRIVMSG (no joined check) + `agent_question`| —                            |
//! | `irc_thread_*`      | THREAD CREATE / REPLY, THREADCLOSE          | —                            |
//! | `irc_threads`       | THREADS, answer collected                   | `channel`, `threads`         |
//! | `irc_thread_read`   | a thread's lines (cursor untouched)         | `messages` (with `thread`)   |
//! | `compact` / `clear` | the runner's next prompt                    | —                            |
//! | `status`            | —                                           | Culture's seven fields       |
//! | `pause` / `resume`  | the agent's pause switch                    | —                            |
//! | `shutdown`          | stops this agent (answered first)           | —                            |
//!
//! The operator's `codexd pause|resume|say|whisper` reach the actor through the daemon's
//! [`SocketDirectory`] and are carried out by the same verbs ([`operator`]).

mod bind;
mod conn;
mod hub;
mod operator;
mod pidfile;
mod protocol;
mod repo;
mod tool;
mod verbs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

pub use bind::{BindError, BoundSocket, discard_input, own_uid};
pub use conn::MAX_REQUEST_LINE;
pub use operator::{OperatorAnswer, OperatorError, OperatorRequest, SocketDirectory, WhisperKind};
pub use pidfile::PidFile;

use crate::child::{ChildFactory, ChildHandle, ControlMsg, Report, spawn_linked};
use crate::fault;
use crate::irc::IrcMessage;
use crate::link::Link;
use crate::pause::PauseSwitch;
use crate::runner::{CurrentTurn, RunnerMessage};
use crate::trace::TraceCtx;
use crate::webhook::WebhookMessage;
use conn::Shared;
use hub::Hub;
use protocol::WhisperLine;
use verbs::Agent;

/// The actor.
pub struct Socket;

/// Messages of the [`Socket`] actor.
#[derive(Debug)]
pub enum SocketMessage {
    /// Supervisor and operator requests (status, faults `panic`, `error`, `hang`).
    Control(ControlMsg),
    /// Deliver a whisper to every connected client, or keep it for the next one.
    Whisper(Whisper),
    /// A tool call of the agent's model ([`crate::tools`]): carried out like the IPC
    /// request it is, in a task (never in the actor).
    Tool(crate::tools::ToolCall),
    /// An operator's request (`codexd pause|resume|say|whisper`): a whisper is delivered
    /// here, the others are carried out in a task as the IPC verbs they are.
    Operator {
        /// What to do.
        request: OperatorRequest,
        /// The control request it continues.
        trace: TraceCtx,
        /// The answer (warnings, a note), or why it was refused.
        reply: RpcReplyPort<Result<OperatorAnswer, OperatorError>>,
    },
}

impl From<ControlMsg> for SocketMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// An unsolicited note to the agent (the overseer's verdicts); never posted to IRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whisper {
    /// The text.
    pub message: String,
    /// `CORRECTION`, `THINK_DEEPER`, …
    pub kind: String,
    /// The evaluation it came from.
    pub trace: TraceCtx,
}

/// A request to stop one agent for good (IPC `shutdown`); the daemon carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRequest {
    /// The agent.
    pub nick: String,
    /// The request it came from.
    pub trace: TraceCtx,
}

/// An agent's bound IPC socket, and the PID file Culture's CLI looks for beside it; both
/// files are removed when the last holder drops them.
#[derive(Debug, Clone)]
pub struct AgentSocket {
    bound: Arc<BoundSocket>,
    pid_file: Option<Arc<PidFile>>,
}

impl AgentSocket {
    /// Culture's path for `nick` in `dir`: `<dir>/culture-<nick>.sock`.
    pub fn path_for(dir: &Path, nick: &str) -> PathBuf {
        dir.join(format!("culture-{nick}.sock"))
    }

    /// Binds `<dir>/culture-<nick>.sock` (0600, directory created 0700; with
    /// `private_dir` an existing directory is made 0700 too, Culture's rule for its
    /// `~/.culture/run` fallback). A live socket at the path is an error, a stale one is
    /// replaced. Must run inside a tokio runtime.
    pub fn bind(dir: &Path, nick: &str, private_dir: bool) -> Result<Self, BindError> {
        let path = Self::path_for(dir, nick);
        let bound = match private_dir {
            true => BoundSocket::bind_private_dir(&path)?,
            false => BoundSocket::bind(&path)?,
        };
        Ok(Self {
            bound: Arc::new(bound),
            pid_file: None,
        })
    }

    /// The same socket, with the agent's PID file held (and removed) alongside it.
    pub fn with_pid_file(self, pid_file: PidFile) -> Self {
        Self {
            pid_file: Some(Arc::new(pid_file)),
            ..self
        }
    }

    /// Where it is bound.
    pub fn path(&self) -> &Path {
        self.bound.path()
    }

    /// The agent's PID file, if it has one.
    pub fn pid_file(&self) -> Option<&Path> {
        self.pid_file.as_deref().map(PidFile::path)
    }
}

/// The agent's other parts a request can reach; all late-bound, so restarts on either
/// side need no rewiring.
#[derive(Debug, Clone)]
pub struct SocketPeers {
    /// The agent's nick.
    pub nick: String,
    /// Its `irc` actor.
    pub irc: Link<IrcMessage>,
    /// Its runner.
    pub runner: Link<RunnerMessage>,
    /// Its webhook.
    pub webhook: Link<WebhookMessage>,
    /// Its pause switch.
    pub pause: PauseSwitch,
    /// The turn in progress (to parent request spans).
    pub turn: CurrentTurn,
    /// Where `shutdown` asks the daemon to stop the agent.
    pub stop: mpsc::Sender<StopRequest>,
    /// Its `repo` child (repository jobs), when it takes jobs.
    pub repo: Link<crate::repo::jobs::RepoJobsMessage>,
    /// It takes repository jobs (`repo:`).
    pub repo_jobs: bool,
}

/// Starts the socket actor; holds what outlives its restarts (the bound socket, the
/// whisper queue and counters).
pub struct SocketFactory {
    socket: AgentSocket,
    peers: SocketPeers,
    link: Link<SocketMessage>,
    hub: Arc<Hub>,
}

impl SocketFactory {
    /// A factory serving `socket` for the agent `peers` describe, registering each
    /// instance in `link` (the overseer whispers through it).
    pub fn new(socket: AgentSocket, peers: SocketPeers, link: Link<SocketMessage>) -> Self {
        Self {
            socket,
            peers,
            link,
            hub: Arc::new(Hub::default()),
        }
    }
}

impl ChildFactory for SocketFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let peers = self.peers.clone();
        let shared = Shared {
            hub: self.hub.clone(),
            pid_file: self.socket.pid_file.clone(),
            agent: Agent {
                nick: peers.nick,
                irc: peers.irc,
                runner: peers.runner,
                webhook: peers.webhook,
                pause: peers.pause,
                turn: peers.turn,
                stop: peers.stop,
                supervisor: supervisor.clone(),
                repo: peers.repo,
                repo_jobs: peers.repo_jobs,
            },
        };
        let args = SocketArgs {
            socket: self.socket.clone(),
            shared: Arc::new(shared),
            link: self.link.clone(),
        };
        spawn_linked(Socket, args, supervisor)
    }
}

/// What each instance starts with.
pub struct SocketArgs {
    socket: AgentSocket,
    shared: Arc<Shared>,
    link: Link<SocketMessage>,
}

/// The actor's state: the accept loop (aborted, with every connection, on drop).
pub struct SocketState {
    socket: AgentSocket,
    shared: Arc<Shared>,
    link: Link<SocketMessage>,
    myself: ActorRef<SocketMessage>,
    accept: JoinHandle<()>,
}

impl Drop for SocketState {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `codexd status` detail of the socket child.
#[derive(Debug, Clone, Serialize)]
struct SocketStatus {
    path: String,
    #[serde(flatten)]
    stats: hub::HubStats,
    summary: String,
}

impl Actor for Socket {
    type Msg = SocketMessage;
    type State = SocketState;
    type Arguments = SocketArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SocketMessage>,
        args: SocketArgs,
    ) -> Result<SocketState, ActorProcessingErr> {
        args.link.set(myself.clone());
        let accept = tokio::spawn(accept_loop(
            args.socket.bound.listener(),
            args.shared.clone(),
        ));
        tracing::info!(agent.nick = %args.shared.agent.nick, path = %args.socket.path().display(), "ipc socket serving");
        Ok(SocketState {
            socket: args.socket,
            shared: args.shared,
            link: args.link,
            myself,
            accept,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SocketMessage>,
        msg: SocketMessage,
        state: &mut SocketState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SocketMessage::Control(control) => return state.on_control(control).await,
            SocketMessage::Whisper(whisper) => state.whisper(&whisper),
            SocketMessage::Tool(call) => state.tool(call),
            SocketMessage::Operator {
                request,
                trace,
                reply,
            } => state.operator(request, trace, reply),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SocketMessage>,
        state: &mut SocketState,
    ) -> Result<(), ActorProcessingErr> {
        state.link.clear(&state.myself);
        Ok(())
    }
}

impl SocketState {
    /// Runs a tool call in a task of its own; its answer goes straight to `reply`.
    fn tool(&self, call: crate::tools::ToolCall) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let outcome = tool::call(
                &shared.agent,
                &call.tool,
                &call.arguments,
                call.conversation.as_deref(),
                &call.trace,
            )
            .await;
            let _ = call.reply.send(outcome);
        });
    }

    /// An operator's request: a whisper now (no I/O), the rest in a task of its own.
    fn operator(
        &self,
        request: OperatorRequest,
        trace: TraceCtx,
        reply: RpcReplyPort<Result<OperatorAnswer, OperatorError>>,
    ) {
        let nick = &self.shared.agent.nick;
        let span = trace.follow(tracing::info_span!(
            "codexd.operator.request",
            agent.nick = %nick,
            request = request.name(),
        ));
        if let OperatorRequest::Whisper { kind, text } = request {
            let whisper = Whisper {
                message: text,
                kind: kind.name().to_owned(),
                trace: span.in_scope(TraceCtx::current),
            };
            span.in_scope(|| tracing::info!(agent.nick = %nick, whisper.kind = kind.name(), "operator whisper"));
            self.whisper(&whisper);
            let _ = reply.send(Ok(OperatorAnswer::default()));
            return;
        }
        let shared = self.shared.clone();
        tokio::spawn(
            async move {
                let trace = TraceCtx::current();
                let answer = operator::carry_out(&shared.agent, request, &trace).await;
                if let Err(error) = &answer {
                    tracing::info!(agent.nick = %shared.agent.nick, error = %error, "operator request refused");
                }
                let _ = reply.send(answer);
            }
            .instrument(span),
        );
    }

    async fn on_control(&mut self, control: ControlMsg) -> Result<(), ActorProcessingErr> {
        match control {
            ControlMsg::Status { reply, .. } => {
                let _ = reply.send(Report::leaf(&self.status()));
                Ok(())
            }
            other => fault::handle_leaf(other, "socket").await,
        }
    }

    fn whisper(&self, whisper: &Whisper) {
        let line = protocol::encode_line(&WhisperLine {
            kind: "whisper",
            message: &whisper.message,
            whisper_type: &whisper.kind,
        });
        let span = whisper.trace.follow(tracing::info_span!(
            "codexd.ipc.whisper",
            whisper.kind = %whisper.kind,
            agent.nick = %self.shared.agent.nick,
        ));
        let _entered = span.enter();
        let delivered = self.shared.hub.whisper(line);
        tracing::info!(agent.nick = %self.shared.agent.nick, whisper.kind = %whisper.kind, delivered, "whisper");
        // The model reads it too: a sandboxed agent's skill client cannot reach the socket.
        if let Some(runner) = self.shared.agent.runner.get() {
            let _ = runner.cast(crate::runner::RunnerMessage::Whisper {
                kind: whisper.kind.clone(),
                message: whisper.message.clone(),
            });
        }
    }

    fn status(&self) -> SocketStatus {
        let stats = self.shared.hub.stats();
        let path = self.socket.path().display().to_string();
        let summary = format!(
            "{} client(s), {} request(s), {} whisper(s) waiting",
            stats.clients, stats.requests, stats.whispers_queued
        );
        SocketStatus {
            path,
            stats,
            summary,
        }
    }
}

/// Accepts clients until aborted; each connection is a task that ends with this loop.
async fn accept_loop(listener: Arc<UnixListener>, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(conn::serve(stream, shared.clone()));
                }
                Err(error) => {
                    tracing::warn!(agent.nick = %shared.agent.nick, error = %error, "ipc accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
