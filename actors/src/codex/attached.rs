//! A runner's session on one process actor ([`Attached`]), made by [`Slot::attach`]: it
//! talks to that instance only, so nothing it sends reaches the process's successor.

use std::sync::atomic::{AtomicU64, Ordering};

use ractor::ActorRef;

use super::jsonrpc::Outgoing;
use super::process::CodexProcessMessage;
use super::session::SessionSink;
use super::slot::Slot;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

impl Slot {
    /// A new session on the running process, its events going to `sink`; `None` while no
    /// process runs (the runner waits for [`Slot::watch`]).
    pub fn attach(&self, sink: SessionSink) -> Option<Attached> {
        let pid = self.pid()?;
        let actor: ActorRef<CodexProcessMessage> = self.actor()?.into();
        let session = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        actor
            .cast(CodexProcessMessage::Attach { session, sink })
            .ok()?;
        Some(Attached {
            slot: self.clone(),
            actor,
            session,
            pid,
        })
    }
}

/// A runner's session on one process (one instance of the process actor: messages never
/// reach its successor). Dropping it leaves the process.
pub struct Attached {
    slot: Slot,
    actor: ActorRef<CodexProcessMessage>,
    session: u64,
    pid: u32,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("slot", &self.slot.name())
            .field("session", &self.session)
            .field("pid", &self.pid)
            .finish()
    }
}

/// The process this session was on is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("codex process is gone")]
pub struct ProcessGone;

impl Attached {
    /// The process's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its slot.
    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// Sends one of the runner's messages (requests go out under process-wide ids).
    pub fn send(&self, message: Outgoing) -> Result<(), ProcessGone> {
        self.actor
            .cast(CodexProcessMessage::Send {
                session: self.session,
                message,
            })
            .map_err(|_| ProcessGone)
    }

    /// Waits (at most `timeout`) until the process has queued everything sent before for
    /// codex's stdin: a stopping runner's interrupt goes out before the process stops.
    pub async fn flush(&self, timeout: std::time::Duration) {
        let _ = self
            .actor
            .call(CodexProcessMessage::Flush, Some(timeout))
            .await;
    }

    /// SIGKILLs the process for every agent on it, because `why` (it is wedged, or a
    /// fault was injected); each session then hears [`SessionEvent::Gone`](super::SessionEvent::Gone).
    pub fn kill(&self, why: String) {
        let _ = self.actor.cast(CodexProcessMessage::Kill { why });
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.actor.cast(CodexProcessMessage::Detach {
            session: self.session,
        });
    }
}
