//! The sleep schedule (codexd-spec.md §4.6) as pure code: a local-time window in which the
//! agent is paused, and when to look at the clock next.
//!
//! | window        | asleep at                          |
//! |---------------|------------------------------------|
//! | 23:00 → 08:00 | 23:00 … 07:59 (crosses midnight)   |
//! | 13:00 → 14:00 | 13:00 … 13:59                      |
//! | 08:00 → 08:00 | never (the config stores no window) |

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Seconds in a day.
const DAY: u32 = 24 * 60 * 60;

/// The longest the schedule waits between two looks at the clock, so a wall clock that
/// jumps (NTP, DST, a suspended laptop) is noticed within this long.
pub const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(600);

/// Seconds since local midnight, from the wall clock (injected: tests pass their own).
pub type LocalClock = Arc<dyn Fn() -> u32 + Send + Sync>;

/// `sleep_start`..`sleep_end` in minutes after local midnight (never equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepWindow {
    /// Minutes after midnight at which the agent pauses.
    pub start_minute: u16,
    /// Minutes after midnight at which it resumes.
    pub end_minute: u16,
}

impl SleepWindow {
    /// True when `second` (since local midnight) falls in the window.
    pub fn contains(&self, second: u32) -> bool {
        let minute = (second % DAY) / 60;
        let (start, end) = (u32::from(self.start_minute), u32::from(self.end_minute));
        match start > end {
            true => minute >= start || minute < end,
            false => start <= minute && minute < end,
        }
    }

    /// How long from `second` (since local midnight) until the window next starts or ends,
    /// capped at [`MAX_CHECK_INTERVAL`]; at least one second.
    pub fn next_check(&self, second: u32) -> Duration {
        let second = second % DAY;
        let until = |minute: u16| {
            let at = u32::from(minute) * 60;
            (at + DAY - second) % DAY
        };
        let next = [until(self.start_minute), until(self.end_minute)]
            .into_iter()
            .filter(|s| *s > 0)
            .min()
            .unwrap_or(DAY);
        Duration::from_secs(u64::from(next)).min(MAX_CHECK_INTERVAL)
    }
}

impl fmt::Display for SleepWindow {
    /// `23:00-08:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.start_minute), hm(self.end_minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: u32, minute: u32) -> u32 {
        (hour * 60 + minute) * 60
    }

    fn window(start: (u16, u16), end: (u16, u16)) -> SleepWindow {
        SleepWindow {
            start_minute: start.0 * 60 + start.1,
            end_minute: end.0 * 60 + end.1,
        }
    }

    #[test]
    fn overnight_and_daytime_windows() {
        let night = window((23, 0), (8, 0));
        let nap = window((13, 0), (14, 0));
        // (hour, minute) → (asleep overnight, asleep in the nap)
        let cases = [
            ((22, 59), false, false),
            ((23, 0), true, false),
            ((0, 0), true, false),
            ((7, 59), true, false),
            ((8, 0), false, false),
            ((12, 59), false, false),
            ((13, 0), false, true),
            ((13, 59), false, true),
            ((14, 0), false, false),
        ];
        for ((h, m), overnight, napping) in cases {
            assert_eq!(night.contains(at(h, m)), overnight, "{h}:{m} overnight");
            assert_eq!(nap.contains(at(h, m)), napping, "{h}:{m} nap");
        }
    }

    #[test]
    fn the_next_look_is_the_next_edge_or_ten_minutes() {
        let night = window((23, 0), (8, 0));
        // (now) → wait
        let cases = [
            (at(22, 55), 300),
            (at(22, 59) + 30, 30),
            (at(23, 0), 600),
            (at(7, 58), 120),
            (at(12, 0), 600),
        ];
        for (now, wait) in cases {
            assert_eq!(night.next_check(now), Duration::from_secs(wait), "at {now}");
        }
    }

    #[test]
    fn displays_like_the_config() {
        assert_eq!(window((23, 0), (8, 5)).to_string(), "23:00-08:05");
    }
}
