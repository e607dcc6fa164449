//! One process-wide time grid for periodic idle work, so an idle process wakes once per
//! period however many agents and children run in it.
//!
//! A periodic timer is due at `epoch + k × period` (the first grid point at least half a
//! period away), where `epoch` is one instant shared by the whole process. Timers with the
//! same period — health pings of every child, keepalive checks and presence heartbeats of
//! every agent — share their deadlines to the nanosecond and tokio fires them in one timer
//! wheel pass. Timers armed "one period from now" land at unrelated instants instead, each
//! costing its own wake-ups (three or more each: tokio's wheel wakes to cascade a
//! multi-second timer down its levels).
//!
//! | now − epoch | period | next − epoch | why                                  |
//! |-------------|--------|--------------|--------------------------------------|
//! | 0           | 5 s    | 5 s          | the first grid point ≥ 2.5 s          |
//! | 1.3 s       | 5 s    | 5 s          | 5 s ≥ 3.8 s                           |
//! | 3 s         | 5 s    | 10 s         | 5 s < 5.5 s: the next one             |
//! | 5.001 s     | 5 s    | 10 s         | armed just after the 5 s point        |
//! | 7 s         | 60 s   | 60 s         | another period, its own grid          |

use std::sync::OnceLock;
use std::time::Duration;

/// The period of an idle daemon's housekeeping: the default `health_interval` and, where the
/// keepalive deadlines allow, the irc keepalive check, so both fall on the same grid points:
/// one round of wake-ups every 24.576 s. With the default 5 s `health_timeout` a hung child
/// is found within 30 s.
///
/// Why 24.576 s: it is 6 × 4.096 s, the slot of the third level of tokio's timer wheel
/// (64 × 64 ms). With the grid's origin [`anchor`]ed within a millisecond before the
/// runtime's clock starts, every round falls on a slot boundary of that level, and the
/// wheel fires it in the one wake-up that would otherwise only move it down a level (a
/// timer 25 s away costs three: two of those moves, then the firing). Measured with
/// `bench/idle-wakeups`: 800 instead of 1,100 wake-ups an hour for an idle agent.
pub const IDLE_ROUND: Duration = Duration::from_millis(24_576);

use ractor::ActorRef;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The grid's origin: set by [`anchor`], else the first time anything asked for it.
fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Sets the grid's origin to now: called just before the daemon's runtime is built, so the
/// origin is within a millisecond before the runtime's timer starts counting.
pub fn anchor() {
    let _ = EPOCH.set(Instant::now());
}

/// The next grid point as an offset from the origin: the first multiple of `period` at
/// least `period / 2` after `since_epoch` (see the module table).
fn next_on_grid(since_epoch: Duration, period: Duration) -> Duration {
    let period_ns = period.as_nanos().max(1);
    let earliest = since_epoch.as_nanos() + period_ns / 2;
    let nanos = earliest.div_ceil(period_ns).saturating_mul(period_ns);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The next grid point for `period`: between half a period and one and a half from now.
pub fn next(period: Duration) -> Instant {
    next_from(epoch(), Instant::now(), period)
}

/// [`next`] for an explicit origin and now. The grid extends before its origin too: a clock
/// behind the origin (another runtime's paused clock in tests) steps back whole periods
/// first, so the next point is never more than one and a half periods away.
fn next_from(origin: Instant, now: Instant, period: Duration) -> Instant {
    let base = match origin.checked_duration_since(now) {
        None => origin,
        Some(behind) => {
            let period_ns = period.as_nanos().max(1);
            let back = behind
                .as_nanos()
                .div_ceil(period_ns)
                .saturating_mul(period_ns);
            match u64::try_from(back)
                .ok()
                .and_then(|back| origin.checked_sub(Duration::from_nanos(back)))
            {
                Some(base) => base,
                None => now,
            }
        }
    };
    base + next_on_grid(now.saturating_duration_since(base), period)
}

/// Like ractor's `send_interval`, on the grid: sends `msg()` to `actor` at every grid
/// point for `period` until the actor is gone or the handle is aborted. Late ticks are
/// skipped, never bunched.
pub fn send_interval<M, F>(actor: &ActorRef<M>, period: Duration, msg: F) -> JoinHandle<()>
where
    M: ractor::Message,
    F: Fn() -> M + Send + 'static,
{
    let actor = actor.clone();
    let mut ticks = tokio::time::interval_at(next(period), period.max(Duration::from_nanos(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tokio::spawn(async move {
        loop {
            ticks.tick().await;
            if actor.cast(msg()).is_err() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_behind_the_origin_still_gets_a_point_within_one_and_a_half_periods() {
        let origin = Instant::now() + Duration::from_secs(3600);
        let period = Duration::from_secs(5);
        for behind_ms in [1, 2_500, 3_600_000, 3_601_234] {
            let now = origin - Duration::from_millis(behind_ms);
            let next = next_from(origin, now, period);
            let wait = next.duration_since(now);
            assert!(
                wait >= period / 2 && wait <= period * 3 / 2,
                "{behind_ms} ms behind: {wait:?}"
            );
            let offset = origin.duration_since(next.min(origin)).as_nanos()
                + next.duration_since(next.min(origin)).as_nanos();
            assert_eq!(offset % period.as_nanos(), 0, "on the grid");
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn timers_fall_on_the_grid_at_least_half_a_period_away() {
        let table = [
            // (now − epoch, period, next − epoch)
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
        for (now, period, due) in table {
            assert_eq!(
                next_on_grid(now, period),
                due,
                "now {now:?}, period {period:?}"
            );
        }
    }

    #[test]
    fn a_zero_period_does_not_divide_by_zero() {
        assert_eq!(
            next_on_grid(ms(3), Duration::ZERO),
            Duration::from_nanos(3_000_000)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn intervals_armed_apart_tick_together() {
        let first = next(Duration::from_secs(15));
        tokio::time::sleep(Duration::from_millis(4_300)).await;
        assert_eq!(next(Duration::from_secs(15)), first);
        tokio::time::sleep(Duration::from_millis(5_000)).await;
        assert_eq!(
            next(Duration::from_secs(15)),
            first + Duration::from_secs(15)
        );
    }
}
