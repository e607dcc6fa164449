//! Outbound flood control: a token bucket the IRC writer asks before each line (upstream
//! sends without any limit, spec §5.5). Pure: the caller passes the clock in.
//!
//! | situation                          | `take(now)`                                   |
//! |------------------------------------|-----------------------------------------------|
//! | a token is available               | `Ok(())`, one token spent                     |
//! | bucket empty                       | `Err(wait)`: time until the next whole token  |
//! | idle for a while                   | tokens refilled at `per_second`, at most `burst` |
//! | `per_second` ≤ 0, NaN or infinite  | always `Ok(())` (unlimited)                   |
//! | `now` earlier than a previous call | no refill, no panic                           |

use std::time::Duration;

use tokio::time::Instant;

/// Tolerance for float rounding, so a caller who waits exactly the returned time gets a token.
const EPSILON: f64 = 1e-9;

/// A token bucket holding up to `burst` tokens, refilled continuously at `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// The most tokens the bucket holds (at least 1).
    burst: f64,
    /// Tokens added per second; `None` when unlimited.
    per_second: Option<f64>,
    /// Tokens available at `updated`.
    tokens: f64,
    /// The latest instant the bucket was refilled at.
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (at least 1) refilled at `per_second`; a rate that is
    /// not a positive finite number means unlimited.
    pub fn new(burst: u32, per_second: f64, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        let limited = per_second.is_finite() && per_second > 0.0;
        Self {
            burst,
            per_second: limited.then_some(per_second),
            tokens: burst,
            updated: now,
        }
    }

    /// Spends a token if one is available at `now`; otherwise returns how long until one is.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(per_second) = self.per_second else {
            return Ok(());
        };
        self.refill(now, per_second);
        if self.tokens >= 1.0 - EPSILON {
            self.tokens = (self.tokens - 1.0).max(0.0);
            return Ok(());
        }
        Err(wait_for(1.0 - self.tokens, per_second))
    }

    /// Adds the tokens earned since the last refill; a `now` in the past earns nothing.
    fn refill(&mut self, now: Instant, per_second: f64) {
        if now <= self.updated {
            return;
        }
        let earned = now.duration_since(self.updated).as_secs_f64() * per_second;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.updated = now;
    }
}

/// How long earning `deficit` tokens at `per_second` takes, rounded up to whole nanoseconds
/// and at least one (a huge result saturates instead of panicking).
fn wait_for(deficit: f64, per_second: f64) -> Duration {
    let nanos = (deficit / per_second * 1e9).ceil() as u64;
    Duration::from_nanos(nanos.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn burst_then_wait_one_interval() {
        let cases = [(1, 1.0), (3, 2.0), (5, 0.5), (4, 3.0), (10, 7.0)];
        for (burst, rate) in cases {
            let start = Instant::now();
            let mut bucket = TokenBucket::new(burst, rate, start);
            for i in 0..burst {
                assert_eq!(bucket.take(start), Ok(()), "burst {burst}: token {i}");
            }
            let wait = bucket.take(start).unwrap_err();
            let interval = Duration::from_secs_f64(1.0 / rate);
            assert!(
                wait.abs_diff(interval) <= Duration::from_nanos(2),
                "{wait:?}"
            );
            assert!(
                bucket.take(start + wait - MS).is_err(),
                "rate {rate}: early"
            );
            assert_eq!(bucket.take(start + wait), Ok(()), "rate {rate}: on time");
            assert!(
                bucket.take(start + wait).is_err(),
                "rate {rate}: one token only"
            );
        }
    }

    #[test]
    fn sequence_table() {
        // Burst 2, 1 token per second: (offset in ms, expected result).
        let steps: &[(u64, Result<(), Duration>)] = &[
            (0, Ok(())),
            (0, Ok(())),
            (0, Err(Duration::from_secs(1))),
            (250, Err(Duration::from_millis(750))),
            (1_000, Ok(())),
            (1_000, Err(Duration::from_secs(1))),
            (1_500, Err(Duration::from_millis(500))),
            (60_000, Ok(())),
            (60_000, Ok(())),
            (60_000, Err(Duration::from_secs(1))),
        ];
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2, 1.0, start);
        for &(offset, expected) in steps {
            let got = bucket.take(start + Duration::from_millis(offset));
            assert_eq!(got, expected, "at {offset} ms");
        }
    }

    #[test]
    fn refill_after_idle_is_capped_at_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, 10.0, start);
        let later = start + Duration::from_secs(3600);
        let granted = (0..10).filter(|_| bucket.take(later).is_ok()).count();
        assert_eq!(granted, 3);
    }

    #[test]
    fn unlimited_rates_always_grant() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let now = Instant::now();
            let mut bucket = TokenBucket::new(1, rate, now);
            assert!((0..1_000).all(|_| bucket.take(now).is_ok()), "rate {rate}");
        }
    }

    #[test]
    fn zero_burst_counts_as_one() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0, 1.0, now);
        assert_eq!(bucket.take(now), Ok(()));
        assert_eq!(bucket.take(now), Err(Duration::from_secs(1)));
    }

    #[test]
    fn clock_going_backwards_adds_nothing() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1, 1.0, start);
        assert_eq!(bucket.take(start), Ok(()));
        let earlier = start - Duration::from_secs(5);
        assert_eq!(bucket.take(earlier), Err(Duration::from_secs(1)));
        assert_eq!(
            bucket.take(start + Duration::from_millis(500)),
            Err(Duration::from_millis(500))
        );
        assert_eq!(bucket.take(start + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn tiny_rates_do_not_overflow() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(1, 1e-300, now);
        assert_eq!(bucket.take(now), Ok(()));
        assert_eq!(bucket.take(now), Err(Duration::from_nanos(u64::MAX)));
    }
}
