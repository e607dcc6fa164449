//! The webhook's delivery policy, pure: what to do after an attempt, how long to wait
//! before the next one, which alerts are duplicates, and what a full queue drops.
//!
//! | attempt outcome                  | verdict    | next                                  |
//! |----------------------------------|------------|---------------------------------------|
//! | 2xx                              | delivered  | done                                  |
//! | 429, 5xx                         | retryable  | retry after backoff, until `attempts` |
//! | timeout, connection error        | retryable  | retry after backoff, until `attempts` |
//! | other 1xx/3xx/4xx, bad request   | permanent  | give up at once                       |
//!
//! Backoff before retry `n` (1-based): `base · 2^(n−1)`, capped at `cap`, then scaled by a
//! jitter factor in `[0.5, 1.0]` so agents that fail together do not retry together.
//! Duplicates: an alert with the same event and message as one admitted less than
//! `window` ago is suppressed (both sinks) and counted. The queue keeps the newest
//! `capacity` alerts: a full queue drops its oldest.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::AlertEvent;

/// How one HTTP attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The server answered with this status.
    Status(u16),
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection could not be made or broke (refused, reset, DNS, TLS).
    Connect(String),
    /// The request could not be built (not retried).
    Invalid(String),
}

impl Attempt {
    /// A short name for spans and status: `delivered`, `http_<code>`, `timeout`, `connect`, `invalid`.
    pub fn name(&self) -> String {
        match self {
            Attempt::Status(code) if (200..300).contains(code) => "delivered".to_owned(),
            Attempt::Status(code) => format!("http_{code}"),
            Attempt::Timeout => "timeout".to_owned(),
            Attempt::Connect(_) => "connect".to_owned(),
            Attempt::Invalid(_) => "invalid".to_owned(),
        }
    }

    /// A line for logs and status (never the URL).
    pub fn describe(&self) -> String {
        match self {
            Attempt::Status(code) => format!("HTTP {code}"),
            Attempt::Timeout => "timed out".to_owned(),
            Attempt::Connect(error) => format!("connection failed: {error}"),
            Attempt::Invalid(error) => format!("bad request: {error}"),
        }
    }
}

/// What an attempt's outcome means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The server took it.
    Delivered,
    /// Worth another attempt.
    Retryable,
    /// Another attempt would fail the same way.
    Permanent,
}

/// The verdict on one attempt (see the module table).
pub fn verdict(attempt: &Attempt) -> Verdict {
    match attempt {
        Attempt::Status(200..=299) => Verdict::Delivered,
        Attempt::Status(429 | 500..=599) => Verdict::Retryable,
        Attempt::Status(_) | Attempt::Invalid(_) => Verdict::Permanent,
        Attempt::Timeout | Attempt::Connect(_) => Verdict::Retryable,
    }
}

/// After attempt number `made` (1-based) of at most `max`: `Some(n)` when attempt `n`
/// should follow, `None` when delivery is over (delivered or given up).
pub fn next_attempt(attempt: &Attempt, made: u32, max: u32) -> Option<u32> {
    (verdict(attempt) == Verdict::Retryable && made < max).then_some(made + 1)
}

/// The wait before retry `retry` (1-based): `base · 2^(retry−1)` capped at `cap`, scaled by
/// `0.5 + jitter / 2` (`jitter` in `[0, 1]`).
pub fn backoff(retry: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(cap);
    raw.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// Suppresses identical alerts (same event and message) within a window.
#[derive(Debug)]
pub struct Dedup {
    window: Duration,
    admitted: HashMap<(AlertEvent, String), Instant>,
}

impl Dedup {
    /// Suppresses repeats within `window` (zero: nothing is suppressed).
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            admitted: HashMap::new(),
        }
    }

    /// True when the alert goes out; false when an identical one went out less than
    /// `window` before `now`.
    pub fn admit(&mut self, event: AlertEvent, message: &str, now: Instant) -> bool {
        let window = self.window;
        self.admitted
            .retain(|_, at| now.saturating_duration_since(*at) < window);
        let key = (event, message.to_owned());
        if self.admitted.contains_key(&key) {
            return false;
        }
        if !window.is_zero() {
            self.admitted.insert(key, now);
        }
        true
    }
}

/// A FIFO that keeps its newest `capacity` items.
#[derive(Debug)]
pub struct Queue<T> {
    capacity: usize,
    items: VecDeque<T>,
}

impl<T> Queue<T> {
    /// Holds at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            items: VecDeque::new(),
        }
    }

    /// Appends `item`; answers the oldest item when it had to make room.
    pub fn push(&mut self, item: T) -> Option<T> {
        let dropped = match self.items.len() >= self.capacity {
            true => self.items.pop_front(),
            false => None,
        };
        self.items.push_back(item);
        dropped
    }

    /// The oldest item.
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when none wait.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_decision_table() {
        let refused = Attempt::Connect("connection refused".into());
        let table: [(Attempt, u32, u32, Verdict, Option<u32>); 12] = [
            (Attempt::Status(200), 1, 3, Verdict::Delivered, None),
            (Attempt::Status(204), 2, 3, Verdict::Delivered, None),
            (Attempt::Status(301), 1, 3, Verdict::Permanent, None),
            (Attempt::Status(400), 1, 3, Verdict::Permanent, None),
            (Attempt::Status(404), 1, 3, Verdict::Permanent, None),
            (Attempt::Status(429), 1, 3, Verdict::Retryable, Some(2)),
            (Attempt::Status(500), 1, 3, Verdict::Retryable, Some(2)),
            (Attempt::Status(503), 3, 3, Verdict::Retryable, None),
            (Attempt::Timeout, 1, 3, Verdict::Retryable, Some(2)),
            (Attempt::Timeout, 2, 3, Verdict::Retryable, Some(3)),
            (refused, 1, 1, Verdict::Retryable, None),
            (Attempt::Invalid("x".into()), 1, 3, Verdict::Permanent, None),
        ];
        for (attempt, made, max, want_verdict, want_next) in table {
            assert_eq!(verdict(&attempt), want_verdict, "{attempt:?}");
            assert_eq!(
                next_attempt(&attempt, made, max),
                want_next,
                "{attempt:?} {made}/{max}"
            );
        }
    }

    #[test]
    fn attempt_names() {
        assert_eq!(Attempt::Status(201).name(), "delivered");
        assert_eq!(Attempt::Status(500).name(), "http_500");
        assert_eq!(Attempt::Timeout.name(), "timeout");
        assert_eq!(Attempt::Connect("x".into()).name(), "connect");
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let (base, cap) = (Duration::from_millis(500), Duration::from_secs(4));
        let ms = |d: Duration| d.as_millis();
        let table: [(u32, f64, u128); 8] = [
            (1, 1.0, 500),
            (2, 1.0, 1000),
            (3, 1.0, 2000),
            (4, 1.0, 4000),
            (5, 1.0, 4000),
            (40, 1.0, 4000),
            (1, 0.0, 250),
            (3, 0.5, 1500),
        ];
        for (retry, jitter, want) in table {
            assert_eq!(
                ms(backoff(retry, base, cap, jitter)),
                want,
                "retry {retry} jitter {jitter}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn dedup_window_on_paused_time() {
        let mut dedup = Dedup::new(Duration::from_secs(60));
        let now = Instant::now;
        assert!(dedup.admit(AlertEvent::CircuitOpen, "runner open", now()));
        assert!(!dedup.admit(AlertEvent::CircuitOpen, "runner open", now()));
        assert!(
            dedup.admit(AlertEvent::CircuitOpen, "irc open", now()),
            "other message"
        );
        assert!(
            dedup.admit(AlertEvent::AgentError, "runner open", now()),
            "other event"
        );
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!dedup.admit(AlertEvent::CircuitOpen, "runner open", now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            dedup.admit(AlertEvent::CircuitOpen, "runner open", now()),
            "window over"
        );
        assert!(!dedup.admit(AlertEvent::CircuitOpen, "runner open", now()));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_window_suppresses_nothing() {
        let mut dedup = Dedup::new(Duration::ZERO);
        assert!(dedup.admit(AlertEvent::AgentError, "x", Instant::now()));
        assert!(dedup.admit(AlertEvent::AgentError, "x", Instant::now()));
    }

    #[test]
    fn full_queue_drops_its_oldest() {
        let mut queue = Queue::new(2);
        assert_eq!(queue.push(1), None);
        assert_eq!(queue.push(2), None);
        assert_eq!(queue.push(3), Some(1));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop(), Some(2));
        assert_eq!(queue.pop(), Some(3));
        assert!(queue.is_empty());
        let mut tiny = Queue::new(0);
        assert_eq!(tiny.push('a'), None);
        assert_eq!(tiny.push('b'), Some('a'));
    }
}
