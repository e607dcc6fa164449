//! The Host: the root [`Supervisor`], one child per agent plus daemon services (the
//! control socket). [`Host`] wraps its `ActorRef` with the typed requests the control
//! socket and SIGHUP reloads make.

use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorRef, RpcReplyPort, SpawnErr};
use serde::{Deserialize, Serialize};

use crate::agent::AgentSpec;
use crate::child::{ChildSpec, ChildStatus, ControlError, ControlMsg, FaultKind};
use crate::events::TransitionObserver;
use crate::supervisor::{ShutdownOrder, Supervisor, SupervisorArgs, SupervisorMsg};
use crate::trace::TraceCtx;

/// How long a control request may take before the Host is reported unresponsive.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the tree may take to describe itself (each level halves it for the next).
pub const STATUS_BUDGET: Duration = Duration::from_secs(2);

/// What the Host starts with.
#[derive(Debug)]
pub struct HostSpec {
    /// Daemon services, started first (e.g. the control socket).
    pub services: Vec<ChildSpec>,
    /// The agents, started in this order.
    pub agents: Vec<AgentSpec>,
    /// How long one agent may take to stop.
    pub stop_timeout: Duration,
    /// Told about every transition of the Host's own children: agents as a whole and
    /// services (whole-agent alerts, [`crate::webhook::AlertRelay`]).
    pub observer: Option<TransitionObserver>,
}

/// `codexd status`: every agent with its children, and the services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    /// One entry per agent, in start order.
    pub agents: Vec<AgentStatus>,
    /// Daemon services (control socket).
    pub services: Vec<ChildStatus>,
}

/// One agent in `codexd status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The agent's nick.
    pub nick: String,
    /// The agent subtree as the Host supervises it (state, restarts, circuit, …).
    #[serde(flatten)]
    pub supervision: ChildStatus,
}

/// Why a request to the Host failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The request reached the tree and was refused.
    #[error(transparent)]
    Refused(#[from] ControlError),
    /// The Host did not answer in time or is gone.
    #[error("the host did not answer: {0}")]
    Unresponsive(String),
}

/// A handle on the running Host.
#[derive(Debug, Clone)]
pub struct Host {
    actor: ActorRef<SupervisorMsg>,
}

impl Host {
    /// Spawns the Host; it starts services, then agents, in order.
    pub async fn spawn(spec: HostSpec) -> Result<(Host, JoinHandle<()>), SpawnErr> {
        let mut children = spec.services;
        children.extend(spec.agents.into_iter().map(AgentSpec::into_child));
        let args = SupervisorArgs {
            name: "host".to_owned(),
            children,
            shutdown: ShutdownOrder::Parallel,
            stop_timeout: spec.stop_timeout,
            observer: spec.observer,
        };
        let (actor, join) = Actor::spawn(None, Supervisor, args).await?;
        Ok((Host { actor }, join))
    }

    /// Wraps an existing Host actor (the control socket gets its supervisor's cell).
    pub fn from_ref(actor: ActorRef<SupervisorMsg>) -> Self {
        Self { actor }
    }

    /// The Host's actor.
    pub fn actor(&self) -> &ActorRef<SupervisorMsg> {
        &self.actor
    }

    /// The whole tree's status.
    pub async fn status(&self) -> Result<HostStatus, HostError> {
        let report = self
            .request(|reply| {
                SupervisorMsg::Control(ControlMsg::Status {
                    budget: STATUS_BUDGET,
                    reply,
                })
            })
            .await?;
        let (services, members): (Vec<_>, Vec<_>) =
            report.children.into_iter().partition(|c| c.service);
        let agents = members
            .into_iter()
            .map(|c| AgentStatus {
                nick: c.name.clone(),
                supervision: c,
            })
            .collect();
        Ok(HostStatus { agents, services })
    }

    /// Injects `kind` into `child` of agent `nick`; child `agent` is the agent's own
    /// supervisor (the Host restarts the whole subtree).
    pub async fn fault(&self, nick: &str, child: &str, kind: FaultKind) -> Result<(), HostError> {
        let path = match child {
            crate::webhook::relay::AGENT => vec![nick.to_owned()],
            _ => vec![nick.to_owned(), child.to_owned()],
        };
        Ok(self
            .request(|reply| {
                SupervisorMsg::Control(ControlMsg::Fault {
                    path,
                    kind,
                    reply,
                    trace: TraceCtx::current(),
                })
            })
            .await??)
    }

    /// Resets the circuit of `child` of agent `nick`, or of the agent and all its children.
    pub async fn reset(&self, nick: &str, child: Option<&str>) -> Result<(), HostError> {
        let path = std::iter::once(nick)
            .chain(child)
            .map(str::to_owned)
            .collect();
        Ok(self
            .request(|reply| {
                SupervisorMsg::Control(ControlMsg::Reset {
                    path,
                    reply,
                    trace: TraceCtx::current(),
                })
            })
            .await??)
    }

    /// Starts a new agent.
    pub async fn add_agent(&self, agent: AgentSpec) -> Result<(), HostError> {
        let spec = agent.into_child();
        self.request(|reply| SupervisorMsg::AddChild { spec, reply })
            .await?
            .map_err(HostError::Unresponsive)
    }

    /// Stops and forgets an agent; true if it existed.
    pub async fn remove_agent(&self, nick: &str) -> Result<bool, HostError> {
        let name = nick.to_owned();
        self.request(|reply| SupervisorMsg::RemoveChild { name, reply })
            .await
    }

    /// Stops every agent and service (agents in parallel, each agent's children in
    /// reverse start order), killing what does not stop within `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let cell = self.actor.get_cell();
        if cell
            .stop_and_wait(Some("shutdown".to_owned()), Some(grace))
            .await
            .is_err()
        {
            tracing::warn!(
                grace_s = grace.as_secs_f64(),
                "graceful shutdown exceeded its grace period; killing the tree"
            );
            let _ = cell.kill_and_wait(Some(grace)).await;
        }
    }

    async fn request<T: Send + 'static>(
        &self,
        make: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
    ) -> Result<T, HostError> {
        let timeout = REQUEST_TIMEOUT;
        match self.actor.call(make, Some(timeout)).await {
            Ok(ractor::rpc::CallResult::Success(value)) => Ok(value),
            Ok(ractor::rpc::CallResult::Timeout) => Err(HostError::Unresponsive(format!(
                "no answer within {}s",
                timeout.as_secs()
            ))),
            Ok(ractor::rpc::CallResult::SenderError) => Err(HostError::Unresponsive(
                "the request was dropped".to_owned(),
            )),
            Err(error) => Err(HostError::Unresponsive(error.to_string())),
        }
    }
}
