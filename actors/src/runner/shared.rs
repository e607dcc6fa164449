//! Shared `codex app-server` processes: many agents, one process, one codex thread each
//! (reference/shared-app-server.md). Each agent's runner keeps its own JSON-RPC session;
//! this module multiplexes those sessions onto one process and demultiplexes its stdout.
//!
//! | from a runner            | what goes to codex                                          |
//! |--------------------------|-------------------------------------------------------------|
//! | request (any but below)  | the same request under a process-wide id; the answer goes back under the runner's id |
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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::jsonrpc::{Incoming, Outgoing, RequestId};
use super::process::{CodexCommand, CodexProcess, ProcessEvent, SendError, SpawnError};
use super::session;

/// Where a runner's events go (a cast into its mailbox; false once it is gone).
pub type Sink = Arc<dyn Fn(ProcessEvent) -> bool + Send + Sync>;

/// The daemon's shared codex processes, in slots: agents with the same codex identity are
/// packed, in the order they are placed, `per_process` to a slot.
#[derive(Clone)]
pub struct CodexPool {
    slots: Arc<Mutex<Vec<Slot>>>,
    per_process: usize,
}

impl std::fmt::Debug for CodexPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodexPool")
            .field("per_process", &self.per_process)
            .finish_non_exhaustive()
    }
}

/// One slot of the pool in `codexd status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SlotStatus {
    /// The running process, if any (one starts when the first agent attaches).
    pub pid: Option<u32>,
    /// The agents placed on it.
    pub agents: Vec<String>,
    /// Runners attached now.
    pub attached: usize,
    /// Codex threads routed to them.
    pub threads: usize,
    /// Requests waiting for codex's answer.
    pub requests_in_flight: usize,
    /// Processes started for this slot.
    pub starts: u64,
    /// Of which restarts (`starts - 1`).
    pub restarts: u64,
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
}

struct Live {
    process: CodexProcess,
    generation: u64,
    sessions: BTreeMap<u64, Session>,
    /// Process-wide request id → who asked.
    requests: HashMap<i64, Routed>,
    /// Thread id → session.
    threads: HashMap<String, u64>,
    init: Init,
    next_id: i64,
}

struct Session {
    sink: Sink,
}

struct Routed {
    session: u64,
    id: RequestId,
    method: String,
}

enum Init {
    /// The pool's own `initialize` (this id) is unanswered; these runner requests wait.
    Waiting {
        id: i64,
        queued: Vec<(u64, RequestId)>,
    },
    /// Its result, given to every runner's `initialize`.
    Done(Value),
}

impl CodexPool {
    /// A pool that puts up to `per_process` agents on one process.
    pub fn new(per_process: usize) -> Self {
        Self {
            slots: Arc::default(),
            per_process: per_process.max(1),
        }
    }

    /// Agents per process.
    pub fn per_process(&self) -> usize {
        self.per_process
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The slot of `nick`: the one it already has, else the first slot of the same `key`
    /// (codex identity: binary, arguments, environment) with room, else a new slot that
    /// starts processes with `command`.
    pub fn place(&self, nick: &str, key: &str, command: CodexCommand) -> SlotRef {
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

    /// Every slot: its agents and, while it runs, its process (`codexd status`, the `codex`
    /// service).
    pub fn status(&self) -> Vec<SlotStatus> {
        self.lock()
            .iter()
            .map(|slot| {
                let live = slot.live.as_ref();
                SlotStatus {
                    pid: live.map(|l| l.process.pid()),
                    agents: slot.agents.clone(),
                    attached: live.map_or(0, |l| l.sessions.len()),
                    threads: live.map_or(0, |l| l.threads.len()),
                    requests_in_flight: live.map_or(0, |l| l.requests.len()),
                    starts: slot.generations,
                    restarts: slot.generations.saturating_sub(1),
                }
            })
            .collect()
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
    /// Joins the slot's live process, starting it if there is none; its events for this
    /// runner go to `sink`.
    pub fn attach(slot: &SlotRef, sink: Sink) -> Result<Self, SpawnError> {
        let mut slots = slot.pool.lock();
        let entry = &mut slots[slot.index];
        if entry.live.is_none() {
            entry.generations += 1;
            let generation = entry.generations;
            let demux_slot = slot.clone();
            let process = CodexProcess::spawn(&entry.command, move |event| {
                demux(&demux_slot, generation, event);
                true
            })?;
            let mut live = Live {
                process,
                generation,
                sessions: BTreeMap::new(),
                requests: HashMap::new(),
                threads: HashMap::new(),
                init: Init::Done(Value::Null),
                next_id: 1,
            };
            let id = live.next_id;
            live.next_id += 1;
            live.init = Init::Waiting {
                id,
                queued: Vec::new(),
            };
            let line = Outgoing::Request {
                id: RequestId::Int(id),
                method: "initialize".to_owned(),
                params: Some(session::initialize()),
            };
            if let Err(error) = live.process.send(&line) {
                tracing::warn!(error = %error, "shared codex: initialize not sent");
            }
            tracing::info!(codex.pid = live.process.pid(), agents = ?entry.agents, "shared codex started");
            entry.live = Some(live);
        }
        let Some(live) = entry.live.as_mut() else {
            unreachable!("started above");
        };
        let session = NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        live.sessions.insert(session, Session { sink });
        Ok(Self {
            slot: slot.clone(),
            session,
            generation: live.generation,
            pid: live.process.pid(),
            left: false,
        })
    }

    /// The shared process's pid.
    pub fn pid(&self) -> u32 {
        self.pid
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
                let global = live.next_id;
                live.next_id += 1;
                live.requests.insert(
                    global,
                    Routed {
                        session,
                        id: id.clone(),
                        method: method.clone(),
                    },
                );
                let line = Outgoing::Request {
                    id: RequestId::Int(global),
                    method: method.clone(),
                    params: params.clone(),
                };
                live.process.send(&line).map(|()| None)
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
        let sink = self.with_live(|live| live.sessions.get(&self.session).map(|s| s.sink.clone()));
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
        live.sessions.remove(&self.session);
        live.threads.retain(|_, s| *s != self.session);
        live.requests.retain(|_, r| r.session != self.session);
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

/// Routes one event of generation `generation` of `slot`'s process (module table).
fn demux(slot: &SlotRef, generation: u64, event: ProcessEvent) {
    let mut slots = slot.pool.lock();
    let entry = &mut slots[slot.index];
    let Some(live) = entry.live.as_mut().filter(|l| l.generation == generation) else {
        return;
    };
    let incoming = match event {
        ProcessEvent::Exited(exit) => {
            tracing::warn!(codex.pid = live.process.pid(), exit = %exit, agents = ?entry.agents, "shared codex exited; every agent on it restarts");
            let sinks: Vec<Sink> = live.sessions.values().map(|s| s.sink.clone()).collect();
            entry.live = None;
            drop(slots);
            for sink in sinks {
                sink(ProcessEvent::Exited(exit.clone()));
            }
            return;
        }
        ProcessEvent::Message(incoming) => incoming,
    };
    let deliveries = route(live, incoming);
    drop(slots);
    for (sink, incoming) in deliveries {
        sink(ProcessEvent::Message(incoming));
    }
}

/// Who gets `incoming`, rewritten for them.
fn route(live: &mut Live, incoming: Incoming) -> Vec<(Sink, Incoming)> {
    let to = |live: &Live, session: u64, incoming: Incoming| {
        live.sessions
            .get(&session)
            .map(|s| vec![(s.sink.clone(), incoming)])
            .unwrap_or_default()
    };
    let everyone = |live: &Live, incoming: Incoming| {
        live.sessions
            .values()
            .map(|s| (s.sink.clone(), incoming.clone()))
            .collect::<Vec<_>>()
    };
    match incoming {
        Incoming::Response { id, outcome } => {
            let RequestId::Int(global) = id else {
                return Vec::new();
            };
            if let Init::Waiting { id: init, queued } = &mut live.init {
                if *init == global {
                    let queued = std::mem::take(queued);
                    let result = outcome.unwrap_or(Value::Null);
                    live.init = Init::Done(result.clone());
                    let initialized = Outgoing::Notification {
                        method: "initialized".to_owned(),
                        params: None,
                    };
                    let _ = live.process.send(&initialized);
                    return queued
                        .into_iter()
                        .flat_map(|(session, id)| {
                            let answer = Incoming::Response {
                                id,
                                outcome: Ok(result.clone()),
                            };
                            to(live, session, answer)
                        })
                        .collect();
                }
            }
            let Some(routed) = live.requests.remove(&global) else {
                return Vec::new();
            };
            if routed.method == "thread/start" || routed.method == "thread/resume" {
                if let Some(thread) = outcome
                    .as_ref()
                    .ok()
                    .and_then(|r| r["thread"]["id"].as_str())
                {
                    live.threads.insert(thread.to_owned(), routed.session);
                }
            }
            let answer = Incoming::Response {
                id: routed.id,
                outcome,
            };
            to(live, routed.session, answer)
        }
        Incoming::Notification { ref params, .. } => {
            let session = thread_of(params).and_then(|t| live.threads.get(t).copied());
            match session {
                Some(session) => to(live, session, incoming),
                None => everyone(live, incoming),
            }
        }
        Incoming::ServerRequest { ref params, .. } => {
            // Answered exactly once: by its thread's runner, else by one runner (which
            // answers what it does not know with an error).
            let session = thread_of(params)
                .and_then(|t| live.threads.get(t).copied())
                .or_else(|| live.sessions.keys().next().copied());
            session.map(|s| to(live, s, incoming)).unwrap_or_default()
        }
        Incoming::Garbage { ref line, .. } => {
            tracing::warn!(codex.pid = live.process.pid(), line = %line.chars().take(200).collect::<String>(), "shared codex: garbage line skipped");
            Vec::new()
        }
    }
}

/// The thread a notification or server request is about.
fn thread_of(params: &Value) -> Option<&str> {
    params["threadId"]
        .as_str()
        .or_else(|| params["thread"]["id"].as_str())
}

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

    /// The other agents on a shared process (empty for its own).
    pub(crate) fn shared_with(&self) -> Vec<String> {
        match self {
            Codex::Own(_) => Vec::new(),
            Codex::Shared(session) => session.shared_with(),
        }
    }

    /// Stops its own process; leaves a shared one (stopping it when the last agent leaves).
    pub(crate) async fn stop(
        self,
        grace: super::process::Grace,
    ) -> Option<super::process::ProcessExit> {
        let process = match self {
            Codex::Own(process) => process,
            Codex::Shared(session) => session.detach()?,
        };
        Some(process.stop(grace).await)
    }
}
