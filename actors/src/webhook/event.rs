//! The alert events: Culture's five and codexd's own, their names and the default
//! allow-list (see the table in [`super`]).

use serde::Serialize;

/// Culture's alert events and codexd's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// The agent is failing repeatedly (turn-failure breaker, overseer escalation).
    AgentSpiraling,
    /// codex exited with a non-zero code or was killed by a signal.
    AgentError,
    /// The agent asked a question on IRC (`irc_ask`).
    AgentQuestion,
    /// A turn ran past `turn_timeout_seconds` and was interrupted.
    AgentTimeout,
    /// codex exited with code 0.
    AgentComplete,
    /// A child's circuit opened: it stays down for the cooldown.
    CircuitOpen,
    /// A child's circuit closed: it has been up for `stable_after` again.
    CircuitClosed,
    /// A child failed and its restart is scheduled.
    AgentRestarted,
    /// The agent's journal could not write (mentions refused, or a finished turn not
    /// recorded) or had to set aside a file it could not read.
    JournalError,
    /// The agent's server lost a link of its agentirc mesh.
    MeshSplit,
    /// The agent's server has every lost mesh link back.
    MeshHealed,
}

impl AlertEvent {
    /// Every event, in documentation order.
    pub const ALL: [AlertEvent; 11] = [
        AlertEvent::AgentSpiraling,
        AlertEvent::AgentError,
        AlertEvent::AgentQuestion,
        AlertEvent::AgentTimeout,
        AlertEvent::AgentComplete,
        AlertEvent::CircuitOpen,
        AlertEvent::CircuitClosed,
        AlertEvent::AgentRestarted,
        AlertEvent::JournalError,
        AlertEvent::MeshSplit,
        AlertEvent::MeshHealed,
    ];

    /// The default allow-list: Culture's five plus `circuit_open`, `circuit_closed` and
    /// `journal_error`, `mesh_split` and `mesh_healed` (`agent_restarted` is opt-in: a crash
    /// loop raises one per restart; a split without its heal would leave an operator guessing).
    pub const DEFAULTS: [AlertEvent; 10] = [
        AlertEvent::AgentSpiraling,
        AlertEvent::AgentError,
        AlertEvent::AgentQuestion,
        AlertEvent::AgentTimeout,
        AlertEvent::AgentComplete,
        AlertEvent::CircuitOpen,
        AlertEvent::CircuitClosed,
        AlertEvent::JournalError,
        AlertEvent::MeshSplit,
        AlertEvent::MeshHealed,
    ];

    /// The event's name (`agent_error`, `circuit_open`, …).
    pub fn name(self) -> &'static str {
        match self {
            AlertEvent::AgentSpiraling => "agent_spiraling",
            AlertEvent::AgentError => "agent_error",
            AlertEvent::AgentQuestion => "agent_question",
            AlertEvent::AgentTimeout => "agent_timeout",
            AlertEvent::AgentComplete => "agent_complete",
            AlertEvent::CircuitOpen => "circuit_open",
            AlertEvent::CircuitClosed => "circuit_closed",
            AlertEvent::AgentRestarted => "agent_restarted",
            AlertEvent::JournalError => "journal_error",
            AlertEvent::MeshSplit => "mesh_split",
            AlertEvent::MeshHealed => "mesh_healed",
        }
    }

    /// The event called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}
