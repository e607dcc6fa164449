//! Pure request admission for one shared codex process: at most `limit` requests written and
//! unanswered at once, the rest waiting in order; `-32001 "Server overloaded"` answers retried
//! after a growing delay (reference/shared-app-server.md §1: a burst of hundreds of requests
//! makes codex answer `-32001` or drop requests, while a few dozen are always answered).
//!
//! | event                              | window                                    |
//! |------------------------------------|-------------------------------------------|
//! | a request, fewer than `limit` out  | written now, counted out                  |
//! | a request, `limit` out             | waits, in arrival order                   |
//! | an answer (any, `-32001` included) | no longer out; the first waiting one is written |
//! | its asker left                     | dropped (out or waiting)                  |
//!
//! | `-32001` answers so far for one request | what happens                  |
//! |-----------------------------------------|-------------------------------|
//! | 1 … [`OVERLOAD_RETRIES`]                | offered again after [`overload_delay`] |
//! | more                                    | the error goes to the runner  |

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

/// Requests one shared process may have unanswered (the reference suggests 32–64).
pub const REQUEST_WINDOW: usize = 32;

/// `-32001` answers one request may get before its runner sees the error.
pub const OVERLOAD_RETRIES: u32 = 5;

/// codex's "Server overloaded; retry later." error code.
pub const OVERLOADED: i64 = -32001;

/// The delay before offering a request again after its `answers`-th `-32001` (1-based):
/// 100 ms doubling, `None` once [`OVERLOAD_RETRIES`] are spent.
///
/// | answers | delay  |
/// |---------|--------|
/// | 1       | 100 ms |
/// | 2       | 200 ms |
/// | 5       | 1.6 s  |
/// | 6       | none   |
pub fn overload_delay(answers: u32) -> Option<Duration> {
    (1..=OVERLOAD_RETRIES)
        .contains(&answers)
        .then(|| Duration::from_millis(100) * (1 << (answers - 1)))
}

/// The requests of one process, by process-wide id.
#[derive(Debug)]
pub struct Window {
    limit: usize,
    out: HashSet<i64>,
    waiting: VecDeque<i64>,
}

impl Window {
    /// At most `limit` (at least 1) out at once.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            out: HashSet::new(),
            waiting: VecDeque::new(),
        }
    }

    /// A new request: true when it may be written now, false when it waits.
    pub fn offer(&mut self, id: i64) -> bool {
        if self.out.len() < self.limit {
            self.out.insert(id);
            true
        } else {
            self.waiting.push_back(id);
            false
        }
    }

    /// `id` was answered or its asker left: the request to write next, if one was waiting
    /// and a place came free.
    pub fn done(&mut self, id: i64) -> Option<i64> {
        if !self.out.remove(&id) {
            self.waiting.retain(|w| *w != id);
            return None;
        }
        let next = self.waiting.pop_front()?;
        self.out.insert(next);
        Some(next)
    }

    /// Requests written and unanswered.
    pub fn out(&self) -> usize {
        self.out.len()
    }

    /// Requests waiting for a place.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_overload_delays_double_from_100ms_and_stop_after_five() {
        let table = [
            (0, None),
            (1, Some(100)),
            (2, Some(200)),
            (3, Some(400)),
            (5, Some(1600)),
            (6, None),
            (u32::MAX, None),
        ];
        for (answers, millis) in table {
            assert_eq!(
                overload_delay(answers),
                millis.map(Duration::from_millis),
                "answers {answers}"
            );
        }
    }

    #[test]
    fn test_requests_beyond_the_limit_wait_and_go_out_in_order() {
        let mut window = Window::new(2);
        let written: Vec<bool> = (1..=5).map(|id| window.offer(id)).collect();
        assert_eq!(written, [true, true, false, false, false]);
        assert_eq!((window.out(), window.waiting()), (2, 3));
        assert_eq!(window.done(2), Some(3));
        assert_eq!(window.done(1), Some(4));
        assert_eq!(window.done(3), Some(5));
        assert_eq!(window.done(4), None);
        assert_eq!(window.done(5), None);
        assert_eq!((window.out(), window.waiting()), (0, 0));
    }

    #[test]
    fn test_a_waiting_request_that_is_dropped_frees_no_place() {
        let mut window = Window::new(1);
        assert!(window.offer(1));
        assert!(!window.offer(2));
        assert!(!window.offer(3));
        assert_eq!(window.done(2), None);
        assert_eq!((window.out(), window.waiting()), (1, 1));
        assert_eq!(window.done(1), Some(3));
        assert_eq!(window.done(99), None, "unknown ids change nothing");
        assert_eq!((window.out(), window.waiting()), (1, 0));
    }

    #[test]
    fn test_a_zero_limit_still_lets_one_request_out() {
        let mut window = Window::new(0);
        assert!(window.offer(1));
        assert!(!window.offer(2));
    }
}
