//! The `runner` actor's interface: what other actors ask of the agent's `codex app-server`
//! session. The actor itself (spawn, JSON-RPC, turns, journal) arrives with the runner
//! issue; until then an agent has no runner, and the `socket` actor answers as Culture does
//! when the runner is down (`Agent runner is not running`, status `running: false`).

pub mod journal;
pub mod jsonrpc;
pub mod process;
pub mod prompt;
mod stdio;

use std::sync::{Arc, RwLock};

use ractor::RpcReplyPort;
use serde::Serialize;

use crate::child::ControlMsg;
use crate::trace::TraceCtx;

/// A Culture slash command the agent can be told to run between turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlashCommand {
    /// `/compact`: summarise the conversation to free context.
    Compact,
    /// `/clear`: start a fresh conversation.
    Clear,
}

impl SlashCommand {
    /// The prompt text.
    pub fn prompt(self) -> &'static str {
        match self {
            SlashCommand::Compact => "/compact",
            SlashCommand::Clear => "/clear",
        }
    }
}

/// What the runner says about its session (Culture's `status` fields it owns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnStatus {
    /// The codex process is up and its thread started.
    pub running: bool,
    /// Assistant messages seen so far.
    pub turn_count: u64,
    /// Epoch seconds of the last mention dispatched to a turn.
    pub last_activation: Option<f64>,
    /// First line of the last assistant text (≤ 120 chars), or `nothing`.
    pub description: String,
}

/// Messages of the runner actor.
#[derive(Debug)]
pub enum RunnerMessage {
    /// Supervisor and operator requests.
    Control(ControlMsg),
    /// Queue a slash command as the next prompt.
    Command {
        /// Which.
        command: SlashCommand,
        /// The request this continues.
        trace: TraceCtx,
        /// Accepted, or why not.
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// The session's status; `query` asks the agent itself what it is doing.
    Status {
        /// Ask the agent (a short turn, ≤ 10 s) instead of using the last assistant text.
        query: bool,
        /// The request this continues.
        trace: TraceCtx,
        /// The status.
        reply: RpcReplyPort<TurnStatus>,
    },
}

impl From<ControlMsg> for RunnerMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// The turn an agent's codex process is in, if any: set by the runner when a turn starts
/// and cleared when it ends, read by the `socket` actor so that a request made by the
/// codex process (or a tool it runs) during a turn is traced as part of that turn.
#[derive(Debug, Clone, Default)]
pub struct CurrentTurn {
    slot: Arc<RwLock<Option<TurnScope>>>,
}

/// A running turn: the codex process and the turn's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnScope {
    /// The codex app-server's process id; its descendants act within the turn.
    pub pid: u32,
    /// The turn span's context.
    pub trace: TraceCtx,
}

impl CurrentTurn {
    /// A turn started.
    pub fn set(&self, scope: TurnScope) {
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some(scope);
        }
    }

    /// The turn ended.
    pub fn clear(&self) {
        if let Ok(mut slot) = self.slot.write() {
            *slot = None;
        }
    }

    /// The running turn, if any.
    pub fn get(&self) -> Option<TurnScope> {
        self.slot.read().ok().and_then(|slot| slot.clone())
    }
}
