//! The one supervisor implementation, used for the Host (children: agents and services)
//! and for every agent (children: irc, socket, runner, …). ractor has no restart of its
//! own and stops a parent when a child exits; this actor overrides that with a per-child
//! [`Breaker`]: jittered backoff, a restart budget, and a circuit that opens, half-opens
//! and closes. Health pings catch children that hang. Failures stay contained: a child's
//! failure only ever restarts that child.
//!
//! Timers carry the child's `epoch`, bumped whenever its instance changes, so a timer
//! scheduled for an instance that is gone is ignored.

mod control;
mod health;

use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::time::Instant;

use crate::child::{ChildHandle, ChildRole, ChildSpec, ChildState, ChildStatus, ControlMsg};
use crate::events::{Transition, TransitionEvent, TransitionObserver};
use crate::restart::{Breaker, Circuit, Decision};

/// The supervisor actor (stateless; see [`SupervisorState`]).
pub struct Supervisor;

/// How children are stopped when the supervisor stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOrder {
    /// Last started first, one at a time (an agent: inputs before the runner before outputs).
    Reverse,
    /// All members at once, then all services at once (the Host: agents are independent,
    /// and stop before the codex processes they use).
    Parallel,
}

/// What a supervisor starts with.
#[derive(Debug)]
pub struct SupervisorArgs {
    /// `host` or the agent's nick; used in logs, status and telemetry.
    pub name: String,
    /// Started in this order.
    pub children: Vec<ChildSpec>,
    /// How children are stopped.
    pub shutdown: ShutdownOrder,
    /// How long one child may take to stop before it is killed.
    pub stop_timeout: Duration,
    /// Told about every transition of the children (after it is logged); `None`: nobody.
    pub observer: Option<TransitionObserver>,
}

/// Messages a supervisor handles.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// Ping, status, fault and reset requests (from its own supervisor or the control socket).
    Control(ControlMsg),
    /// Start a new child (SIGHUP added an agent).
    AddChild {
        /// The new child.
        spec: ChildSpec,
        /// `Err` when a child of that name exists.
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// Stop and forget a child (SIGHUP removed an agent); answers whether it existed.
    RemoveChild {
        /// The child's name.
        name: String,
        /// True when the child existed.
        reply: RpcReplyPort<bool>,
    },
    /// A backoff delay elapsed: restart the child.
    Restart(Timer),
    /// An open circuit's cooldown elapsed: make the half-open attempt.
    CooldownElapsed(Timer),
    /// The child has been up for `stable_after`.
    Stable(Timer),
    /// Time to ping the child.
    HealthCheck(Timer),
    /// The child did not answer a ping within `health_timeout`.
    Hung(Timer),
}

impl From<ControlMsg> for SupervisorMsg {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// A timer's target: a child instance, identified by name and epoch.
#[derive(Debug, Clone)]
pub struct Timer {
    /// The child's name.
    pub name: String,
    /// The instance the timer was set for.
    pub epoch: u64,
}

/// One supervised child.
struct Child {
    spec: ChildSpec,
    breaker: Breaker,
    state: ChildState,
    handle: Option<ChildHandle>,
    started_at: Option<Instant>,
    last_error: Option<String>,
    epoch: u64,
}

impl Child {
    fn timer(&self) -> Timer {
        Timer {
            name: self.spec.name.clone(),
            epoch: self.epoch,
        }
    }

    fn status(&self, now: Instant) -> ChildStatus {
        ChildStatus {
            name: self.spec.name.clone(),
            service: self.spec.role == ChildRole::Service,
            state: self.state,
            restarts: self.breaker.restarts(),
            circuit: self.breaker.circuit().name().to_owned(),
            last_error: self.last_error.clone(),
            actor_id: self.handle.as_ref().map(|h| h.cell().get_id().to_string()),
            uptime_s: self.started_at.map(|t| now.duration_since(t).as_secs_f64()),
            detail: None,
            children: Vec::new(),
        }
    }
}

/// The supervisor's state: its children in start order.
pub struct SupervisorState {
    name: String,
    children: Vec<Child>,
    shutdown: ShutdownOrder,
    stop_timeout: Duration,
    observer: Option<TransitionObserver>,
}

impl SupervisorState {
    fn child(&mut self, name: &str) -> Option<&mut Child> {
        self.children.iter_mut().find(|c| c.spec.name == name)
    }

    fn current(&mut self, timer: &Timer) -> Option<&mut Child> {
        self.child(&timer.name).filter(|c| c.epoch == timer.epoch)
    }

    fn by_cell(&mut self, cell: &ActorCell) -> Option<&mut Child> {
        let id = cell.get_id();
        self.children
            .iter_mut()
            .find(|c| c.handle.as_ref().is_some_and(|h| h.cell().get_id() == id))
    }

    fn known(&self) -> String {
        self.children
            .iter()
            .map(|c| c.spec.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn event(&self, child: &str, transition: Transition) {
        let event = TransitionEvent {
            supervisor: &self.name,
            child,
            transition,
        };
        let span = event.emit();
        if let Some(observer) = &self.observer {
            // Alerts raised by the observer follow the transition's span.
            let _entered = span.enter();
            let last_error = self
                .children
                .iter()
                .find(|c| c.spec.name == child)
                .and_then(|c| c.last_error.as_deref());
            observer.observe(&event, last_error);
        }
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let children = args.children.into_iter().map(new_child).collect();
        Ok(SupervisorState {
            name: args.name,
            children,
            shutdown: args.shutdown,
            stop_timeout: args.stop_timeout,
            observer: args.observer,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let names: Vec<String> = state.children.iter().map(|c| c.spec.name.clone()).collect();
        for name in names {
            start_child(&myself, state, &name).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Control(control) => control::on_control(&myself, state, control).await?,
            SupervisorMsg::AddChild { spec, reply } => add_child(&myself, state, spec, reply).await,
            SupervisorMsg::RemoveChild { name, reply } => remove_child(state, &name, reply).await,
            SupervisorMsg::Restart(timer) => on_restart_due(&myself, state, timer).await,
            SupervisorMsg::CooldownElapsed(timer) => {
                on_cooldown_elapsed(&myself, state, timer).await
            }
            SupervisorMsg::Stable(timer) => on_stable(state, timer),
            SupervisorMsg::HealthCheck(timer) => health::on_health_check(&myself, state, timer),
            SupervisorMsg::Hung(timer) => on_hung(&myself, state, timer),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some(name) = state.by_cell(&cell).map(|c| c.spec.name.clone()) {
                    on_failure(&myself, state, &name, error.to_string());
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let running = state
                    .by_cell(&cell)
                    .filter(|c| c.state == ChildState::Running);
                if let Some(name) = running.map(|c| c.spec.name.clone()) {
                    let why = reason.unwrap_or_else(|| "no reason given".to_owned());
                    on_failure(&myself, state, &name, format!("exited: {why}"));
                }
            }
            // Started is implied by spawn returning; process groups are not used.
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let timeout = state.stop_timeout;
        let mut handles = Vec::new();
        for child in state.children.iter_mut() {
            child.state = ChildState::Stopped;
            child.started_at = None;
            let role = child.spec.role;
            handles.extend(child.handle.take().map(|h| (role, h)));
        }
        match state.shutdown {
            ShutdownOrder::Reverse => {
                for (_, handle) in handles.into_iter().rev() {
                    stop_child(handle, timeout).await;
                }
            }
            ShutdownOrder::Parallel => {
                // Members (agents) first, then the services they use (the codex processes).
                let (services, members): (Vec<_>, Vec<_>) = handles
                    .into_iter()
                    .partition(|(role, _)| *role == ChildRole::Service);
                for group in [members, services] {
                    let stops = group.into_iter().map(|(_, h)| stop_child(h, timeout));
                    futures::future::join_all(stops).await;
                }
            }
        }
        Ok(())
    }
}

fn new_child(spec: ChildSpec) -> Child {
    let breaker = Breaker::new(spec.policy);
    Child {
        spec,
        breaker,
        state: ChildState::Starting,
        handle: None,
        started_at: None,
        last_error: None,
        epoch: 0,
    }
}

/// Stops one child gracefully, killing it when it does not stop within `timeout`.
async fn stop_child(handle: ChildHandle, timeout: Duration) {
    let cell = handle.cell();
    if cell
        .stop_and_wait(Some("shutdown".to_owned()), Some(timeout))
        .await
        .is_err()
    {
        tracing::warn!(actor.id = %cell.get_id(), timeout_s = timeout.as_secs_f64(), "child did not stop in time; killing it");
        let _ = cell.kill_and_wait(Some(timeout)).await;
    }
}

/// Spawns the child's next instance; a failed spawn is a failure like any other.
async fn start_child(myself: &ActorRef<SupervisorMsg>, state: &mut SupervisorState, name: &str) {
    let Some(child) = state.child(name) else {
        return;
    };
    child.state = ChildState::Starting;
    child.epoch += 1;
    match child.spec.factory.spawn(myself.get_cell()).await {
        Ok(handle) => {
            child.handle = Some(handle);
            child.state = ChildState::Running;
            child.started_at = Some(Instant::now());
            let policy = *child.breaker.policy();
            let timer = child.timer();
            let again = timer.clone();
            myself.send_after(policy.stable_after, move || SupervisorMsg::Stable(timer));
            health::schedule(myself, policy.health_interval, again);
            state.event(name, Transition::Started);
        }
        Err(error) => on_failure(myself, state, name, format!("start failed: {error}")),
    }
}

/// Applies the restart policy to a failed child and schedules what comes next.
fn on_failure(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    name: &str,
    error: String,
) {
    let Some(child) = state.child(name) else {
        return;
    };
    child.handle = None;
    child.started_at = None;
    child.epoch += 1;
    child.last_error = Some(error.clone());
    let decision = child.breaker.on_failure(Instant::now(), fastrand::f64());
    let timer = child.timer();
    let transition = match decision {
        Decision::Restart { delay, attempt } => {
            child.state = ChildState::Restarting;
            myself.send_after(delay, move || SupervisorMsg::Restart(timer));
            Transition::Restarting { delay, attempt }
        }
        Decision::Open { cooldown, failures } => {
            child.state = ChildState::CircuitOpen;
            myself.send_after(cooldown, move || SupervisorMsg::CooldownElapsed(timer));
            Transition::CircuitOpened { cooldown, failures }
        }
    };
    state.event(name, Transition::Failed { error });
    state.event(name, transition);
}

async fn on_restart_due(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    timer: Timer,
) {
    if state
        .current(&timer)
        .is_some_and(|c| c.state == ChildState::Restarting)
    {
        start_child(myself, state, &timer.name).await;
    }
}

async fn on_cooldown_elapsed(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    timer: Timer,
) {
    let Some(child) = state.current(&timer) else {
        return;
    };
    if child.state == ChildState::CircuitOpen && child.breaker.on_cooldown_elapsed(Instant::now()) {
        state.event(&timer.name, Transition::HalfOpen);
        start_child(myself, state, &timer.name).await;
    }
}

fn on_stable(state: &mut SupervisorState, timer: Timer) {
    let Some(child) = state
        .current(&timer)
        .filter(|c| c.state == ChildState::Running)
    else {
        return;
    };
    if child.breaker.on_stable() {
        child.last_error = None;
        state.event(&timer.name, Transition::CircuitClosed);
    }
}

/// A child that stopped answering is killed and counted as failed.
fn on_hung(myself: &ActorRef<SupervisorMsg>, state: &mut SupervisorState, timer: Timer) {
    let Some(child) = state
        .current(&timer)
        .filter(|c| c.state == ChildState::Running)
    else {
        return;
    };
    let timeout = child.breaker.policy().health_timeout;
    if let Some(handle) = child.handle.take() {
        handle.cell().kill();
    }
    let error = format!(
        "hung: no answer to a health ping within {}",
        humanize(timeout)
    );
    on_failure(myself, state, &timer.name, error);
}

async fn add_child(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    spec: ChildSpec,
    reply: RpcReplyPort<Result<(), String>>,
) {
    let name = spec.name.clone();
    if state.child(&name).is_some() {
        let _ = reply.send(Err(format!("a child named {name:?} already exists")));
        return;
    }
    state.children.push(new_child(spec));
    state.event(&name, Transition::Added);
    start_child(myself, state, &name).await;
    let _ = reply.send(Ok(()));
}

/// Stops a child (bounded by `stop_timeout`) and forgets it.
async fn remove_child(state: &mut SupervisorState, name: &str, reply: RpcReplyPort<bool>) {
    let Some(index) = state.children.iter().position(|c| c.spec.name == name) else {
        let _ = reply.send(false);
        return;
    };
    let mut child = state.children.remove(index);
    let was_open = child.breaker.circuit() != Circuit::Closed;
    child.state = ChildState::Stopped;
    if let Some(handle) = child.handle.take() {
        stop_child(handle, state.stop_timeout).await;
    }
    state.event(name, Transition::Removed { was_open });
    let _ = reply.send(true);
}

fn humanize(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}
