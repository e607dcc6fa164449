//! Health pings, scheduled on one process-wide grid so an idle process wakes once per
//! `health_interval`, not once per child.
//!
//! Every ping is due at `epoch + k × health_interval` (the first grid point at least half an
//! interval away), where `epoch` is one instant shared by every supervisor in the process.
//! Children with the same interval, in every agent, therefore share their deadlines to the
//! nanosecond, and tokio fires them in one timer-wheel pass: one wake-up per interval however
//! many children and agents there are. Pings scheduled "interval after the last answer"
//! drift apart instead, each agent's pings costing their own wake-ups (three or more each:
//! tokio's timer wheel wakes to cascade a multi-second timer down its levels).
//!
//! | now − epoch | interval | next ping − epoch | why                                  |
//! |-------------|----------|-------------------|--------------------------------------|
//! | 0           | 5 s      | 5 s               | the first grid point ≥ 2.5 s          |
//! | 1.3 s       | 5 s      | 5 s               | 5 s ≥ 3.8 s                           |
//! | 3 s         | 5 s      | 10 s              | 5 s < 5.5 s: the next one             |
//! | 5.001 s     | 5 s      | 10 s              | answered just after the 5 s ping      |
//! | 7 s         | 60 s     | 60 s              | another interval, its own grid        |

use std::sync::OnceLock;
use std::time::Duration;

use ractor::ActorRef;
use tokio::time::Instant;

use super::{SupervisorMsg, SupervisorState, Timer};
use crate::child::{ChildState, ControlMsg};

/// The grid's origin: the first time any supervisor in this process asked for it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// When the next ping is due, as an offset from the grid's origin: the first multiple of
/// `interval` at least `interval / 2` after `since_epoch` (see the module table).
fn next_on_grid(since_epoch: Duration, interval: Duration) -> Duration {
    let interval_ns = interval.as_nanos().max(1);
    let earliest = since_epoch.as_nanos() + interval_ns / 2;
    let k = earliest.div_ceil(interval_ns);
    let nanos = k.saturating_mul(interval_ns);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Sends `HealthCheck(timer)` to `myself` at the next grid point for `interval`.
pub(super) fn schedule(myself: &ActorRef<SupervisorMsg>, interval: Duration, timer: Timer) {
    let origin = epoch();
    let at = origin + next_on_grid(Instant::now().saturating_duration_since(origin), interval);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn pings_fall_on_the_grid_at_least_half_an_interval_away() {
        let table = [
            // (now − epoch, interval, next ping − epoch)
            (ms(0), ms(5_000), ms(5_000)),
            (ms(1_300), ms(5_000), ms(5_000)),
            (ms(2_500), ms(5_000), ms(5_000)),
            (ms(2_501), ms(5_000), ms(10_000)),
            (ms(3_000), ms(5_000), ms(10_000)),
            (ms(5_001), ms(5_000), ms(10_000)),
            (ms(7_000), ms(60_000), ms(60_000)),
            (ms(31_000), ms(60_000), ms(120_000)),
            (ms(10), ms(1), ms(11)),
        ];
        for (now, interval, due) in table {
            assert_eq!(
                next_on_grid(now, interval),
                due,
                "now {now:?}, interval {interval:?}"
            );
        }
    }

    #[test]
    fn a_zero_interval_does_not_divide_by_zero() {
        assert_eq!(
            next_on_grid(ms(3), Duration::ZERO),
            Duration::from_nanos(3_000_000)
        );
    }
}
