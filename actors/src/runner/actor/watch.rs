//! Watching codex for silence: request timeouts, the interrupt deadline, the turn deadline
//! and the liveness probe during a turn (the module table of [`super`]). A codex that stops
//! answering is **wedged**: the runner has its process killed for every agent on it, and
//! resumes on the next one like after any other death.

use ractor::ActorProcessingErr;
use serde_json::Value;
use tokio::time::Instant;

use super::turns::end_span;
use super::{Purpose, RunnerState, Waiter};
use crate::runner::session;
use crate::runner::turn::Outcome;

impl RunnerState {
    /// codex stopped answering, because `why`: its process is killed for every agent on it
    /// (each resumes its thread on the next one). The requests still waiting are dropped,
    /// so the same silence is reported once.
    pub(super) fn wedged(&mut self, why: String) {
        if let Some(codex) = &self.process {
            tracing::warn!(agent.nick = %self.settings.nick, codex.process = %self.settings.codex.name(), codex.pid = codex.pid(), reason = %why, "codex is wedged; killing its process for every agent on it");
            codex.kill(format!("{}: {why}", self.settings.nick));
        }
        let _ = self.requests.drain();
    }

    pub(super) fn on_tick(&mut self) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        for (_, pending) in self.requests.expire(now) {
            if let Waiter::Compact = pending.waiter {
                continue;
            }
            if let Waiter::TurnStart | Waiter::Probe = pending.waiter {
                self.cut_off("wedged", true);
            }
            self.wedged(format!(
                "codex did not answer {} within {}",
                pending.method,
                humantime::format_duration(self.settings.request_timeout)
            ));
            return Ok(());
        }
        self.expire_queries(now);
        let Some(active) = &mut self.active else {
            return Ok(());
        };
        if let Some(interrupted) = active.turn.interrupted {
            if now >= interrupted + self.settings.interrupt_timeout {
                self.finish(Outcome::Timeout);
                self.wedged(format!(
                    "codex did not end an interrupted turn within {}s",
                    self.settings.interrupt_timeout.as_secs()
                ));
                return Ok(());
            }
        } else if active.deadline.is_some_and(|deadline| now >= deadline) {
            tracing::warn!(agent.nick = %self.settings.nick, timeout_s = ?self.settings.turn_timeout.map(|t| t.as_secs()), "turn timed out; interrupting it");
            active.turn.interrupted = Some(now);
            let turn_id = active.turn.id.clone();
            self.arm(now + self.settings.interrupt_timeout);
            match (turn_id, self.thread.clone()) {
                (Some(turn), Some(thread)) => {
                    let params = session::turn_interrupt(&thread, &turn);
                    self.request("turn/interrupt", Some(params), Waiter::Interrupt)?;
                }
                _ => self.finish(Outcome::Timeout),
            }
        } else if active.probe.is_some_and(|due| now >= due) {
            // A codex that stopped mid-turn answers nothing and sends nothing; only a
            // request shows it (its timeout makes the runner fail as wedged).
            active.probe = None;
            self.request(
                "thread/loaded/list",
                Some(Value::Object(Default::default())),
                Waiter::Probe,
            )?;
        }
        Ok(())
    }

    /// Abandons the running turn because codex died, is wedged or stopped (`outcome` names
    /// which on its span). Not finished: the entry stays journaled and is replayed on the
    /// next process; when `counted`, the journal counts the attempt (a graceful stop does
    /// not), so a prompt that breaks codex every time is given up after [`MAX_ATTEMPTS`].
    pub(super) fn cut_off(&mut self, outcome: &str, counted: bool) {
        let Some(active) = self.active.take() else {
            return;
        };
        if let Purpose::Entry { id, .. } = &active.purpose {
            // Run it again on the next process (entries run in id order, one at a time).
            self.dispatched = self.dispatched.min(id.saturating_sub(1));
        }
        if let (Purpose::Entry { id, .. }, true) = (&active.purpose, counted) {
            if let Err(error) = self.inbox.journal.lock().started(*id) {
                tracing::warn!(agent.nick = %self.settings.nick, error = %error, "failed attempt not recorded");
            }
        }
        end_span(&active.turn, outcome);
        self.peers.turn.clear();
        if let Purpose::Query {
            reply: Some(reply), ..
        } = active.purpose
        {
            let _ = reply.send(self.turn_status(None));
        }
    }
}
