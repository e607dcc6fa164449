//! One process's traffic: its sessions' requests through the [`Window`] under process-wide
//! ids, codex's stdout routed back by id and `threadId`, and `-32001` answers retried. Pure
//! bookkeeping over the child's stdin; the [`CodexProcess`](super::CodexProcess) actor
//! drives it.
//!
//! | from a session           | what goes to codex                                          |
//! |--------------------------|-------------------------------------------------------------|
//! | request (any but below)  | the same request under a process-wide id, through the [`Window`] (at most its size unanswered, the rest wait in order; `-32001 "Server overloaded"` is retried with backoff); the answer goes back under the session's id |
//! | `initialize` request     | nothing: answered from the process's own handshake (done once, when it starts) |
//! | `initialized`            | nothing (sent once by the process)                           |
//! | answer to a server request | as is (server request ids are the process's own)          |
//!
//! | from codex                          | goes to                                        |
//! |-------------------------------------|------------------------------------------------|
//! | answer                              | the session that asked                         |
//! | notification / server request with a `threadId` (or `thread.id`) | the session whose thread it is |
//! | a server request of no known thread | one session (which answers what it does not know with an error) |
//! | anything else (rate limits, config warnings, a thread not known yet) | every session (each ignores other threads) |

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;

use super::child::{CodexChild, SendError};
use super::jsonrpc::{Incoming, Outgoing, RequestId};
use super::session::{SessionEvent, SessionSink};
use super::window::{OVERLOADED, Window, overload_delay};

/// A running process's sessions and everything in flight on it.
pub(super) struct Traffic {
    pub(super) child: CodexChild,
    sessions: BTreeMap<u64, SessionSink>,
    /// Process-wide request id → who asked.
    requests: HashMap<i64, Routed>,
    window: Window,
    /// Thread id → session.
    threads: HashMap<String, u64>,
    /// Turn id → session, from `turn/start` answers until `turn/completed`.
    turns: HashMap<String, u64>,
    init: Init,
    next_id: i64,
    /// `-32001` answers received.
    overloaded: u64,
}

/// A session's request on its way through the process.
struct Routed {
    session: u64,
    id: RequestId,
    method: String,
    params: Option<Value>,
    /// `-32001` answers it got so far.
    overloaded: u32,
}

enum Init {
    /// The process's own `initialize` (this id) is unanswered; these session requests wait.
    Waiting {
        id: i64,
        queued: Vec<(u64, RequestId)>,
    },
    /// Its result, given to every session's `initialize`.
    Done(Value),
}

/// Messages to hand to sessions.
pub(super) type Deliveries = Vec<(SessionSink, SessionEvent)>;

/// What [`Traffic::route`] leaves to do: deliveries, and a request to offer again later.
#[derive(Default)]
pub(super) struct Routing {
    pub(super) deliveries: Deliveries,
    pub(super) retry: Option<(i64, Duration)>,
}

/// The counts `codexd status` shows for a process.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(super) struct Counts {
    /// Sessions attached now.
    pub(super) attached: usize,
    /// Codex threads routed to them.
    pub(super) threads: usize,
    /// Turns started and not completed.
    pub(super) turns_in_flight: usize,
    /// Requests written and unanswered.
    pub(super) requests_in_flight: usize,
    /// Requests waiting for a place in the window.
    pub(super) requests_waiting: usize,
    /// `-32001 "Server overloaded"` answers (each retried).
    pub(super) overloaded: u64,
}

impl Traffic {
    /// A process just spawned; writes its `initialize`.
    pub(super) fn new(child: CodexChild, window: usize) -> Self {
        let mut traffic = Self {
            child,
            sessions: BTreeMap::new(),
            requests: HashMap::new(),
            window: Window::new(window),
            threads: HashMap::new(),
            turns: HashMap::new(),
            init: Init::Done(Value::Null),
            next_id: 1,
            overloaded: 0,
        };
        let id = traffic.fresh_id();
        traffic.init = Init::Waiting {
            id,
            queued: Vec::new(),
        };
        let line = Outgoing::Request {
            id: RequestId::Int(id),
            method: "initialize".to_owned(),
            params: Some(super::session::initialize_params()),
        };
        if let Err(error) = traffic.child.send(&line) {
            tracing::warn!(codex.pid = traffic.child.pid(), error = %error, "codex: initialize not sent");
        }
        traffic
    }

    fn fresh_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The counts for status.
    pub(super) fn counts(&self) -> Counts {
        Counts {
            attached: self.sessions.len(),
            threads: self.threads.len(),
            turns_in_flight: self.turns.len(),
            requests_in_flight: self.window.out(),
            requests_waiting: self.window.waiting(),
            overloaded: self.overloaded,
        }
    }

    /// A new session.
    pub(super) fn attach(&mut self, session: u64, sink: SessionSink) {
        self.sessions.insert(session, sink);
    }

    /// Every session, in attach order, removed.
    pub(super) fn take_sessions(&mut self) -> Vec<SessionSink> {
        std::mem::take(&mut self.sessions).into_values().collect()
    }

    /// One of `session`'s messages (the module table); what it answers at once.
    pub(super) fn send(
        &mut self,
        session: u64,
        message: Outgoing,
    ) -> Result<Deliveries, SendError> {
        match message {
            Outgoing::Request { id, method, .. } if method == "initialize" => {
                match &mut self.init {
                    Init::Done(result) => {
                        let answer = Incoming::Response {
                            id,
                            outcome: Ok(result.clone()),
                        };
                        Ok(self.to(session, answer))
                    }
                    Init::Waiting { queued, .. } => {
                        queued.push((session, id));
                        Ok(Vec::new())
                    }
                }
            }
            Outgoing::Request { id, method, params } => {
                self.request(session, id, method, params)?;
                Ok(Vec::new())
            }
            Outgoing::Notification { method, .. } if method == "initialized" => Ok(Vec::new()),
            other => self.child.send(&other).map(|()| Vec::new()),
        }
    }

    /// A session's request: written now if the window has room, else queued.
    fn request(
        &mut self,
        session: u64,
        id: RequestId,
        method: String,
        params: Option<Value>,
    ) -> Result<(), SendError> {
        let global = self.fresh_id();
        self.requests.insert(
            global,
            Routed {
                session,
                id,
                method,
                params,
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
        self.child.send(&line)
    }

    /// `global` left the window: the next waiting request goes out.
    fn done(&mut self, global: i64) {
        if let Some(next) = self.window.done(global) {
            if let Err(error) = self.write(next) {
                tracing::debug!(error = %error, "codex: queued request not written");
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
    pub(super) fn retry(&mut self, global: i64) {
        if self.requests.contains_key(&global) && self.window.offer(global) {
            if let Err(error) = self.write(global) {
                tracing::debug!(error = %error, "codex: retried request not written");
            }
        }
    }

    fn to(&self, session: u64, incoming: Incoming) -> Deliveries {
        self.sessions
            .get(&session)
            .map(|sink| vec![(sink.clone(), SessionEvent::Message(incoming))])
            .unwrap_or_default()
    }

    fn everyone(&self, incoming: Incoming) -> Deliveries {
        self.sessions
            .values()
            .map(|sink| (sink.clone(), SessionEvent::Message(incoming.clone())))
            .collect()
    }

    /// Who gets `incoming`, rewritten for them (the module table).
    pub(super) fn route(&mut self, incoming: Incoming) -> Routing {
        match incoming {
            Incoming::Response { id, outcome } => self.on_response(id, outcome),
            Incoming::Notification {
                ref method,
                ref params,
            } => {
                if method == "turn/completed" {
                    if let Some(turn) = turn_id(params) {
                        self.turns.remove(&turn);
                    }
                }
                let session = thread_of(params).and_then(|t| self.threads.get(t).copied());
                let deliveries = match session {
                    Some(session) => self.to(session, incoming),
                    None => self.everyone(incoming),
                };
                Routing {
                    deliveries,
                    retry: None,
                }
            }
            Incoming::ServerRequest { ref params, .. } => {
                // Answered exactly once: by its thread's session, else by one session.
                let session = thread_of(params)
                    .and_then(|t| self.threads.get(t).copied())
                    .or_else(|| self.sessions.keys().next().copied());
                Routing {
                    deliveries: session.map(|s| self.to(s, incoming)).unwrap_or_default(),
                    retry: None,
                }
            }
            Incoming::Garbage {
                ref line,
                ref error,
            } => {
                let shown: String = line.chars().take(200).collect();
                tracing::warn!(codex.pid = self.child.pid(), error = %error, line = %shown, bytes = line.len(), "codex wrote a line that is not a message; skipped");
                Routing::default()
            }
        }
    }

    fn on_response(
        &mut self,
        id: RequestId,
        outcome: Result<Value, super::jsonrpc::RpcError>,
    ) -> Routing {
        let RequestId::Int(global) = id else {
            return Routing::default();
        };
        if let Init::Waiting { id: init, queued } = &mut self.init {
            if *init == global {
                let queued = std::mem::take(queued);
                let result = outcome.unwrap_or(Value::Null);
                self.init = Init::Done(result.clone());
                let initialized = Outgoing::Notification {
                    method: "initialized".to_owned(),
                    params: None,
                };
                let _ = self.child.send(&initialized);
                let deliveries = queued
                    .into_iter()
                    .flat_map(|(session, id)| {
                        let answer = Incoming::Response {
                            id,
                            outcome: Ok(result.clone()),
                        };
                        self.to(session, answer)
                    })
                    .collect();
                return Routing {
                    deliveries,
                    retry: None,
                };
            }
        }
        if !self.requests.contains_key(&global) {
            return Routing::default();
        }
        self.done(global);
        if let Err(error) = &outcome {
            if error.code == OVERLOADED {
                self.overloaded += 1;
                let pid = self.child.pid();
                let routed = self.requests.get_mut(&global).expect("checked above");
                routed.overloaded += 1;
                if let Some(delay) = overload_delay(routed.overloaded) {
                    tracing::debug!(codex.pid = pid, method = %routed.method, attempt = routed.overloaded, delay_ms = delay.as_millis() as u64, "codex overloaded; retrying the request");
                    return Routing {
                        deliveries: Vec::new(),
                        retry: Some((global, delay)),
                    };
                }
                tracing::warn!(codex.pid = pid, method = %routed.method, "codex still overloaded; the request fails");
            }
        }
        let Some(routed) = self.requests.remove(&global) else {
            return Routing::default();
        };
        if let Ok(result) = &outcome {
            match routed.method.as_str() {
                "thread/start" | "thread/resume" => {
                    if let Some(thread) = result["thread"]["id"].as_str() {
                        self.threads.insert(thread.to_owned(), routed.session);
                    }
                }
                "turn/start" => {
                    if let Some(turn) = turn_id(result) {
                        self.turns.insert(turn, routed.session);
                    }
                }
                _ => {}
            }
        }
        let answer = Incoming::Response {
            id: routed.id,
            outcome,
        };
        Routing {
            deliveries: self.to(routed.session, answer),
            retry: None,
        }
    }
}

/// The thread a notification or server request is about.
fn thread_of(params: &Value) -> Option<&str> {
    params["threadId"]
        .as_str()
        .or_else(|| params["thread"]["id"].as_str())
}

/// The turn id in a `turn/start` result or a `turn/completed` notification.
fn turn_id(value: &Value) -> Option<String> {
    value
        .pointer("/turn/id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}
