//! A runner's way to its codex process: the [`Slot`] it was placed in (which outlives every
//! process of it) and, while one runs, its session on it ([`Attached`]).
//!
//! | the runner asks            | the slot answers                                        |
//! |----------------------------|---------------------------------------------------------|
//! | [`Slot::watch`]            | the running process's pid, `None` while it is down      |
//! | [`Slot::attach`]           | a session on the running process, or `None`             |
//! | [`Slot::down_reason`]      | why the last process ended (status while it is down)    |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ractor::ActorRef;
use tokio::sync::watch;

use super::jsonrpc::Outgoing;
use super::process::CodexProcessMessage;
use super::{SessionEvent, SessionSink};
use crate::link::Link;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// One place for a codex process: `process-<n>`, the agents placed on it, and the process
/// running there now, if any.
#[derive(Clone)]
pub struct Slot {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    agents: Mutex<Vec<String>>,
    link: Link<CodexProcessMessage>,
    up: watch::Sender<Option<u32>>,
    down_reason: Mutex<Option<String>>,
    /// While its circuit is open: when the next start is due.
    open_until: Mutex<Option<tokio::time::Instant>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("name", &self.inner.name)
            .field("pid", &self.pid())
            .finish()
    }
}

impl Slot {
    /// An empty slot named `name`.
    pub fn new(name: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                agents: Mutex::default(),
                link: Link::default(),
                up: watch::Sender::new(None),
                down_reason: Mutex::default(),
                open_until: Mutex::default(),
            }),
        }
    }

    /// `process-<n>`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The agents placed on it.
    pub fn agents(&self) -> Vec<String> {
        lock(&self.inner.agents).clone()
    }

    pub(super) fn add_agent(&self, nick: &str) {
        let mut agents = lock(&self.inner.agents);
        if !agents.iter().any(|a| a == nick) {
            agents.push(nick.to_owned());
        }
    }

    pub(super) fn remove_agent(&self, nick: &str) -> bool {
        let mut agents = lock(&self.inner.agents);
        agents.retain(|a| a != nick);
        agents.is_empty()
    }

    /// The running process's pid; `None` while it is down (starting, restarting, circuit
    /// open).
    pub fn pid(&self) -> Option<u32> {
        *self.inner.up.borrow()
    }

    /// Changes whenever a process comes up or goes down.
    pub fn watch(&self) -> watch::Receiver<Option<u32>> {
        self.inner.up.subscribe()
    }

    /// Why the last process of this slot ended, while none runs; with an open circuit,
    /// when the next start is due and how to start it now.
    pub fn down_reason(&self) -> Option<String> {
        if self.pid().is_some() {
            return None;
        }
        let reason = lock(&self.inner.down_reason).clone();
        let open = *lock(&self.inner.open_until);
        match open {
            None => reason,
            Some(until) => {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                Some(format!(
                    "{}; circuit open: it died too often, next start in {:.0}s, or `codexd reset codex {}`",
                    reason.unwrap_or_else(|| "down".to_owned()),
                    left.as_secs_f64(),
                    self.name()
                ))
            }
        }
    }

    /// No process runs because its circuit is open.
    pub fn circuit_open(&self) -> bool {
        self.pid().is_none() && lock(&self.inner.open_until).is_some()
    }

    /// Its circuit opened for `cooldown` (the `codex` supervisor's observer).
    pub(super) fn circuit_opened(&self, cooldown: std::time::Duration) {
        *lock(&self.inner.open_until) = Some(tokio::time::Instant::now() + cooldown);
    }

    /// A new session on the running process, its events going to `sink`; `None` while no
    /// process runs (the runner waits for [`Slot::watch`]).
    pub fn attach(&self, sink: SessionSink) -> Option<Attached> {
        let pid = self.pid()?;
        let actor = self.inner.link.get()?;
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

    /// The process actor is up with `pid` (its `pre_start`).
    pub(super) fn up(&self, actor: ActorRef<CodexProcessMessage>, pid: u32) {
        self.inner.link.set(actor);
        *lock(&self.inner.down_reason) = None;
        *lock(&self.inner.open_until) = None;
        self.inner.up.send_replace(Some(pid));
    }

    /// The process actor `actor` is gone, because `why` (nothing changes when a newer
    /// one already took the slot).
    pub(super) fn down(&self, actor: &ActorRef<CodexProcessMessage>, why: &str) {
        self.inner.link.clear(actor);
        if self.inner.link.get().is_some() {
            return;
        }
        *lock(&self.inner.down_reason) = Some(why.to_owned());
        self.inner.up.send_replace(None);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    /// fault was injected); each session then hears [`SessionEvent::Gone`].
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

impl SessionEvent {
    /// True for [`SessionEvent::Gone`].
    pub fn is_gone(&self) -> bool {
        matches!(self, SessionEvent::Gone(_))
    }
}
