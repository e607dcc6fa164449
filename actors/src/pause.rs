//! Whether an agent is paused, and why: one switch per agent, shared by the actors that
//! pause it (`socket` on IPC `pause`, the runner's turn-failure breaker, the overseer's
//! escalation, the sleep schedule) and those that obey it. It outlives every child restart, so a
//! paused agent stays paused when one of its actors crashes.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

/// Why an agent is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// IPC `pause` (`culture agents sleep`); only `resume` lifts it.
    Manual,
    /// The runner's turn-failure breaker: consecutive turns failed; only `resume` lifts it.
    TurnFailures,
    /// The overseer saw `escalation_threshold` escalations in a row; only `resume` lifts it.
    Escalation,
    /// The `sleep_start`..`sleep_end` window; lifted when the window ends (or by `resume`).
    Sleep,
}

/// The agent's pause switch. Clones share the same state.
#[derive(Debug, Clone)]
pub struct PauseSwitch {
    state: Arc<watch::Sender<Option<PauseReason>>>,
}

impl Default for PauseSwitch {
    fn default() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(None)),
        }
    }
}

impl PauseSwitch {
    /// Pauses the agent (a second pause only updates the reason).
    pub fn pause(&self, reason: PauseReason) {
        self.state.send_replace(Some(reason));
    }

    /// Lifts any pause.
    pub fn resume(&self) {
        self.state.send_replace(None);
    }

    /// Why the agent is paused, or `None` when it runs.
    pub fn reason(&self) -> Option<PauseReason> {
        *self.state.borrow()
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.reason().is_some()
    }

    /// Follows changes (for actors that hold work while paused).
    pub fn subscribe(&self) -> watch::Receiver<Option<PauseReason>> {
        self.state.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_switch() {
        let switch = PauseSwitch::default();
        let other = switch.clone();
        let seen = other.subscribe();
        assert!(!other.is_paused());
        switch.pause(PauseReason::Manual);
        assert_eq!(other.reason(), Some(PauseReason::Manual));
        assert!(seen.has_changed().expect("open"));
        other.resume();
        assert!(!switch.is_paused());
    }
}
