//! A runner's way to its codex process: the [`Slot`] it was placed in (which outlives every
//! process of it) and, while one runs, its session on it ([`Attached`]).
//!
//! | the runner asks            | the slot answers                                        |
//! |----------------------------|---------------------------------------------------------|
//! | [`Slot::watch`]            | the running process's pid, `None` while it is down      |
//! | [`Slot::attach`] (`attached`) | a session on the running process, or `None`          |
//! | [`Slot::down_reason`]      | why the last process ended (status while it is down)    |

use std::sync::{Arc, Mutex, RwLock};

use ractor::ActorCell;
use tokio::sync::watch;

/// One place for a codex process: `process-<n>`, the agents placed on it, and the process
/// running there now, if any.
#[derive(Clone)]
pub struct Slot {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    agents: Mutex<Vec<String>>,
    /// The running process actor, if any.
    actor: RwLock<Option<ActorCell>>,
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
                actor: RwLock::default(),
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

    /// The running process actor (its messages are the process's; see `attached`).
    pub(super) fn actor(&self) -> Option<ActorCell> {
        read(&self.inner.actor).clone()
    }

    /// The process actor is up with `pid` (its `pre_start`).
    pub(super) fn up(&self, actor: ActorCell, pid: u32) {
        *write(&self.inner.actor) = Some(actor);
        *lock(&self.inner.down_reason) = None;
        *lock(&self.inner.open_until) = None;
        self.inner.up.send_replace(Some(pid));
    }

    /// The process actor `actor` is gone, because `why` (nothing changes when a newer
    /// one already took the slot).
    pub(super) fn down(&self, actor: &ActorCell, why: &str) {
        {
            let mut current = write(&self.inner.actor);
            match current.as_ref() {
                Some(now) if now.get_id() != actor.get_id() => return,
                _ => *current = None,
            }
        }
        *lock(&self.inner.down_reason) = Some(why.to_owned());
        self.inner.up.send_replace(None);
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
