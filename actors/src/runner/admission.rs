//! Admission control for an agent's intake: what a mention or DM must pass before it is
//! journaled (and so becomes a codex turn, i.e. model spend). Pure: the caller passes the
//! clock in.
//!
//! | check                  | refuses when                                            | config key               |
//! |------------------------|---------------------------------------------------------|--------------------------|
//! | per-sender rate        | the sender had `per_sender` accepted within `window`     | `admission.per_sender`, `admission.window` |
//! | per-agent pending cap  | `max_pending` entries already wait for an answer         | `admission.max_pending`  |
//!
//! A refused sender is told once per `window` ([`Admission::notice_due`]), not once per
//! refused line. The per-sender rate is a token bucket holding `per_sender` tokens, refilled
//! at `per_sender / window`; a sender unseen for a whole window holds a full bucket, so it
//! is forgotten (the table stays as small as the set of recent senders).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::irc::flood::TokenBucket;

/// Senders remembered before the table is swept of those unseen for a window.
const SWEEP_AT: usize = 1024;

/// The limits (`admission:` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionSettings {
    /// Mentions and DMs accepted per sender per `window`; 0: no limit.
    pub per_sender: u32,
    /// The rate limit's window, and how often a refused sender is told.
    pub window: Duration,
    /// Entries that may wait for an answer; beyond this new ones are refused. 0: no limit.
    pub max_pending: usize,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            per_sender: 20,
            window: Duration::from_secs(60),
            max_pending: 100,
        }
    }
}

/// Why a mention or DM was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its sender is over the per-sender rate.
    Rate {
        /// When the sender's next message would be accepted.
        retry_in: Duration,
    },
    /// Too many entries wait already.
    Pending {
        /// The cap.
        max: usize,
    },
    /// It could not be journaled (a storage error, e.g. a full disk).
    Journal {
        /// What kind of error, for the sender (no paths).
        kind: String,
    },
}

impl Refusal {
    /// The metric and status label.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Rate { .. } => "refused_rate",
            Refusal::Pending { .. } => "refused_pending",
            Refusal::Journal { .. } => "refused_journal",
        }
    }

    /// The NOTICE to the sender: why, and when to retry.
    pub fn notice(&self, nick: &str, settings: &AdmissionSettings) -> String {
        let window = humantime::format_duration(settings.window);
        let tail = format!("further messages are refused without another notice for {window}");
        match self {
            Refusal::Rate { retry_in } => {
                let secs = retry_in.as_secs_f64().ceil().max(1.0);
                format!(
                    "{nick}: your message was not accepted: more than {} messages from you within {window}; retry in {secs}s ({tail}).",
                    settings.per_sender
                )
            }
            Refusal::Pending { max } => format!(
                "{nick}: your message was not accepted: {max} messages already wait for an answer; retry in {window} ({tail})."
            ),
            Refusal::Journal { kind } => format!(
                "{nick}: your message was not accepted: it could not be saved ({kind}); retry later ({tail})."
            ),
        }
    }
}

/// One sender's standing.
#[derive(Debug)]
struct Sender {
    bucket: TokenBucket,
    last_seen: Instant,
    noticed: Option<Instant>,
}

/// The admission state of one agent's intake.
#[derive(Debug)]
pub struct Admission {
    settings: AdmissionSettings,
    senders: HashMap<String, Sender>,
}

impl Admission {
    /// No sender seen yet.
    pub fn new(settings: AdmissionSettings) -> Self {
        Self {
            settings,
            senders: HashMap::new(),
        }
    }

    /// The limits.
    pub fn settings(&self) -> &AdmissionSettings {
        &self.settings
    }

    /// Admits one message from `sender` while `pending` entries wait, or says why not. An
    /// admitted message spends one of the sender's tokens; a refused one spends none.
    pub fn admit(&mut self, sender: &str, pending: usize, now: Instant) -> Result<(), Refusal> {
        let max = self.settings.max_pending;
        if max > 0 && pending >= max {
            self.seen(sender, now);
            return Err(Refusal::Pending { max });
        }
        if self.settings.per_sender == 0 {
            return Ok(());
        }
        self.seen(sender, now)
            .bucket
            .take(now)
            .map_err(|retry_in| Refusal::Rate { retry_in })
    }

    /// True when `sender`, just refused, should be told (once per window).
    pub fn notice_due(&mut self, sender: &str, now: Instant) -> bool {
        let window = self.settings.window;
        let entry = self.seen(sender, now);
        let due = entry
            .noticed
            .is_none_or(|at| now.saturating_duration_since(at) >= window);
        if due {
            entry.noticed = Some(now);
        }
        due
    }

    /// Senders remembered now.
    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    fn seen(&mut self, sender: &str, now: Instant) -> &mut Sender {
        if self.senders.len() >= SWEEP_AT {
            let window = self.settings.window;
            self.senders
                .retain(|_, s| now.saturating_duration_since(s.last_seen) < window);
        }
        let settings = self.settings;
        let entry = self
            .senders
            .entry(sender.to_ascii_lowercase())
            .or_insert_with(|| Sender {
                bucket: bucket(&settings, now),
                last_seen: now,
                noticed: None,
            });
        entry.last_seen = now;
        entry
    }
}

/// A full bucket of `per_sender` tokens refilled over `window`.
fn bucket(settings: &AdmissionSettings, now: Instant) -> TokenBucket {
    let per_second = f64::from(settings.per_sender) / settings.window.as_secs_f64().max(1e-3);
    TokenBucket::new(settings.per_sender, per_second, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn limits(per_sender: u32, window_s: u64, max_pending: usize) -> AdmissionSettings {
        AdmissionSettings {
            per_sender,
            window: S * window_s as u32,
            max_pending,
        }
    }

    #[test]
    fn per_sender_rate_table() {
        // 3 per 60 s: (offset s, sender, expected).
        let steps: &[(u64, &str, Result<(), Refusal>)] = &[
            (0, "ori", Ok(())),
            (0, "ori", Ok(())),
            (0, "ORI", Ok(())),
            (0, "ori", Err(Refusal::Rate { retry_in: 20 * S })),
            (0, "ada", Ok(())),
            (10, "ori", Err(Refusal::Rate { retry_in: 10 * S })),
            (20, "ori", Ok(())),
            (20, "ori", Err(Refusal::Rate { retry_in: 20 * S })),
            (200, "ori", Ok(())),
            (200, "ori", Ok(())),
            (200, "ori", Ok(())),
            (200, "ori", Err(Refusal::Rate { retry_in: 20 * S })),
        ];
        let start = Instant::now();
        let mut admission = Admission::new(limits(3, 60, 0));
        for (offset, sender, expected) in steps {
            let got = admission.admit(sender, 0, start + S * *offset as u32);
            let got = got.map_err(|r| match r {
                Refusal::Rate { retry_in } => Refusal::Rate {
                    retry_in: Duration::from_secs_f64(retry_in.as_secs_f64().round()),
                },
                other => other,
            });
            assert_eq!(&got, expected, "at {offset}s from {sender}");
        }
    }

    #[test]
    fn the_pending_cap_refuses_everyone_and_spends_no_token() {
        let now = Instant::now();
        let mut admission = Admission::new(limits(2, 60, 5));
        assert_eq!(admission.admit("ori", 4, now), Ok(()));
        assert_eq!(
            admission.admit("ori", 5, now),
            Err(Refusal::Pending { max: 5 })
        );
        assert_eq!(
            admission.admit("ada", 9, now),
            Err(Refusal::Pending { max: 5 })
        );
        assert_eq!(
            admission.admit("ori", 0, now),
            Ok(()),
            "the refusal spent nothing"
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let now = Instant::now();
        let mut admission = Admission::new(limits(0, 60, 0));
        assert!((0..10_000).all(|i| admission.admit("ori", i, now).is_ok()));
    }

    #[test]
    fn a_refused_sender_is_told_once_per_window() {
        let start = Instant::now();
        let mut admission = Admission::new(limits(1, 60, 0));
        let told: Vec<bool> = [0, 1, 59, 60, 61, 119, 120]
            .iter()
            .map(|s: &u32| admission.notice_due("ori", start + S * *s))
            .collect();
        assert_eq!(told, [true, false, false, true, false, false, true]);
        assert!(admission.notice_due("ada", start), "per sender");
    }

    #[test]
    fn senders_unseen_for_a_window_are_forgotten() {
        let start = Instant::now();
        let mut admission = Admission::new(limits(5, 60, 0));
        for i in 0..SWEEP_AT {
            admission.admit(&format!("bot{i}"), 0, start).unwrap();
        }
        assert_eq!(admission.senders(), SWEEP_AT);
        admission.admit("late", 0, start + S * 61).unwrap();
        assert_eq!(admission.senders(), 1);
    }

    #[test]
    fn notices_say_why_and_when() {
        let settings = limits(10, 60, 100);
        let rate = Refusal::Rate {
            retry_in: Duration::from_millis(5_200),
        }
        .notice("spark-a", &settings);
        assert!(
            rate.contains("more than 10 messages from you within 1m"),
            "{rate}"
        );
        assert!(rate.contains("retry in 6s"), "{rate}");
        let pending = Refusal::Pending { max: 100 }.notice("spark-a", &settings);
        assert!(pending.contains("100 messages already wait"), "{pending}");
        let disk = Refusal::Journal {
            kind: "disk full".into(),
        }
        .notice("spark-a", &settings);
        assert!(disk.contains("could not be saved (disk full)"), "{disk}");
        for text in [rate, pending, disk] {
            assert!(!text.contains(['\r', '\n', '\u{1}']), "{text}");
        }
    }
}
