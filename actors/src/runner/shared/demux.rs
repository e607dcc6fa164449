//! One shared process's traffic: runner requests through the [`Window`] under process-wide
//! ids, codex's stdout routed back by id and `threadId`, `-32001` answers retried, and the
//! process's exit counted by its slot's circuit breaker.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use tokio::time::Instant;

use super::window::{OVERLOADED, Window, overload_delay};
use super::{Sink, Slot, SlotRef};
use crate::events::Transition;
use crate::restart::Decision;
use crate::runner::jsonrpc::{Incoming, Outgoing, RequestId};
use crate::runner::process::{CodexProcess, ProcessEvent, SendError};
use crate::runner::session;

/// A running process of a slot and everything in flight on it.
pub(super) struct Live {
    pub(super) process: CodexProcess,
    pub(super) generation: u64,
    pub(super) started: Instant,
    pub(super) sessions: BTreeMap<u64, Sink>,
    /// Process-wide request id → who asked.
    pub(super) requests: HashMap<i64, Routed>,
    pub(super) window: Window,
    /// Thread id → session.
    pub(super) threads: HashMap<String, u64>,
    /// Turn id → session, from `turn/start` answers until `turn/completed`.
    pub(super) turns: HashMap<String, u64>,
    pub(super) init: Init,
    pub(super) next_id: i64,
    /// `-32001` answers received.
    pub(super) overloaded: u64,
}

/// A runner's request on its way through the process.
pub(super) struct Routed {
    session: u64,
    id: RequestId,
    method: String,
    params: Option<Value>,
    /// `-32001` answers it got so far.
    overloaded: u32,
}

pub(super) enum Init {
    /// The pool's own `initialize` (this id) is unanswered; these runner requests wait.
    Waiting {
        id: i64,
        queued: Vec<(u64, RequestId)>,
    },
    /// Its result, given to every runner's `initialize`.
    Done(Value),
}

impl Live {
    /// A process just spawned, with the pool's `initialize` written.
    pub(super) fn new(process: CodexProcess, generation: u64, window: usize) -> Self {
        let mut live = Self {
            process,
            generation,
            started: Instant::now(),
            sessions: BTreeMap::new(),
            requests: HashMap::new(),
            window: Window::new(window),
            threads: HashMap::new(),
            turns: HashMap::new(),
            init: Init::Done(Value::Null),
            next_id: 1,
            overloaded: 0,
        };
        let id = live.fresh_id();
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
        live
    }

    fn fresh_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A runner's request: written now if the window has room, else queued. The error is
    /// the process's stdin being gone.
    pub(super) fn request(
        &mut self,
        session: u64,
        id: &RequestId,
        method: &str,
        params: &Option<Value>,
    ) -> Result<(), SendError> {
        let global = self.fresh_id();
        self.requests.insert(
            global,
            Routed {
                session,
                id: id.clone(),
                method: method.to_owned(),
                params: params.clone(),
                overloaded: 0,
            },
        );
        if !self.window.offer(global) {
            return Ok(());
        }
        self.write(global).inspect_err(|_| {
            self.requests.remove(&global);
            self.done(global);
        })
    }

    /// Writes request `global` (its place in the window is taken).
    fn write(&mut self, global: i64) -> Result<(), SendError> {
        let Some(routed) = self.requests.get(&global) else {
            return Ok(());
        };
        let line = Outgoing::Request {
            id: RequestId::Int(global),
            method: routed.method.clone(),
            params: routed.params.clone(),
        };
        self.process.send(&line)
    }

    /// `global` left the window: the next waiting request goes out.
    fn done(&mut self, global: i64) {
        if let Some(next) = self.window.done(global) {
            if let Err(error) = self.write(next) {
                tracing::debug!(error = %error, "shared codex: queued request not written");
            }
        }
    }

    /// Removes `session` and everything of it.
    pub(super) fn remove(&mut self, session: u64) {
        self.sessions.remove(&session);
        self.threads.retain(|_, s| *s != session);
        self.turns.retain(|_, s| *s != session);
        let mine: Vec<i64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.session == session)
            .map(|(global, _)| *global)
            .collect();
        for global in mine {
            self.requests.remove(&global);
            self.done(global);
        }
    }

    /// Offers again a request that was answered `-32001`, once its delay is over.
    fn retry(&mut self, global: i64) {
        if self.requests.contains_key(&global) && self.window.offer(global) {
            if let Err(error) = self.write(global) {
                tracing::debug!(error = %error, "shared codex: retried request not written");
            }
        }
    }
}

/// Routes one event of generation `generation` of `slot`'s process (module table).
pub(super) fn demux(slot: &SlotRef, generation: u64, event: ProcessEvent) {
    let mut slots = slot.pool.lock();
    let entry = &mut slots[slot.index];
    if entry
        .live
        .as_ref()
        .is_none_or(|l| l.generation != generation)
    {
        return;
    }
    let mut transitions = entry.settle(Instant::now());
    let Some(live) = entry.live.as_mut() else {
        return;
    };
    let incoming = match event {
        ProcessEvent::Exited(exit) => {
            tracing::warn!(codex.pid = live.process.pid(), exit = %exit, agents = ?entry.agents, "shared codex exited; every agent on it restarts");
            let sinks: Vec<Sink> = live.sessions.values().cloned().collect();
            entry.live = None;
            transitions.push(Transition::Failed {
                error: format!("codex {exit}"),
            });
            if let Decision::Open { cooldown, failures } =
                entry.breaker.on_failure(Instant::now(), fastrand::f64())
            {
                transitions.push(Transition::CircuitOpened { cooldown, failures });
            }
            let name = entry.name(slot.index);
            drop(slots);
            Slot::emit(&name, transitions);
            for sink in sinks {
                sink(ProcessEvent::Exited(exit.clone()));
            }
            return;
        }
        ProcessEvent::Message(incoming) => incoming,
    };
    let deliveries = route(slot, live, incoming);
    let name = entry.name(slot.index);
    drop(slots);
    Slot::emit(&name, transitions);
    for (sink, incoming) in deliveries {
        sink(ProcessEvent::Message(incoming));
    }
}

/// After its delay, offers again request `global` of generation `generation`.
fn schedule_retry(slot: &SlotRef, generation: u64, global: i64, delay: std::time::Duration) {
    let slot = slot.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut slots = slot.pool.lock();
        if let Some(live) = slots[slot.index]
            .live
            .as_mut()
            .filter(|l| l.generation == generation)
        {
            live.retry(global);
        }
    });
}

/// Who gets `incoming`, rewritten for them.
fn route(slot: &SlotRef, live: &mut Live, incoming: Incoming) -> Vec<(Sink, Incoming)> {
    let to = |live: &Live, session: u64, incoming: Incoming| {
        live.sessions
            .get(&session)
            .map(|sink| vec![(sink.clone(), incoming)])
            .unwrap_or_default()
    };
    let everyone = |live: &Live, incoming: Incoming| {
        live.sessions
            .values()
            .map(|sink| (sink.clone(), incoming.clone()))
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
            if !live.requests.contains_key(&global) {
                return Vec::new();
            }
            live.done(global);
            if let Err(error) = &outcome {
                if error.code == OVERLOADED {
                    live.overloaded += 1;
                    let routed = live.requests.get_mut(&global).expect("checked above");
                    routed.overloaded += 1;
                    if let Some(delay) = overload_delay(routed.overloaded) {
                        tracing::debug!(codex.pid = live.process.pid(), method = %routed.method, attempt = routed.overloaded, delay_ms = delay.as_millis() as u64, "shared codex overloaded; retrying the request");
                        schedule_retry(slot, live.generation, global, delay);
                        return Vec::new();
                    }
                    tracing::warn!(codex.pid = live.process.pid(), method = %routed.method, "shared codex still overloaded; the request fails");
                }
            }
            let Some(routed) = live.requests.remove(&global) else {
                return Vec::new();
            };
            if let Ok(result) = &outcome {
                match routed.method.as_str() {
                    "thread/start" | "thread/resume" => {
                        if let Some(thread) = result["thread"]["id"].as_str() {
                            live.threads.insert(thread.to_owned(), routed.session);
                        }
                    }
                    "turn/start" => {
                        if let Some(turn) = session::turn_id(result) {
                            live.turns.insert(turn, routed.session);
                        }
                    }
                    _ => {}
                }
            }
            let answer = Incoming::Response {
                id: routed.id,
                outcome,
            };
            to(live, routed.session, answer)
        }
        Incoming::Notification {
            ref method,
            ref params,
        } => {
            if method == "turn/completed" {
                if let Some(turn) = session::turn_id(params) {
                    live.turns.remove(&turn);
                }
            }
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
