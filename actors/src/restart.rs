//! Pure restart policy: jittered exponential backoff, a restart budget over a sliding
//! window, and a circuit breaker per child. No I/O and no clock of its own: every
//! function takes `now`, so the supervisor drives it and tests run it on paused time.
//!
//! | event                 | circuit   | what happens                                               |
//! |-----------------------|-----------|------------------------------------------------------------|
//! | failure, budget left  | closed    | restart after `backoff(attempt)`: the first at once (a few ms of jitter), then `backoff_base` growing |
//! | failure, budget spent | closed    | open for `cooldown`                                        |
//! | cooldown elapsed      | open      | half-open: one attempt                                     |
//! | failure               | half-open | re-open for the next, longer cooldown                      |
//! | up for `stable_after` | half-open | closed; failures, attempts and trips forgotten             |
//! | up for `stable_after` | closed    | backoff attempt counter back to 0                          |
//! | manual reset          | any       | closed, everything forgotten                               |

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The knobs of one child's restart policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartPolicy {
    /// Delay before the *second* restart of a streak (the first is immediate, like OTP's
    /// and Kubernetes'; Culture slept this long before every restart).
    pub backoff_base: Duration,
    /// Growth of the delay per consecutive restart (≥ 1).
    pub backoff_factor: f64,
    /// The longest delay.
    pub backoff_cap: Duration,
    /// A delay is stretched by up to this fraction at random (0..=1).
    pub jitter: f64,
    /// This many failures within `window` open the circuit (Culture: 3 in 300 s).
    pub max_restarts: u32,
    /// The sliding window failures are counted in.
    pub window: Duration,
    /// How long a circuit stays open before its half-open attempt.
    pub cooldown: Duration,
    /// The cooldown doubles on every re-open, up to this.
    pub cooldown_cap: Duration,
    /// Uptime after which a child counts as healthy again.
    pub stable_after: Duration,
    /// How often the supervisor pings the child.
    pub health_interval: Duration,
    /// A ping unanswered for this long means the child hangs.
    pub health_timeout: Duration,
}

impl Default for RestartPolicy {
    /// Culture's compatibility anchor: 3 failures within 300 s open the circuit, 5 s before
    /// a repeated restart (the first is immediate).
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_secs(5),
            backoff_factor: 2.0,
            backoff_cap: Duration::from_secs(60),
            jitter: 0.1,
            max_restarts: 3,
            window: Duration::from_secs(300),
            cooldown: Duration::from_secs(60),
            cooldown_cap: Duration::from_secs(30 * 60),
            stable_after: Duration::from_secs(60),
            // A hung child is found within 30 s (a ping every 24.576 s, 5 s to answer), and an
            // idle daemon wakes for pings 146 times an hour, however many agents it hosts.
            health_interval: crate::grid::IDLE_ROUND,
            health_timeout: Duration::from_secs(5),
        }
    }
}

/// The longest jitter before the first restart of a streak, which is otherwise immediate:
/// enough to spread children that failed together, too little to notice.
pub const FIRST_RESTART_JITTER: Duration = Duration::from_millis(50);

/// The delay before restart number `attempt` (0-based) of a streak. The first is
/// immediate but for `unit * jitter * FIRST_RESTART_JITTER / 0.1` (at most 50 ms at the
/// default jitter of 0.1, never more than `backoff_base`); later ones grow from
/// `backoff_base` by `backoff_factor`, stretched by `unit * jitter` where `unit` is a
/// random draw from `0.0..1.0`, never more than `backoff_cap`.
///
/// | attempt | base 5 s, factor 2, cap 60 s, unit 0 |
/// |---------|--------------------------------------|
/// | 0       | 0 s                                  |
/// | 1       | 5 s                                  |
/// | 2       | 10 s                                 |
/// | 4       | 40 s                                 |
/// | 5+      | 60 s                                 |
pub fn backoff(policy: &RestartPolicy, attempt: u32, unit: f64) -> Duration {
    let unit = unit.clamp(0.0, 1.0);
    if attempt == 0 {
        let spread = FIRST_RESTART_JITTER.mul_f64(unit * (policy.jitter / 0.1).clamp(0.0, 1.0));
        return spread.min(policy.backoff_base);
    }
    let cap = policy.backoff_cap.as_secs_f64();
    let grown = policy.backoff_base.as_secs_f64()
        * policy.backoff_factor.powi((attempt - 1).min(64) as i32);
    let jittered = grown.min(cap) * (1.0 + policy.jitter * unit);
    Duration::from_secs_f64(jittered.min(cap))
}

/// The cooldown after the `trips`-th consecutive opening (1-based): doubles each time.
pub fn cooldown(policy: &RestartPolicy, trips: u32) -> Duration {
    let doubled = policy
        .cooldown
        .saturating_mul(1u32 << trips.saturating_sub(1).min(20));
    doubled.min(policy.cooldown_cap).max(policy.cooldown)
}

/// Where a child's circuit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Failures are restarted after a backoff.
    Closed,
    /// No restarts until `until`.
    Open {
        /// When the half-open attempt is due.
        until: Instant,
    },
    /// One attempt is running; it closes the circuit if it stays up for `stable_after`.
    HalfOpen,
}

impl Circuit {
    /// The lowercase name used in status output and telemetry.
    pub fn name(&self) -> &'static str {
        match self {
            Circuit::Closed => "closed",
            Circuit::Open { .. } => "open",
            Circuit::HalfOpen => "half_open",
        }
    }
}

/// What the supervisor must do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Restart after this delay; `attempt` is the 1-based restart number in this streak.
    Restart {
        /// The backoff delay.
        delay: Duration,
        /// Consecutive restart number.
        attempt: u32,
    },
    /// The circuit opened: no restart before the cooldown elapsed.
    Open {
        /// How long the circuit stays open.
        cooldown: Duration,
        /// Failures counted in the window (closed) or 1 (a failed half-open attempt).
        failures: u32,
    },
}

/// One child's restart bookkeeping.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: RestartPolicy,
    circuit: Circuit,
    failures: VecDeque<Instant>,
    attempt: u32,
    trips: u32,
    restarts: u32,
}

impl Breaker {
    /// A closed breaker with nothing remembered.
    pub fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            circuit: Circuit::Closed,
            failures: VecDeque::new(),
            attempt: 0,
            trips: 0,
            restarts: 0,
        }
    }

    /// The policy this breaker applies.
    pub fn policy(&self) -> &RestartPolicy {
        &self.policy
    }

    /// The circuit's state.
    pub fn circuit(&self) -> Circuit {
        self.circuit
    }

    /// Restarts scheduled since the daemon started (or the last manual reset).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Records a failure at `now` and decides; `unit` is a random draw in `0.0..1.0`.
    pub fn on_failure(&mut self, now: Instant, unit: f64) -> Decision {
        if self.circuit == Circuit::HalfOpen {
            return self.open(now, 1);
        }
        self.forget_before(now);
        self.failures.push_back(now);
        let failures = self.failures.len() as u32;
        if failures >= self.policy.max_restarts {
            return self.open(now, failures);
        }
        let delay = backoff(&self.policy, self.attempt, unit);
        self.attempt += 1;
        self.restarts += 1;
        Decision::Restart {
            delay,
            attempt: self.attempt,
        }
    }

    /// The cooldown is over: the next start is the half-open attempt. Returns false (and
    /// changes nothing) when the circuit is not open or the cooldown has not elapsed yet.
    pub fn on_cooldown_elapsed(&mut self, now: Instant) -> bool {
        match self.circuit {
            Circuit::Open { until } if now >= until => {
                self.circuit = Circuit::HalfOpen;
                self.restarts += 1;
                true
            }
            _ => false,
        }
    }

    /// The child has been up for `stable_after`: forget the backoff streak; a half-open
    /// circuit closes. Returns true when the circuit closed.
    pub fn on_stable(&mut self) -> bool {
        self.attempt = 0;
        if self.circuit != Circuit::HalfOpen {
            return false;
        }
        self.circuit = Circuit::Closed;
        self.failures.clear();
        self.trips = 0;
        true
    }

    /// Manual reset: closed, nothing remembered.
    pub fn reset(&mut self) {
        *self = Self::new(self.policy);
    }

    fn open(&mut self, now: Instant, failures: u32) -> Decision {
        self.trips += 1;
        self.attempt = 0;
        self.failures.clear();
        let cooldown = cooldown(&self.policy, self.trips);
        self.circuit = Circuit::Open {
            until: now + cooldown,
        };
        Decision::Open { cooldown, failures }
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some(&first) = self.failures.front() {
            if now.duration_since(first) < self.policy.window {
                break;
            }
            self.failures.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn policy() -> RestartPolicy {
        RestartPolicy {
            jitter: 0.0,
            ..RestartPolicy::default()
        }
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = policy();
        let cases = [
            (0, 0.0, 0.0),
            (1, 0.0, 5.0),
            (2, 0.0, 10.0),
            (3, 0.0, 20.0),
            (4, 0.0, 40.0),
            (5, 0.0, 60.0),
            (40, 0.0, 60.0),
        ];
        for (attempt, unit, want) in cases {
            assert_eq!(
                backoff(&p, attempt, unit).as_secs_f64(),
                want,
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn jitter_stretches_but_never_past_the_cap() {
        let p = RestartPolicy {
            jitter: 0.5,
            ..policy()
        };
        let cases = [
            (1, 0.0, 5.0),
            (1, 1.0, 7.5),
            (1, 0.5, 6.25),
            (4, 1.0, 60.0),
            (1, 7.0, 7.5),
            (1, -1.0, 5.0),
        ];
        for (attempt, unit, want) in cases {
            assert_eq!(
                backoff(&p, attempt, unit).as_secs_f64(),
                want,
                "attempt {attempt} unit {unit}"
            );
        }
    }

    #[test]
    fn the_first_restart_is_immediate_but_for_a_little_jitter() {
        let base = |jitter: f64, backoff_base: Duration| RestartPolicy {
            jitter,
            backoff_base,
            ..policy()
        };
        let ms = Duration::from_millis;
        let cases = [
            (base(0.0, secs(5)), 1.0, ms(0)),
            (base(0.1, secs(5)), 0.0, ms(0)),
            (base(0.1, secs(5)), 0.5, ms(25)),
            (base(0.1, secs(5)), 1.0, ms(50)),
            (base(0.05, secs(5)), 1.0, ms(25)),
            (base(0.9, secs(5)), 1.0, ms(50)),
            (base(0.1, ms(10)), 1.0, ms(10)),
        ];
        for (policy, unit, want) in cases {
            assert_eq!(backoff(&policy, 0, unit), want, "{policy:?} unit {unit}");
        }
    }

    #[test]
    fn cooldown_doubles_per_trip_up_to_the_cap() {
        let p = RestartPolicy {
            cooldown: secs(60),
            cooldown_cap: secs(300),
            ..policy()
        };
        let cases = [(0, 60), (1, 60), (2, 120), (3, 240), (4, 300), (99, 300)];
        for (trips, want) in cases {
            assert_eq!(cooldown(&p, trips), secs(want), "trips {trips}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn third_failure_in_window_opens_the_circuit() {
        let mut b = Breaker::new(policy());
        let t0 = Instant::now();
        assert_eq!(
            b.on_failure(t0, 0.0),
            Decision::Restart {
                delay: secs(0),
                attempt: 1
            }
        );
        assert_eq!(
            b.on_failure(t0 + secs(10), 0.0),
            Decision::Restart {
                delay: secs(5),
                attempt: 2
            }
        );
        assert_eq!(
            b.on_failure(t0 + secs(20), 0.0),
            Decision::Open {
                cooldown: secs(60),
                failures: 3
            }
        );
        assert_eq!(
            b.circuit(),
            Circuit::Open {
                until: t0 + secs(80)
            }
        );
        assert_eq!(b.restarts(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_outside_the_window_are_forgotten() {
        let mut b = Breaker::new(policy());
        let t0 = Instant::now();
        b.on_failure(t0, 0.0);
        b.on_failure(t0 + secs(100), 0.0);
        // The first failure is 300 s old now: only two remain in the window.
        let d = b.on_failure(t0 + secs(300), 0.0);
        assert!(matches!(d, Decision::Restart { attempt: 3, .. }), "{d:?}");
        assert_eq!(b.circuit(), Circuit::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_closes_when_stable_and_reopens_longer_on_failure() {
        let mut b = Breaker::new(policy());
        let t0 = Instant::now();
        for i in 0..3 {
            b.on_failure(t0 + secs(i), 0.0);
        }
        assert!(
            !b.on_cooldown_elapsed(t0 + secs(30)),
            "cooldown not over yet"
        );
        assert!(b.on_cooldown_elapsed(t0 + secs(62)));
        assert_eq!(b.circuit(), Circuit::HalfOpen);

        // The half-open attempt fails: open again, twice as long.
        let t1 = t0 + secs(63);
        assert_eq!(
            b.on_failure(t1, 0.0),
            Decision::Open {
                cooldown: secs(120),
                failures: 1
            }
        );
        assert!(b.on_cooldown_elapsed(t1 + secs(120)));

        // This attempt stays up: closed, and the next failure starts a fresh streak.
        assert!(b.on_stable());
        assert_eq!(b.circuit(), Circuit::Closed);
        let d = b.on_failure(t1 + secs(500), 0.0);
        assert_eq!(
            d,
            Decision::Restart {
                delay: secs(0),
                attempt: 1
            }
        );
        for i in 1..3 {
            b.on_failure(t1 + secs(500 + i), 0.0);
        }
        assert_eq!(
            b.circuit(),
            Circuit::Open {
                until: t1 + secs(502) + secs(60)
            },
            "trips were reset"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stability_resets_the_backoff_streak_but_not_the_window() {
        let mut b = Breaker::new(policy());
        let t0 = Instant::now();
        b.on_failure(t0, 0.0);
        assert!(!b.on_stable(), "a closed circuit stays closed");
        assert_eq!(
            b.on_failure(t0 + secs(70), 0.0),
            Decision::Restart {
                delay: secs(0),
                attempt: 1
            }
        );
        assert!(matches!(
            b.on_failure(t0 + secs(80), 0.0),
            Decision::Open { failures: 3, .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn manual_reset_forgets_everything() {
        let mut b = Breaker::new(policy());
        let t0 = Instant::now();
        for i in 0..3 {
            b.on_failure(t0 + secs(i), 0.0);
        }
        b.reset();
        assert_eq!(b.circuit(), Circuit::Closed);
        assert_eq!(b.restarts(), 0);
        assert_eq!(
            b.on_failure(t0 + secs(5), 0.0),
            Decision::Restart {
                delay: secs(0),
                attempt: 1
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn max_restarts_of_one_opens_on_the_first_failure() {
        let mut b = Breaker::new(RestartPolicy {
            max_restarts: 1,
            ..policy()
        });
        assert!(matches!(
            b.on_failure(Instant::now(), 0.0),
            Decision::Open { failures: 1, .. }
        ));
    }
}
