//! The IRC half of an alert: the line handed to the `irc` actor for `webhooks.irc_channel`,
//! and what happens when the server refuses it.
//!
//! IRC acknowledges nothing, but it refuses in order: a `404 Cannot send to channel` (or
//! `442`, `403`, `401`) for the alerts channel answers the oldest alert line handed to the
//! connection and not yet answered. So every line handed over waits here for
//! [`CONFIRM_WINDOW`]; a refusal takes the oldest one.
//!
//! | refusals of one line so far | what happens                                           |
//! |-----------------------------|--------------------------------------------------------|
//! | 1, 2, 3                     | counted (`irc_refused`), sent again after 1 s, 2 s, 4 s |
//! | 4                           | given up: counted (`irc_failed`), logged, `last_error` |
//!
//! A refusal with no line waiting (a tool's own message to the channel) is counted only.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{WebhookMessage, WebhookState};
use crate::irc::{IrcMessage, SendPriority};
use crate::trace::TraceCtx;

/// How long a line handed to IRC may still be refused.
pub const CONFIRM_WINDOW: Duration = Duration::from_secs(60);
/// How many times a refused line is sent again.
pub const RETRIES: u32 = 3;
/// The wait before the first resend; it doubles for each further one.
pub const RETRY_BASE: Duration = Duration::from_secs(1);

/// One alert line on its way to the alerts channel.
#[derive(Debug, Clone, PartialEq)]
pub struct IrcLine {
    /// Tells the lines apart (a hand-off that failed removes its own).
    pub(super) id: u64,
    /// The redacted alert text.
    pub(super) text: String,
    /// The work that raised the alert.
    pub(super) trace: TraceCtx,
    /// Refusals so far.
    pub(super) refusals: u32,
}

/// What to do with a refused line.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    /// Send it again after the wait.
    Retry(Duration),
    /// It was refused [`RETRIES`] + 1 times.
    GiveUp,
}

/// The verdict for a line refused `refusals` times (the module table).
pub(super) fn verdict(refusals: u32) -> Verdict {
    match refusals {
        0 => Verdict::Retry(Duration::ZERO),
        n if n <= RETRIES => Verdict::Retry(RETRY_BASE * 2u32.pow(n - 1)),
        _ => Verdict::GiveUp,
    }
}

/// Lines handed to IRC within [`CONFIRM_WINDOW`], oldest first.
#[derive(Debug, Default)]
pub(super) struct Unconfirmed {
    lines: VecDeque<(Instant, IrcLine)>,
    next_id: u64,
}

impl Unconfirmed {
    /// A new line for `text` (not yet handed over).
    pub(super) fn line(&mut self, text: String, trace: TraceCtx) -> IrcLine {
        self.next_id += 1;
        IrcLine {
            id: self.next_id,
            text,
            trace,
            refusals: 0,
        }
    }

    /// `line` goes to the `irc` actor now.
    pub(super) fn handed(&mut self, line: IrcLine, now: Instant) {
        self.expire(now);
        self.lines.push_back((now, line));
    }

    /// The `irc` actor did not take line `id`: nothing can refuse it.
    pub(super) fn not_handed(&mut self, id: u64) {
        self.lines.retain(|(_, line)| line.id != id);
    }

    /// The server refused a line to the channel: the oldest one still waiting, if any.
    pub(super) fn refused(&mut self, now: Instant) -> Option<IrcLine> {
        self.expire(now);
        self.lines.pop_front().map(|(_, line)| line)
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.lines.front() {
            if now.duration_since(*at) < CONFIRM_WINDOW {
                break;
            }
            self.lines.pop_front();
        }
    }
}

/// The alerts channel's half of the webhook actor (the module table).
impl WebhookState {
    /// Hands an alert line to the `irc` actor from a task; it waits in `unconfirmed` until
    /// the server may no longer refuse it.
    pub(super) fn send_to_irc(&mut self, line: IrcLine) {
        let Some(channel) = self.settings.irc_channel.clone() else {
            return;
        };
        self.unconfirmed.handed(line.clone(), Instant::now());
        let (irc, stats, timeout) = (
            self.peers.irc.clone(),
            self.stats.clone(),
            self.settings.irc_timeout,
        );
        let myself = self.myself.clone();
        tokio::spawn(async move {
            let make = |reply| IrcMessage::Send {
                target: channel,
                text: line.text.clone(),
                notice: false,
                require_joined: false,
                priority: SendPriority::Normal,
                trace: line.trace.clone(),
                reply,
            };
            let problem = match irc.call(make, timeout).await {
                Ok(Ok(_)) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(error) => Some(format!("irc actor: {error:?}")),
            };
            match problem {
                None => stats.lock().unwrap_or_else(|p| p.into_inner()).irc_sent += 1,
                Some(problem) => {
                    let _ = myself.cast(WebhookMessage::IrcNotHanded { line, problem });
                }
            }
        });
    }

    pub(super) fn on_irc_not_handed(&mut self, line: &IrcLine, problem: &str) {
        self.unconfirmed.not_handed(line.id);
        tracing::warn!(agent.nick = %self.settings.nick, error = %problem, "Failed to send IRC alert");
        let mut stats = self.stats();
        stats.irc_failed += 1;
        stats.last_error = Some(format!("irc: {problem}"));
    }

    /// The server refused a line to the alerts channel: send the oldest waiting one again
    /// later, or give it up (the `irc_sink` table).
    pub(super) fn on_irc_refused(&mut self, refusal: &str) {
        self.stats().irc_refused += 1;
        let channel = self.settings.irc_channel.as_deref().unwrap_or_default();
        let Some(mut line) = self.unconfirmed.refused(Instant::now()) else {
            tracing::warn!(agent.nick = %self.settings.nick, channel, refusal, "the server refused a line to the alerts channel");
            return;
        };
        line.refusals += 1;
        match verdict(line.refusals) {
            Verdict::Retry(after) => {
                tracing::warn!(agent.nick = %self.settings.nick, channel, refusal, retry_in_ms = after.as_millis() as u64, "the server refused an alert line; sending it again");
                let myself = self.myself.clone();
                myself.send_after(after, move || WebhookMessage::IrcResend(line));
            }
            Verdict::GiveUp => {
                tracing::warn!(agent.nick = %self.settings.nick, channel, refusal, refusals = line.refusals, "the server refused an alert line every time; given up");
                let mut stats = self.stats();
                stats.irc_failed += 1;
                stats.last_error = Some(format!(
                    "irc: {channel} refused the alert {} times ({refusal}); is the agent in the channel? (webhooks.join_channel)",
                    line.refusals
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_lines_are_retried_three_times_then_given_up() {
        assert_eq!(verdict(1), Verdict::Retry(Duration::from_secs(1)));
        assert_eq!(verdict(2), Verdict::Retry(Duration::from_secs(2)));
        assert_eq!(verdict(3), Verdict::Retry(Duration::from_secs(4)));
        assert_eq!(verdict(4), Verdict::GiveUp);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_answers_the_oldest_line_within_the_window() {
        let mut waiting = Unconfirmed::default();
        let first = waiting.line("one".into(), TraceCtx::default());
        let second = waiting.line("two".into(), TraceCtx::default());
        let third = waiting.line("three".into(), TraceCtx::default());
        assert_ne!(first.id, second.id);
        let start = Instant::now();
        waiting.handed(first, start);
        waiting.handed(second.clone(), start + Duration::from_secs(30));
        waiting.handed(third.clone(), start + Duration::from_secs(31));
        waiting.not_handed(third.id);
        // The first line's window is over: the refusal is the second's.
        let refused = waiting.refused(start + CONFIRM_WINDOW);
        assert_eq!(refused.map(|l| l.text), Some("two".to_owned()));
        assert_eq!(waiting.refused(start + CONFIRM_WINDOW), None);
    }
}
