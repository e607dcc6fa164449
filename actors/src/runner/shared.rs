//! Shared `codex app-server` processes: many agents, one process, one codex thread each
//! (reference/shared-app-server.md). Each agent's runner keeps its own JSON-RPC session;
//! this module multiplexes those sessions onto one process and demultiplexes its stdout.
//!
//! | from a runner            | what goes to codex                                          |
//! |--------------------------|-------------------------------------------------------------|
//! | request (any but below)  | the same request under a process-wide id, through the process's [`window`] (at most [`REQUEST_WINDOW`] unanswered, the rest wait in order; `-32001 "Server overloaded"` is retried with backoff); the answer goes back under the runner's id |
//! | `initialize` request     | nothing: answered from the process's own handshake (done once, when it starts) |
//! | `initialized`            | nothing (sent once by the pool)                              |
//! | answer to a server request | as is (server request ids are the process's own)          |
//!
//! | from codex                          | goes to                                        |
//! |-------------------------------------|------------------------------------------------|
//! | answer                              | the runner that asked                          |
//! | notification / server request with a `threadId` (or `thread.id`) | the runner whose thread it is |
//! | anything else (rate limits, config warnings, a thread not known yet) | every runner (each ignores other threads) |
//! | exit                                | every runner: each fails and is restarted by its supervisor, resumes its thread on the next process and replays its journal |
//!
//! A process starts when the first runner of its slot attaches and stops when the last one
//! detaches. Runners never cache it: a restarted runner attaches again and gets the live
//! process, or starts a new one. Delivery to a runner is a cast into its mailbox, so a slow
//! agent never stalls the stdout reader or its neighbours.
//!
//! Each slot has a circuit breaker under its agents' `restart:` policy (agents with another
//! policy get another slot) that counts its process's deaths (crash, or killed as wedged). The restart itself waits for the first
//! runner's own backoff; once `max_restarts` deaths fall within `window`, the circuit opens
//! and attaching fails with an error naming the slot until the cooldown is over (or
//! `codexd reset codex process-<n>`); then one start is let through (half-open), and a
//! process that stays up `stable_after` closes it. Transitions are logged and counted like
//! a supervisor's (supervisor `codex`, child `process-<n>`).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::jsonrpc::{Incoming, Outgoing};
use super::process::{CodexCommand, CodexProcess, ProcessEvent, SendError, SpawnError};
use crate::events::{Transition, TransitionEvent};
use crate::restart::{Breaker, Circuit, RestartPolicy};

mod codex;
mod demux;
#[cfg(test)]
mod tests;
pub mod window;

pub(crate) use codex::Codex;
use demux::{Init, Live, demux};
pub use window::REQUEST_WINDOW;

/// Where a runner's events go (a cast into its mailbox; false once it is gone).
pub type Sink = Arc<dyn Fn(ProcessEvent) -> bool + Send + Sync>;

/// The daemon's shared codex processes, in slots: agents with the same codex identity are
/// packed, in the order they are placed, `per_process` to a slot.
#[derive(Clone)]
pub struct CodexPool {
    slots: Arc<Mutex<Vec<Slot>>>,
    per_process: usize,
    window: usize,
}

impl std::fmt::Debug for CodexPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodexPool")
            .field("per_process", &self.per_process)
            .finish_non_exhaustive()
    }
}

/// One slot of the pool in `codexd status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlotStatus {
    /// Its name: `process-<n>`, in placement order (`codexd reset codex process-<n>`).
    pub name: String,
    /// The running process, if any (one starts when the first agent attaches).
    pub pid: Option<u32>,
    /// The agents placed on it.
    pub agents: Vec<String>,
    /// Runners attached now.
    pub attached: usize,
    /// Codex threads routed to them.
    pub threads: usize,
    /// Turns started and not completed.
    pub turns_in_flight: usize,
    /// Requests written and unanswered (at most [`REQUEST_WINDOW`]).
    pub requests_in_flight: usize,
    /// Requests waiting for a place in the window.
    pub requests_waiting: usize,
    /// `-32001 "Server overloaded"` answers from the running process (each retried).
    pub overloaded: u64,
    /// Processes started for this slot.
    pub starts: u64,
    /// Of which restarts (`starts - 1`).
    pub restarts: u64,
    /// `closed`, `open` or `half_open`: deaths of its process counted under its agents'
    /// `restart:` policy.
    pub circuit: &'static str,
    /// Seconds until an open circuit lets the next start through.
    pub circuit_open_s: Option<f64>,
    /// Seconds since its process started.
    pub uptime_s: Option<f64>,
}

/// One agent's place in the pool.
#[derive(Clone)]
pub struct SlotRef {
    pool: CodexPool,
    index: usize,
}

impl std::fmt::Debug for SlotRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotRef({})", self.index)
    }
}

struct Slot {
    key: String,
    command: CodexCommand,
    agents: Vec<String>,
    live: Option<Live>,
    generations: u64,
    breaker: Breaker,
}

/// A slot's name: `process-<n>`, in placement order.
fn slot_name(index: usize) -> String {
    format!("process-{index}")
}

impl Slot {
    fn name(&self, index: usize) -> String {
        slot_name(index)
    }

    /// A half-open process that has been up for `stable_after` closes its circuit.
    fn settle(&mut self, now: Instant) -> Vec<Transition> {
        let stable = self.breaker.policy().stable_after;
        let up = self
            .live
            .as_ref()
            .is_some_and(|l| now.saturating_duration_since(l.started) >= stable);
        match up && self.breaker.on_stable() {
            true => vec![Transition::CircuitClosed],
            false => Vec::new(),
        }
    }

    /// Log line, span and metrics of each transition, as the supervisors write them
    /// (supervisor `codex`, child `process-<n>`).
    fn emit(name: &str, transitions: Vec<Transition>) {
        for transition in transitions {
            let _span = TransitionEvent {
                supervisor: "codex",
                child: name,
                transition,
            }
            .emit();
        }
    }
}

/// Why a runner could not join its shared process.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The process could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// Its process died too often.
    #[error(
        "shared codex {name} (agents {agents}) has an open circuit: its process died too often (restart policy: {max} deaths within {window_s}s open it); next start in {retry_s:.0}s, or `codexd reset codex {name}`"
    )]
    CircuitOpen {
        /// The slot's name.
        name: String,
        /// The agents placed on it.
        agents: String,
        /// The policy's `max_restarts`.
        max: u32,
        /// The policy's `window`, in seconds.
        window_s: u64,
        /// Seconds until the half-open start.
        retry_s: f64,
    },
}

/// No slot of that name (`codexd reset codex <name>`).
#[derive(Debug, thiserror::Error)]
#[error("no shared codex {0}")]
pub struct NoSuchSlot(pub String);

impl CodexPool {
    /// A pool that puts up to `per_process` agents on one process.
    pub fn new(per_process: usize) -> Self {
        Self {
            slots: Arc::default(),
            per_process: per_process.max(1),
            window: REQUEST_WINDOW,
        }
    }

    /// The same pool with at most `window` requests in flight per process.
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    /// Agents per process.
    pub fn per_process(&self) -> usize {
        self.per_process
    }

    /// Requests in flight per process.
    pub fn window(&self) -> usize {
        self.window
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The slot of `nick`: the one it already has, else the first slot of the same `key`
    /// with room, else a new slot that starts processes with `command` and counts their
    /// deaths under `policy`. The key must cover the codex identity (binary, arguments,
    /// environment) and `policy`: the agents of a slot fail together when its process dies,
    /// so their own breakers and the slot's count the same deaths under the same policy.
    pub fn place(
        &self,
        nick: &str,
        key: &str,
        command: CodexCommand,
        policy: RestartPolicy,
    ) -> SlotRef {
        let mut slots = self.lock();
        let found = slots
            .iter()
            .position(|s| s.key == key && s.agents.iter().any(|a| a == nick))
            .or_else(|| {
                slots
                    .iter()
                    .position(|s| s.key == key && s.agents.len() < self.per_process)
            });
        let index = match found {
            Some(index) => index,
            None => {
                slots.push(Slot {
                    key: key.to_owned(),
                    command,
                    agents: Vec::new(),
                    live: None,
                    generations: 0,
                    breaker: Breaker::new(policy),
                });
                slots.len() - 1
            }
        };
        if !slots[index].agents.iter().any(|a| a == nick) {
            slots[index].agents.push(nick.to_owned());
        }
        SlotRef {
            pool: self.clone(),
            index,
        }
    }

    /// Every slot: its agents, its circuit and, while it runs, its process (`codexd
    /// status`, the `codex` service).
    pub fn status(&self) -> Vec<SlotStatus> {
        let now = Instant::now();
        let mut slots = self.lock();
        let mut transitions = Vec::new();
        let status = slots
            .iter_mut()
            .enumerate()
            .map(|(index, slot)| {
                transitions.push((slot.name(index), slot.settle(now)));
                let live = slot.live.as_ref();
                let circuit = slot.breaker.circuit();
                SlotStatus {
                    name: slot.name(index),
                    pid: live.map(|l| l.process.pid()),
                    agents: slot.agents.clone(),
                    attached: live.map_or(0, |l| l.sessions.len()),
                    threads: live.map_or(0, |l| l.threads.len()),
                    turns_in_flight: live.map_or(0, |l| l.turns.len()),
                    requests_in_flight: live.map_or(0, |l| l.window.out()),
                    requests_waiting: live.map_or(0, |l| l.window.waiting()),
                    overloaded: live.map_or(0, |l| l.overloaded),
                    starts: slot.generations,
                    restarts: slot.generations.saturating_sub(1),
                    circuit: circuit.name(),
                    circuit_open_s: match circuit {
                        Circuit::Open { until } => {
                            Some(until.saturating_duration_since(now).as_secs_f64())
                        }
                        _ => None,
                    },
                    uptime_s: live.map(|l| now.duration_since(l.started).as_secs_f64()),
                }
            })
            .collect();
        drop(slots);
        for (name, transitions) in transitions {
            Slot::emit(&name, transitions);
        }
        status
    }

    /// Closes the circuit of slot `name` (`process-<n>`), or of every slot.
    pub fn reset(&self, name: Option<&str>) -> Result<(), NoSuchSlot> {
        let mut slots = self.lock();
        let mut reset = Vec::new();
        for (index, slot) in slots.iter_mut().enumerate() {
            let this = slot.name(index);
            if name.is_none_or(|n| n == this) {
                let was_open = slot.breaker.circuit() != Circuit::Closed;
                slot.breaker.reset();
                reset.push((this, vec![Transition::Reset { was_open }]));
            }
        }
        drop(slots);
        if reset.is_empty() {
            return Err(NoSuchSlot(name.unwrap_or_default().to_owned()));
        }
        for (name, transitions) in reset {
            Slot::emit(&name, transitions);
        }
        Ok(())
    }

    /// Frees `nick`'s place (the agent was removed from the config).
    pub fn release(&self, nick: &str) {
        for slot in self.lock().iter_mut() {
            slot.agents.retain(|a| a != nick);
        }
    }
}

impl SlotRef {
    /// The agents placed in this slot.
    pub fn agents(&self) -> Vec<String> {
        self.pool.lock()[self.index].agents.clone()
    }
}

/// A runner's session on a shared process.
pub struct SharedSession {
    slot: SlotRef,
    session: u64,
    generation: u64,
    pid: u32,
    /// Already removed from the process.
    left: bool,
}

impl std::fmt::Debug for SharedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSession")
            .field("slot", &self.slot.index)
            .field("pid", &self.pid)
            .finish()
    }
}

static NEXT_SESSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl SharedSession {
    /// Joins the slot's live process, starting it if there is none and its circuit lets
    /// it; its events for this runner go to `sink`.
    pub fn attach(slot: &SlotRef, sink: Sink) -> Result<Self, AttachError> {
        let now = Instant::now();
        let mut slots = slot.pool.lock();
        let entry = &mut slots[slot.index];
        let name = entry.name(slot.index);
        let mut transitions = entry.settle(now);
        if entry.live.is_none() {
            if let Circuit::Open { until } = entry.breaker.circuit() {
                if !entry.breaker.on_cooldown_elapsed(now) {
                    let policy = entry.breaker.policy();
                    return Err(AttachError::CircuitOpen {
                        agents: entry.agents.join(", "),
                        max: policy.max_restarts,
                        window_s: policy.window.as_secs(),
                        retry_s: until.saturating_duration_since(now).as_secs_f64(),
                        name,
                    });
                }
                transitions.push(Transition::HalfOpen);
            }
            entry.generations += 1;
            let generation = entry.generations;
            let demux_slot = slot.clone();
            let process = CodexProcess::spawn(&entry.command, move |event| {
                demux(&demux_slot, generation, event);
                true
            })?;
            let live = Live::new(process, generation, slot.pool.window);
            tracing::info!(codex.pid = live.process.pid(), agents = ?entry.agents, "shared codex started");
            transitions.push(Transition::Started);
            entry.live = Some(live);
        }
        let Some(live) = entry.live.as_mut() else {
            unreachable!("started above");
        };
        let session = NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        live.sessions.insert(session, sink);
        let attached = Self {
            slot: slot.clone(),
            session,
            generation: live.generation,
            pid: live.process.pid(),
            left: false,
        };
        drop(slots);
        Slot::emit(&name, transitions);
        Ok(attached)
    }

    /// The shared process's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its slot's name (`process-<n>`).
    pub fn slot_name(&self) -> String {
        slot_name(self.slot.index)
    }

    /// The agents placed on the same process.
    pub fn shared_with(&self) -> Vec<String> {
        self.slot.agents()
    }

    fn with_live<T>(&self, f: impl FnOnce(&mut Live) -> T) -> Option<T> {
        let mut slots = self.slot.pool.lock();
        let live = slots[self.slot.index].live.as_mut()?;
        (live.generation == self.generation).then(|| f(live))
    }

    /// Sends one of the runner's messages (see the module table).
    pub fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let session = self.session;
        let answer = self.with_live(|live| match message {
            Outgoing::Request { id, method, .. } if method == "initialize" => {
                match &mut live.init {
                    Init::Done(result) => Ok(Some((id.clone(), result.clone()))),
                    Init::Waiting { queued, .. } => {
                        queued.push((session, id.clone()));
                        Ok(None)
                    }
                }
            }
            Outgoing::Request { id, method, params } => {
                live.request(session, id, method, params).map(|()| None)
            }
            Outgoing::Notification { method, .. } if method == "initialized" => Ok(None),
            other => live.process.send(other).map(|()| None),
        });
        match answer {
            None => Err(SendError::Closed),
            Some(Err(error)) => Err(error),
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some((id, result)))) => {
                self.deliver_to_self(Incoming::Response {
                    id,
                    outcome: Ok(result),
                });
                Ok(())
            }
        }
    }

    fn deliver_to_self(&self, incoming: Incoming) {
        let sink = self.with_live(|live| live.sessions.get(&self.session).cloned());
        if let Some(Some(sink)) = sink {
            sink(ProcessEvent::Message(incoming));
        }
    }

    /// SIGKILLs the shared process (every agent on it loses its turn).
    pub fn kill(&self) {
        self.with_live(|live| live.process.kill());
    }

    /// The process's stderr tail.
    pub fn stderr_tail(&self) -> String {
        self.with_live(|live| live.process.stderr_tail())
            .unwrap_or_default()
    }

    /// Leaves the process; the last one out gets it back to stop.
    pub fn detach(mut self) -> Option<CodexProcess> {
        self.leave()
    }

    /// Removes this session (once); the process when it was the last one on it.
    fn leave(&mut self) -> Option<CodexProcess> {
        if std::mem::replace(&mut self.left, true) {
            return None;
        }
        let mut slots = self.slot.pool.lock();
        let entry = &mut slots[self.slot.index];
        let live = entry.live.as_mut()?;
        if live.generation != self.generation {
            return None;
        }
        live.remove(self.session);
        if !live.sessions.is_empty() {
            return None;
        }
        entry.live.take().map(|live| live.process)
    }
}

impl Drop for SharedSession {
    /// A runner that goes away without [`SharedSession::detach`] (it panicked, or codex
    /// exited under it) still leaves; if it was the last, dropping the process kills and
    /// reaps it.
    fn drop(&mut self) {
        drop(self.leave());
    }
}
