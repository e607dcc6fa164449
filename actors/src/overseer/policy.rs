//! The overseer's two pure policies: which messages an evaluation sees and when one is
//! due ([`Window`]), and what a verdict leads to ([`Escalations`]).
//!
//! | verdict               | escalation count | does                                                |
//! |-----------------------|------------------|-----------------------------------------------------|
//! | `OK`                  | reset            | nothing                                             |
//! | `CORRECTION` / `THINK_DEEPER` | reset    | whisper the message to the agent                    |
//! | `ESCALATION`          | + 1              | at `threshold`: one alert + pause; above: nothing   |
//!
//! Culture re-fires the alert on every further escalation (§19 item 20); here it fires once,
//! until a non-`ESCALATION` verdict resets the count, or the agent is found resumed.

use std::collections::VecDeque;

use super::verdict::{Action, Verdict};

/// The last `size` agent messages and the count of all observed.
#[derive(Debug, Clone)]
pub struct Window {
    size: usize,
    every: u64,
    messages: VecDeque<String>,
    observed: u64,
}

impl Window {
    /// Keeps `size` messages; an evaluation is due every `every` messages (both >= 1).
    pub fn new(size: usize, every: u64) -> Self {
        Self {
            size: size.max(1),
            every: every.max(1),
            messages: VecDeque::new(),
            observed: 0,
        }
    }

    /// Adds a message; true when an evaluation is due.
    pub fn observe(&mut self, text: String) -> bool {
        self.messages.push_back(text);
        while self.messages.len() > self.size {
            self.messages.pop_front();
        }
        self.observed += 1;
        self.observed % self.every == 0
    }

    /// The kept messages, oldest first.
    pub fn messages(&self) -> Vec<String> {
        self.messages.iter().cloned().collect()
    }

    /// Messages observed so far.
    pub fn observed(&self) -> u64 {
        self.observed
    }

    /// Messages kept now.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True before the first message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// What to do about a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing.
    Nothing,
    /// Whisper `message` to the agent with this type.
    Whisper {
        /// `CORRECTION` or `THINK_DEEPER`.
        kind: Action,
        /// The guidance.
        message: String,
    },
    /// Alert humans and pause the agent.
    Escalate {
        /// The last escalation's reason.
        message: String,
    },
}

/// Consecutive `ESCALATION` verdicts and whether they already raised the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalations {
    threshold: u32,
    count: u32,
    fired: bool,
}

impl Escalations {
    /// Escalates at the `threshold`-th consecutive `ESCALATION` (>= 1).
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            count: 0,
            fired: false,
        }
    }

    /// Consecutive escalations so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Decides what `verdict` leads to. `agent_paused` says whether the agent is paused now:
    /// an agent found running after the alert paused it was resumed, which resets the count.
    pub fn on_verdict(&mut self, verdict: &Verdict, agent_paused: bool) -> Step {
        if self.fired && !agent_paused {
            self.reset();
        }
        match verdict.action {
            Action::Escalation => {
                self.count = self.count.saturating_add(1);
                if self.count < self.threshold || self.fired {
                    return Step::Nothing;
                }
                self.fired = true;
                Step::Escalate {
                    message: verdict.message.clone(),
                }
            }
            Action::Correction | Action::ThinkDeeper => {
                self.reset();
                Step::Whisper {
                    kind: verdict.action,
                    message: verdict.message.clone(),
                }
            }
            Action::Ok => {
                self.reset();
                Step::Nothing
            }
        }
    }

    fn reset(&mut self) {
        self.count = 0;
        self.fired = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(code: char) -> Verdict {
        let action = match code {
            'E' => Action::Escalation,
            'C' => Action::Correction,
            'T' => Action::ThinkDeeper,
            _ => Action::Ok,
        };
        Verdict {
            action,
            message: format!("m{code}"),
        }
    }

    /// Runs `codes` (`E`, `C`, `T`, `O`; `r` = the agent is resumed, else it stays paused
    /// once escalated) and returns `(alerts, whispers, final count)`.
    fn run(threshold: u32, codes: &str) -> (usize, usize, u32) {
        let mut escalations = Escalations::new(threshold);
        let (mut alerts, mut whispers, mut paused) = (0, 0, false);
        for code in codes.chars() {
            if code == 'r' {
                paused = false;
                continue;
            }
            match escalations.on_verdict(&verdict(code), paused) {
                Step::Nothing => {}
                Step::Whisper { .. } => whispers += 1,
                Step::Escalate { message } => {
                    assert_eq!(message, "mE");
                    alerts += 1;
                    paused = true;
                }
            }
        }
        (alerts, whispers, escalations.count())
    }

    #[test]
    fn escalation_table() {
        let table = [
            (3, "EEE", (1, 0, 3)),
            (3, "EEEE", (1, 0, 4)),
            (3, "EEEEEEE", (1, 0, 7)),
            (3, "EE", (0, 0, 2)),
            (3, "EOEEE", (1, 0, 3)),
            (3, "EECEE", (0, 1, 2)),
            (3, "EETEEE", (1, 1, 3)),
            (3, "EEECEEE", (2, 1, 3)),
            (3, "EEEOEEE", (2, 0, 3)),
            (3, "EEErE", (1, 0, 1)),
            (3, "EEErEEE", (2, 0, 3)),
            (1, "E", (1, 0, 1)),
            (1, "EE", (1, 0, 2)),
            (1, "EOE", (2, 0, 1)),
            (3, "CTO", (0, 2, 0)),
        ];
        for (threshold, codes, expected) in table {
            assert_eq!(
                run(threshold, codes),
                expected,
                "threshold {threshold}: {codes}"
            );
        }
    }

    #[test]
    fn whispers_carry_the_kind_and_message() {
        let mut escalations = Escalations::new(3);
        assert_eq!(
            escalations.on_verdict(&verdict('T'), false),
            Step::Whisper {
                kind: Action::ThinkDeeper,
                message: "mT".into()
            }
        );
    }

    /// Window size, every, messages observed, due after which, window kept.
    type DueCase = (usize, u64, u64, &'static [u64], &'static [&'static str]);

    #[test]
    fn evaluation_is_due_every_n_messages_over_a_truncated_window() {
        let table: [DueCase; 4] = [
            (3, 1, 4, &[1, 2, 3, 4], &["m2", "m3", "m4"]),
            (
                20,
                5,
                12,
                &[5, 10],
                &[
                    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11", "m12",
                ],
            ),
            (2, 3, 7, &[3, 6], &["m6", "m7"]),
            (1, 2, 3, &[2], &["m3"]),
        ];
        for (size, every, count, due_at, kept) in table {
            let mut window = Window::new(size, every);
            let mut due = Vec::new();
            for n in 1..=count {
                if window.observe(format!("m{n}")) {
                    due.push(n);
                }
            }
            assert_eq!(due, due_at, "size {size} every {every}");
            assert_eq!(window.messages(), kept, "size {size} every {every}");
            assert_eq!(window.observed(), count);
        }
    }
}
