//! An agent: a [`Supervisor`] named after its nick whose children are the agent's parts
//! (irc, socket, webhook, attention, runner, overseer). The Host supervises agents like
//! any other child, so one agent's crash loop never touches another.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{ActorCell, SpawnErr};

use crate::child::{ChildFactory, ChildHandle, ChildRole, ChildSpec, spawn_linked};
use crate::events::TransitionObserver;
use crate::restart::RestartPolicy;
use crate::supervisor::{ShutdownOrder, Supervisor, SupervisorArgs};

/// The names of an agent's children, in start order.
pub const CHILD_NAMES: [&str; 6] = [
    "webhook",
    "runner",
    "attention",
    "socket",
    "irc",
    "overseer",
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
