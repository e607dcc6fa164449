//! The `webhook` actor's interface: alerts other actors raise. The actor (HTTP delivery,
//! retries, the IRC alerts channel) arrives with the webhook issue; until then an agent has
//! no webhook child and alerts are only logged by whoever raised them.

use serde::Serialize;

use crate::child::ControlMsg;
use crate::trace::TraceCtx;

/// Culture's alert events (and codexd's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// The agent asked a question on IRC (`irc_ask`).
    AgentQuestion,
    /// The agent was paused after consecutive failed turns (Culture's turn-failure breaker).
    AgentSpiraling,
}

impl AlertEvent {
    /// Culture's event name.
    pub fn name(self) -> &'static str {
        match self {
            AlertEvent::AgentQuestion => "agent_question",
            AlertEvent::AgentSpiraling => "agent_spiraling",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What happened.
    pub event: AlertEvent,
    /// The agent's nick.
    pub nick: String,
    /// Culture's message text, e.g. `[QUESTION] [spark-a] asked in #general: …`.
    pub message: String,
    /// The work that raised it.
    pub trace: TraceCtx,
}

/// Messages of the webhook actor.
#[derive(Debug)]
pub enum WebhookMessage {
    /// Supervisor and operator requests.
    Control(ControlMsg),
    /// Deliver an alert (never blocks the sender).
    Alert(Alert),
}

impl From<ControlMsg> for WebhookMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}
