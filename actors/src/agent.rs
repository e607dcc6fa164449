//! An agent: a [`Supervisor`] named after its nick whose children are the agent's parts
//! (irc, socket, webhook, attention, runner, overseer). The Host supervises agents like
//! any other child, so one agent's crash loop never touches another.
//!
//! [`AgentSpec::assemble`] wires the parts from their typed settings ([`AgentParts`]): which
//! children, in which order, and how they reach each other. The rule the tree follows: an
//! actor imports the messages of the actors it **commands** and reaches them through a
//! late-bound [`Link`] (the runner tells `irc` what to say); it publishes **events** for the
//! actors that merely listen, on a broadcast they subscribe to (the `irc` actor's lines feed
//! the runner's intake and `attention`; the runner's agent messages feed the `overseer`). So
//! dependencies point one way: nothing an actor listens to imports it back.
//!
//! | link or event            | from → to                                      |
//! |--------------------------|------------------------------------------------|
//! | `Link<IrcMessage>`       | runner, webhook, attention, socket → irc       |
//! | `Link<WebhookMessage>`   | runner, socket, overseer → webhook             |
//! | `Link<RunnerMessage>`    | intake, attention polls, socket → runner       |
//! | `Link<SocketMessage>`    | overseer → socket (whispers); runner → socket (the model's tool calls); the daemon's [`SocketDirectory`] → socket (operator requests) |
//! | `Link<RepoJobsMessage>`  | socket → repo (IPC `repo_*`, the `repo_run` tool, `codexd repo cancel`) |
//! | `IntakePath` (bounded, lossless) | irc → runner intake: mentions and DMs  |
//! | `IrcEvent` broadcast     | irc → attention (may lag: never the journal's path) |
//! | `RunnerEvent` broadcast  | runner → overseer                              |
//! | `PauseSwitch`, `CurrentTurn` | shared state of the agent                  |
//! | [`Slot`](crate::codex::Slot) | runner, repo → its codex process (the `codex` service) |

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{ActorCell, SpawnErr};
use tokio::sync::{broadcast, mpsc};

use crate::attention::sleep::LocalClock;
use crate::attention::{AttentionFactory, AttentionPeers, AttentionSettings};
use crate::child::{ChildFactory, ChildHandle, ChildRole, ChildSpec, spawn_linked};
use crate::codex::CodexPool;
use crate::events::TransitionObserver;
use crate::irc::{INBOUND_WINDOW, IntakePath, IrcFactory, IrcSettings};
use crate::link::Link;
use crate::overseer::{OverseerFactory, OverseerPeers, OverseerSettings};
use crate::pause::PauseSwitch;
use crate::repo::jobs::{JobPeers, JobSettings, RepoJobsFactory};
use crate::restart::RestartPolicy;
use crate::runner::{CurrentTurn, RUNNER_EVENTS, RunnerFactory, RunnerPeers, RunnerSettings};
use crate::socket::{
    AgentSocket, SocketDirectory, SocketFactory, SocketMessage, SocketPeers, StopRequest,
};
use crate::supervisor::{ShutdownOrder, Supervisor, SupervisorArgs};
use crate::test_child::{Script, TestChildFactory};
use crate::tools::ToolDoor;
use crate::webhook::{AlertRelay, WebhookFactory, WebhookPeers, WebhookSettings, observe};

/// Events an agent's `irc` actor may buffer for slow subscribers.
const IRC_EVENTS: usize = 1024;

/// Each part of one agent, by its typed settings. A part that is `None` does not run: a
/// test child stands in for it, or (the overseer) it is switched off.
pub struct AgentParts {
    /// The agent's nick.
    pub nick: String,
    /// The restart policy of the agent and of each of its children.
    pub policy: RestartPolicy,
    /// How long one child may take to stop.
    pub stop_timeout: Duration,
    /// Alerts.
    pub webhook: WebhookSettings,
    /// The conversations on codex (its slot already placed); `None` under test.
    pub runner: Option<RunnerSettings>,
    /// Attention bands and channel polls.
    pub attention: AttentionSettings,
    /// The local time of day for the sleep schedule.
    pub clock: LocalClock,
    /// The IRC connection.
    pub irc: IrcSettings,
    /// The bound IPC socket; `None` under test.
    pub socket: Option<AgentSocket>,
    /// Behaviour evaluation; `None` when `supervisor.enabled` is off.
    pub overseer: Option<OverseerSettings>,
    /// Repository jobs; `None` without `repo:` in the agent's config.
    pub repo: Option<JobSettings>,
    /// Children run as inert, fault-injectable test actors (by name).
    pub test_children: Vec<String>,
}

/// What an agent is wired to outside itself.
#[derive(Debug, Clone)]
pub struct AgentWiring {
    /// Where an IPC `shutdown` asks the daemon to stop the agent.
    pub stop: mpsc::Sender<StopRequest>,
    /// The codex service: the agent's alerts report its process's circuit.
    pub codex: CodexPool,
    /// Every agent's webhook: alerts about a whole agent go through another one's.
    pub alerts: AlertRelay,
    /// Where the operator's requests find the agent's `socket` actor.
    pub sockets: SocketDirectory,
}

/// The names of an agent's children, in start order (`repo` last: it stops first, so its
/// jobs' last lines still reach `irc`).
pub const CHILD_NAMES: [&str; 7] = [
    "webhook",
    "runner",
    "attention",
    "socket",
    "irc",
    "overseer",
    "repo",
];

/// Everything needed to run one agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// The agent's IRC nick; its name in the tree.
    pub nick: String,
    /// The Host's policy for restarting the whole agent subtree.
    pub policy: RestartPolicy,
    /// The agent's children, started in this order and stopped in reverse.
    pub children: Vec<ChildSpec>,
    /// How long one child may take to stop.
    pub stop_timeout: Duration,
    /// Told about every transition of the agent's children (the webhook's alerts).
    pub observer: Option<TransitionObserver>,
}

impl AgentSpec {
    /// The Host-level child that runs this agent.
    pub fn into_child(self) -> ChildSpec {
        let name = self.nick.clone();
        let policy = self.policy;
        ChildSpec {
            name,
            role: ChildRole::Member,
            policy,
            factory: Arc::new(AgentFactory { spec: self }),
        }
    }
}

impl AgentSpec {
    /// The agent's tree: its parts in [`CHILD_NAMES`] order (those named in
    /// `test_children` as test actors, and any other test child after them), sharing
    /// late-bound links, events, the pause switch and the current turn, which outlive
    /// any child's restart (the module table). Starts the runner's intake, so it runs
    /// within a tokio runtime.
    pub fn assemble(parts: AgentParts, wiring: AgentWiring) -> AgentSpec {
        let policy = parts.policy;
        let child = |name: &str, factory: Arc<dyn ChildFactory>| ChildSpec {
            name: name.to_owned(),
            role: ChildRole::Member,
            policy,
            factory,
        };
        let testing = |name: &str| parts.test_children.iter().any(|t| t == name);
        let irc = Link::default();
        let webhook = Link::default();
        let (irc_events, _) = broadcast::channel(IRC_EVENTS);
        let (intake, intake_queue) = IntakePath::new(INBOUND_WINDOW);
        let mut intake_queue = Some(intake_queue);
        let (runner_events, _) = broadcast::channel(RUNNER_EVENTS);
        let repo_link = Link::default();
        let socket_peers = SocketPeers {
            nick: parts.nick.clone(),
            irc: irc.clone(),
            runner: Link::default(),
            webhook: webhook.clone(),
            pause: PauseSwitch::default(),
            turn: CurrentTurn::default(),
            stop: wiring.stop,
            repo: repo_link.clone(),
            repo_jobs: parts.repo.is_some(),
        };
        let socket_link = Link::default();
        wiring.sockets.register(&parts.nick, socket_link.clone());
        let mut children = Vec::new();
        let mut polls = None;
        for name in CHILD_NAMES {
            let factory: Option<Arc<dyn ChildFactory>> = match name {
                _ if testing(name) => Some(test_child(name)),
                "webhook" => {
                    let peers = WebhookPeers {
                        irc: irc.clone(),
                        irc_events: Some(irc_events.clone()),
                        link: webhook.clone(),
                        mesh_gate: wiring.alerts.mesh_gate(),
                    };
                    Some(Arc::new(WebhookFactory::new(parts.webhook.clone(), peers)))
                }
                "runner" => parts.runner.clone().map(|settings| {
                    let peers = RunnerPeers {
                        irc: irc.clone(),
                        webhook: webhook.clone(),
                        events: runner_events.clone(),
                        pause: socket_peers.pause.clone(),
                        turn: socket_peers.turn.clone(),
                        link: socket_peers.runner.clone(),
                        tools: tool_door(&socket_link),
                    };
                    let queue = intake_queue.take().expect("one runner per agent");
                    let factory = RunnerFactory::new(settings, peers, queue);
                    polls = factory.polls();
                    Arc::new(factory) as Arc<dyn ChildFactory>
                }),
                "attention" => {
                    let peers = AttentionPeers {
                        irc: irc.clone(),
                        polls: polls.clone(),
                        pause: socket_peers.pause.clone(),
                        clock: parts.clock.clone(),
                    };
                    let settings = parts.attention.clone();
                    Some(Arc::new(AttentionFactory::new(
                        settings,
                        peers,
                        &irc_events,
                    )))
                }
                "irc" => {
                    let settings = parts.irc.clone();
                    let events = irc_events.clone();
                    let factory = IrcFactory::new(settings, events, intake.clone(), irc.clone());
                    Some(Arc::new(factory))
                }
                "socket" => parts.socket.clone().map(|socket| {
                    let factory =
                        SocketFactory::new(socket, socket_peers.clone(), socket_link.clone());
                    Arc::new(factory) as Arc<dyn ChildFactory>
                }),
                "overseer" => parts.overseer.clone().map(|settings| {
                    let peers = OverseerPeers {
                        socket: socket_link.clone(),
                        webhook: webhook.clone(),
                        pause: socket_peers.pause.clone(),
                        runner: runner_events.clone(),
                    };
                    Arc::new(OverseerFactory::new(settings, peers)) as Arc<dyn ChildFactory>
                }),
                "repo" => parts.repo.clone().map(|settings| {
                    let peers = JobPeers {
                        irc: irc.clone(),
                        link: repo_link.clone(),
                    };
                    Arc::new(RepoJobsFactory::new(settings, peers)) as Arc<dyn ChildFactory>
                }),
                _ => None,
            };
            children.extend(factory.map(|factory| child(name, factory)));
        }
        for name in &parts.test_children {
            if !CHILD_NAMES.contains(&name.as_str()) {
                children.push(child(name, test_child(name)));
            }
        }
        let observer = observe::observer(&parts.nick, webhook.clone(), policy.window);
        wiring.codex.report_to(&parts.nick, observer.clone());
        wiring.alerts.register(&parts.nick, webhook);
        AgentSpec {
            nick: parts.nick,
            policy,
            children,
            stop_timeout: parts.stop_timeout,
            observer: Some(observer),
        }
    }
}

/// The runner's tool calls go to the agent's `socket` actor (whichever instance runs).
fn tool_door(socket: &Link<SocketMessage>) -> ToolDoor {
    let socket = socket.clone();
    ToolDoor::new(move |call| {
        socket
            .get()
            .is_some_and(|actor| actor.cast(SocketMessage::Tool(call)).is_ok())
    })
}

fn test_child(name: &str) -> Arc<dyn ChildFactory> {
    Arc::new(TestChildFactory::new(name, Script::Healthy))
}

/// Spawns an agent supervisor with fresh children on every (re)start.
struct AgentFactory {
    spec: AgentSpec,
}

impl ChildFactory for AgentFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let args = SupervisorArgs {
            name: self.spec.nick.clone(),
            children: self.spec.children.clone(),
            shutdown: ShutdownOrder::Reverse,
            stop_timeout: self.spec.stop_timeout,
            observer: self.spec.observer.clone(),
        };
        spawn_linked(Supervisor, args, supervisor)
    }
}
