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
        // Nothing starts on it until the next process is attached.
        self.initialized = false;
    }

    pub(super) fn on_tick(&mut self) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        for (_, pending) in self.requests.expire(now) {
            if let Waiter::Compact { .. } | Waiter::Unsubscribe = pending.waiter {
                continue;
            }
            if let Waiter::TurnStart { .. } | Waiter::Probe | Waiter::Steer { .. } = pending.waiter
            {
                self.cut_off_all("wedged", true);
            }
            self.wedged(format!(
                "codex did not answer {} within {}",
                pending.method,
                humantime::format_duration(self.settings.request_timeout)
            ));
            return Ok(());
        }
        self.expire_queries(now);
        let keys: Vec<String> = self.turns.keys().cloned().collect();
        for key in keys {
            let Some(active) = self.turns.get_mut(&key) else {
                continue;
            };
            if let Some(interrupted) = active.turn.interrupted {
                if now >= interrupted + self.settings.interrupt_timeout {
                    self.finish(&key, Outcome::Timeout);
                    self.wedged(format!(
                        "codex did not end an interrupted turn within {}s",
                        self.settings.interrupt_timeout.as_secs()
                    ));
                    return Ok(());
                }
            } else if active.deadline.is_some_and(|deadline| now >= deadline) {
                tracing::warn!(agent.nick = %self.settings.nick, conversation = %key, timeout_s = ?self.settings.turn_timeout.map(|t| t.as_secs()), "turn timed out; interrupting it");
                active.turn.interrupted = Some(now);
                let turn_id = active.turn.id.clone();
                let thread = active.thread.clone();
                self.arm(now + self.settings.interrupt_timeout);
                match turn_id {
                    Some(turn) => {
                        let params = session::turn_interrupt(&thread, &turn);
                        let waiter = Waiter::Interrupt { key: key.clone() };
                        self.request("turn/interrupt", Some(params), waiter)?;
                    }
                    None => self.finish(&key, Outcome::Timeout),
                }
            }
        }
        if !self.turns.is_empty() && self.probe.is_some_and(|due| now >= due) {
            // A codex that stopped mid-turn answers nothing and sends nothing; only a
            // request shows it (its timeout makes the runner fail as wedged).
            self.probe = None;
            self.request(
                "thread/loaded/list",
                Some(Value::Object(Default::default())),
                Waiter::Probe,
            )?;
        }
        Ok(())
    }

    /// Abandons every running turn because codex died, is wedged or stopped (`outcome`
    /// names which on their spans). Not finished: their entries (steered ones included)
    /// stay journaled and are replayed on the next process, each on its own thread; when
    /// `counted`, the journal counts the attempt (a graceful stop does not), so a prompt that
    /// breaks codex every time is given up after [`MAX_ATTEMPTS`](super::MAX_ATTEMPTS).
    pub(super) fn cut_off_all(&mut self, outcome: &str, counted: bool) {
        for (key, active) in std::mem::take(&mut self.turns) {
            let mut ids = match &active.purpose {
                Purpose::Entry { ids, .. } => ids.clone(),
                Purpose::Invite { id, .. } => vec![*id],
                _ => Vec::new(),
            };
            ids.extend(active.steering);
            for id in &ids {
                // Run it again on the next process.
                self.dispatched.remove(id);
                if counted {
                    if let Err(error) = self.inbox.journal.lock().started(*id) {
                        tracing::warn!(agent.nick = %self.settings.nick, error = %error, "failed attempt not recorded");
                    }
                }
            }
            if let Purpose::Handover { from } = &active.purpose {
                // The summary is due again on the next process.
                tracing::debug!(agent.nick = %self.settings.nick, conversation = %key, codex.thread_id = %from, "handover turn cut off");
            }
            end_span(&active.turn, outcome);
            self.peers.turn.clear(&key);
            if let Purpose::Query {
                reply: Some(reply), ..
            } = active.purpose
            {
                let _ = reply.send(self.turn_status(None));
            }
        }
        self.probe = None;
    }
}
