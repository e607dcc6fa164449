//! The runner's codex, one process of its own or a session on a shared one, behind one
//! interface.

use super::SharedSession;
use crate::runner::jsonrpc::Outgoing;
use crate::runner::process::{CodexProcess, Grace, ProcessExit, SendError};

/// The runner's codex: a process of its own, or a session on a shared one.
#[derive(Debug)]
pub(crate) enum Codex {
    /// `codex.agents_per_process: 1`.
    Own(CodexProcess),
    /// A slot of the pool.
    Shared(SharedSession),
}

impl Codex {
    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        match self {
            Codex::Own(process) => process.pid(),
            Codex::Shared(session) => session.pid(),
        }
    }

    /// Queues one message.
    pub(crate) fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        match self {
            Codex::Own(process) => process.send(message),
            Codex::Shared(session) => session.send(message),
        }
    }

    /// SIGKILL (a shared process: every agent on it).
    pub(crate) fn kill(&self) {
        match self {
            Codex::Own(process) => process.kill(),
            Codex::Shared(session) => session.kill(),
        }
    }

    /// The stderr tail.
    pub(crate) fn stderr_tail(&self) -> String {
        match self {
            Codex::Own(process) => process.stderr_tail(),
            Codex::Shared(session) => session.stderr_tail(),
        }
    }

    /// The shared process's slot name (`process-<n>`); `None` for a process of its own.
    pub(crate) fn slot_name(&self) -> Option<String> {
        match self {
            Codex::Own(_) => None,
            Codex::Shared(session) => Some(session.slot_name()),
        }
    }

    /// The other agents on a shared process (empty for its own).
    pub(crate) fn shared_with(&self) -> Vec<String> {
        match self {
            Codex::Own(_) => Vec::new(),
            Codex::Shared(session) => session.shared_with(),
        }
    }

    /// Stops its own process; leaves a shared one (stopping it when the last agent leaves).
    pub(crate) async fn stop(self, grace: Grace) -> Option<ProcessExit> {
        let process = match self {
            Codex::Own(process) => process,
            Codex::Shared(session) => session.detach()?,
        };
        Some(process.stop(grace).await)
    }
}
