//! The runner's audit records ([`crate::audit`]): a turn codex started, a turn that ended.

use super::{Active, Purpose, RunnerState};
use crate::audit::{Event, TurnEnd, TurnStart};
use crate::runner::turn::Outcome;

impl RunnerState {
    /// `turn.start` for `key`'s running turn, once codex gave it an id.
    pub(super) fn audit_turn_start(&self, key: &str) {
        let (Some(audit), Some(active)) = (&self.settings.audit, self.turns.get(key)) else {
            return;
        };
        let event = Event::TurnStart(TurnStart {
            conversation: conversation(key, active),
            thread_id: active.thread.clone(),
            turn_id: active.turn.id.clone(),
        });
        audit.record(event, &active.trace);
    }

    /// `turn.end` for `active`, `key`'s turn that just ended with `outcome`.
    pub(super) fn audit_turn_end(&self, key: &str, active: &Active, outcome: &Outcome) {
        let Some(audit) = &self.settings.audit else {
            return;
        };
        let (tokens_input, tokens_output) = active.turn.tokens.unzip();
        let event = Event::TurnEnd(TurnEnd {
            conversation: conversation(key, active),
            thread_id: active.thread.clone(),
            turn_id: active.turn.id.clone(),
            outcome: outcome.name(),
            error: match outcome {
                Outcome::Failed(reason) => Some(reason.clone()),
                _ => None,
            },
            tokens_input,
            tokens_output,
            duration_ms: active.turn.started.elapsed().as_millis() as u64,
        });
        audit.record(event, &active.trace);
    }
}

/// The conversation a turn answers: its entries', else its thread key.
fn conversation(key: &str, active: &Active) -> String {
    match &active.purpose {
        Purpose::Entry { conversation, .. } => conversation.as_str().to_owned(),
        _ => key.to_owned(),
    }
}
