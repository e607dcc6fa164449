//! Health pings, scheduled on one process-wide grid so an idle process wakes once per
//! `health_interval`, not once per child.
//!
//! Every ping is due at the next point of the process-wide [`crate::grid`] for its
//! `health_interval`: children with the same interval, in every agent, are pinged in one
//! timer-wheel pass. Pings armed "one interval after the last answer" drift apart
//! instead, each agent's pings costing their own wake-ups.

use std::time::Duration;

use ractor::ActorRef;

use super::{SupervisorMsg, SupervisorState, Timer};
use crate::child::{ChildState, ControlMsg};
use crate::grid;

/// Sends `HealthCheck(timer)` to `myself` at the next grid point for `interval`.
pub(super) fn schedule(myself: &ActorRef<SupervisorMsg>, interval: Duration, timer: Timer) {
    let at = grid::next(interval);
    let myself = myself.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(at).await;
        let _ = myself.cast(SupervisorMsg::HealthCheck(timer));
    });
}

/// Pings the child from a separate task so this mailbox never waits on it.
pub(super) fn on_health_check(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    timer: Timer,
) {
    let Some(child) = state
        .current(&timer)
        .filter(|c| c.state == ChildState::Running)
    else {
        return;
    };
    let Some(handle) = child.handle.clone() else {
        return;
    };
    let policy = *child.breaker.policy();
    let myself = myself.clone();
    tokio::spawn(async move {
        let (tx, rx) = ractor::concurrency::oneshot();
        if !handle.send(ControlMsg::Ping(tx.into())) {
            return; // gone: its supervision event reports why
        }
        match tokio::time::timeout(policy.health_timeout, rx).await {
            Ok(Ok(())) => schedule(&myself, policy.health_interval, timer),
            Ok(Err(_)) => {} // dropped the reply while dying: its supervision event reports why
            Err(_) => {
                let _ = myself.cast(SupervisorMsg::Hung(timer));
            }
        }
    });
}
