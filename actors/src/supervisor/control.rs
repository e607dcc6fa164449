//! Control requests (ping, status, fault, reset) as a supervisor handles them: answered
//! here, or passed on toward the named child with the request's trace context.

use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::time::Instant;
use tracing::Instrument;

use super::{SupervisorMsg, SupervisorState, start_child};
use crate::child::{ChildState, ControlError, ControlMsg, FaultKind};
use crate::events::Transition;
use crate::fault;
use crate::restart::Circuit;
use crate::status;
use crate::trace::TraceCtx;

pub(super) async fn on_control(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    msg: ControlMsg,
) -> Result<(), ActorProcessingErr> {
    match msg {
        ControlMsg::Ping(reply) => {
            let _ = reply.send(());
        }
        ControlMsg::Status { budget, reply } => {
            let now = Instant::now();
            let records = state
                .children
                .iter()
                .map(|c| (c.status(now), c.handle.clone()))
                .collect();
            status::collect_and_reply(records, budget / 2, reply);
        }
        ControlMsg::Fault {
            path,
            kind,
            reply,
            trace,
        } => {
            let span = trace.follow(tracing::info_span!("supervisor.fault", supervisor = %state.name, path = ?path, fault = %kind));
            on_fault(state, path, kind, reply).instrument(span).await?;
        }
        ControlMsg::Reset { path, reply, trace } => {
            let span = trace.follow(
                tracing::info_span!("supervisor.reset", supervisor = %state.name, path = ?path),
            );
            on_reset(myself, state, path, reply).instrument(span).await;
        }
    }
    Ok(())
}

/// Injects a fault into this supervisor (empty path) or passes it on toward the child.
async fn on_fault(
    state: &mut SupervisorState,
    path: Vec<String>,
    kind: FaultKind,
    reply: RpcReplyPort<Result<(), ControlError>>,
) -> Result<(), ActorProcessingErr> {
    match path.split_first() {
        None => {
            let _ = reply.send(Ok(()));
            fault::inject(kind, &state.name).await?;
        }
        Some((name, rest)) => forward(state, name, reply, |reply| ControlMsg::Fault {
            path: rest.to_vec(),
            kind,
            reply,
            trace: TraceCtx::current(),
        }),
    }
    Ok(())
}

/// Resets this supervisor's children (empty path), one child, or passes it on.
async fn on_reset(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    path: Vec<String>,
    reply: RpcReplyPort<Result<(), ControlError>>,
) {
    match path.split_first() {
        None => {
            let names: Vec<String> = state.children.iter().map(|c| c.spec.name.clone()).collect();
            for name in names {
                reset_child(myself, state, &name).await;
            }
            let _ = reply.send(Ok(()));
        }
        Some((name, []))
            if state
                .child(name)
                .is_some_and(|c| c.state != ChildState::Running) =>
        {
            reset_child(myself, state, name).await;
            let _ = reply.send(Ok(()));
        }
        Some((name, rest)) => {
            if rest.is_empty() {
                reset_child(myself, state, name).await;
            }
            forward(state, name, reply, |reply| ControlMsg::Reset {
                path: rest.to_vec(),
                reply,
                trace: TraceCtx::current(),
            });
        }
    }
}

/// Sends a request on to a running child, or answers why it cannot be.
fn forward(
    state: &mut SupervisorState,
    name: &str,
    reply: RpcReplyPort<Result<(), ControlError>>,
    make: impl FnOnce(RpcReplyPort<Result<(), ControlError>>) -> ControlMsg,
) {
    let known = state.known();
    let Some(child) = state.child(name) else {
        let _ = reply.send(Err(ControlError::NoSuchChild {
            name: name.to_owned(),
            known,
        }));
        return;
    };
    match (&child.handle, child.state) {
        (Some(handle), ChildState::Running) => {
            // A closed mailbox drops the reply port: the caller then sees "did not answer".
            handle.send(make(reply));
        }
        (_, other) => {
            let state = serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = reply.send(Err(ControlError::NotRunning {
                name: name.to_owned(),
                state,
            }));
        }
    }
}

/// Manual reset: close the circuit, forget failures, and start the child now if it waits.
async fn reset_child(myself: &ActorRef<SupervisorMsg>, state: &mut SupervisorState, name: &str) {
    let Some(child) = state.child(name) else {
        return;
    };
    let was_open = child.breaker.circuit() != Circuit::Closed;
    child.breaker.reset();
    let waiting = matches!(
        child.state,
        ChildState::Restarting | ChildState::CircuitOpen
    );
    if child.state != ChildState::Stopped {
        child.last_error = None;
    }
    state.event(name, Transition::Reset { was_open });
    if waiting {
        start_child(myself, state, name).await;
    }
}
