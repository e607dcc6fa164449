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
        for (_, pending) in self.requests.drain() {
            self.dropped(pending.waiter);
        }
        // Nothing starts on it until the next process is attached.
        self.initialized = false;
    }

    /// A request that will never be answered (codex is gone or wedged): what waited on it
    /// is let go (a steered entry runs again as a turn; a compaction no longer blocks).
    pub(super) fn dropped(&mut self, waiter: Waiter) {
        match waiter {
            Waiter::Steer { entry, .. } => {
                self.steers.remove(&entry);
                self.dispatched.remove(&entry);
            }
            Waiter::Compact { key } => {
                self.compacting.remove(&key);
            }
            _ => {}
        }
    }

    pub(super) fn on_tick(&mut self) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        self.expire_queries(now);
        self.expire_compactions(now);
        let mut fatal: Option<String> = None;
        let mut cut = false;
        for (_, pending) in self.requests.expire(now) {
            match pending.waiter {
                // A compaction may take long (it has its own deadline); nobody waits for an
                // unsubscribe.
                Waiter::Compact { .. } | Waiter::Unsubscribe => continue,
                Waiter::TurnStart { .. } | Waiter::Probe | Waiter::Steer { .. } => cut = true,
                _ => {}
            }
            fatal.get_or_insert_with(|| pending.method.clone());
            self.dropped(pending.waiter);
        }
        if let Some(method) = fatal {
            if cut {
                self.cut_off_all("wedged", true);
            }
            self.wedged(format!(
                "codex did not answer {method} within {}",
                humantime::format_duration(self.settings.request_timeout)
            ));
            return Ok(());
        }
        let keys: Vec<String> = self.turns.keys().cloned().collect();
        for key in keys {
            let Some(active) = self.turns.get_mut(&key) else {
                continue;
            };
            if let Some(interrupted) = active.turn.interrupted {
                if now >= interrupted + self.settings.interrupt_timeout {
                    // Wedged first: nothing may start on the thread its turn still holds.
                    self.wedged(format!(
                        "codex did not end an interrupted turn within {}s",
                        self.settings.interrupt_timeout.as_secs()
                    ));
                    self.finish(&key, Outcome::Timeout);
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

    /// Compactions whose turn did not complete in time stop blocking their thread.
    fn expire_compactions(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .compacting
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(key, _)| key.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        for key in expired {
            tracing::warn!(agent.nick = %self.settings.nick, conversation = %key, "codex's compaction did not complete in time; the conversation goes on");
            self.compacting.remove(&key);
        }
        self.next();
    }

    /// Abandons every running turn because codex died, is wedged or stopped (`outcome`
    /// names which on their spans). Not finished: their entries (steered ones included)
    /// stay journaled and are replayed on the next process, each on its own thread; when
    /// `counted`, the journal counts the attempt (a graceful stop does not), so a prompt that
    /// breaks codex every time is given up after [`MAX_ATTEMPTS`](super::MAX_ATTEMPTS).
    pub(super) fn cut_off_all(&mut self, outcome: &str, counted: bool) {
        for (key, active) in std::mem::take(&mut self.turns) {
            let ids = match &active.purpose {
                Purpose::Entry { ids, .. } => ids.clone(),
                Purpose::Invite { id, .. } => vec![*id],
                _ => Vec::new(),
            };
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
