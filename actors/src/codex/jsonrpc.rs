//! JSON-RPC 2.0 over JSON lines, as `codex app-server` speaks it on stdio
//! (reference/codex-app-server.md §2): one JSON object per `\n`-terminated line, **without**
//! the `"jsonrpc":"2.0"` member. The server never sends it; a client may, and codex ignores it.
//! codexd leaves it out too, like the driver the reference transcripts were recorded with.
//!
//! An incoming line is classified by its keys, never by order or position:
//!
//! | line                                     | [`Incoming`]                                     |
//! |------------------------------------------|--------------------------------------------------|
//! | not JSON, or not UTF-8                   | `Garbage` ([`Malformed::NotJson`])               |
//! | JSON, but not an object                  | `Garbage` ([`Malformed::NotAnObject`])           |
//! | `method` present but not a string        | `Garbage` ([`Malformed::BadMethod`])             |
//! | `id` present but not an integer/string   | `Garbage` ([`Malformed::BadId`])                 |
//! | `id` and `method`                        | `ServerRequest` (approvals and the like)         |
//! | `method` only                            | `Notification`                                   |
//! | `id` and `error`                         | `Response` with `Err` (wins over `result`)       |
//! | `id` and `result`                        | `Response` with `Ok` (`null` is a result)        |
//! | `id` alone                               | `Garbage` ([`Malformed::NoOutcome`])             |
//! | neither `id` nor `method`                | `Garbage` ([`Malformed::NoKind`])                |
//!
//! Absent `params` become `null`. Members codex adds (`emittedAtMs`, `trace`, `jsonrpc`) are
//! ignored. Server request ids live in their own space (0, 1, 2…) and may equal ours: they
//! are answered with [`Outgoing::Response`], never looked up in [`Outstanding`].

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};
use tokio::time::Instant;

/// codex's answer to almost every bad request (unknown method, bad params, not initialized).
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC's "method not found"; codexd's answer to a server request it does not handle.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// codex's ingress queue is full: retry with backoff (codex README).
pub const SERVER_OVERLOADED: i64 = -32001;

/// A request id: codex accepts integers and strings and echoes them back as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestId {
    /// An integer id (codexd's own ids, and codex's server request ids).
    Int(i64),
    /// A string id.
    Str(String),
}

impl RequestId {
    /// The id from a JSON value; `None` for anything but an integer or a string.
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => n.as_i64().map(Self::Int),
            Value::String(s) => Some(Self::Str(s.clone())),
            _ => None,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Self::Int(n) => Value::from(*n),
            Self::Str(s) => Value::from(s.as_str()),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// The code, e.g. [`INVALID_REQUEST`].
    pub code: i64,
    /// The message.
    pub message: String,
    /// Optional details.
    pub data: Option<Value>,
}

impl RpcError {
    /// Reads an `error` member leniently, so that a waiter is always answered: a missing
    /// `code` becomes 0 and a missing `message` the member's JSON text.
    fn from_value(value: &Value) -> Self {
        let code = value.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = match value.get("message").and_then(Value::as_str) {
            Some(message) => message.to_owned(),
            None => value.to_string(),
        };
        let data = value.get("data").cloned();
        Self {
            code,
            message,
            data,
        }
    }

    fn to_value(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), Value::from(self.code));
        error.insert("message".into(), Value::from(self.message.as_str()));
        if let Some(data) = &self.data {
            error.insert("data".into(), data.clone());
        }
        Value::Object(error)
    }
}

/// Why a line is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not JSON (or not UTF-8).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// `method` is not a string.
    #[error("method is not a string")]
    BadMethod,
    /// `id` is neither an integer nor a string.
    #[error("id is neither an integer nor a string")]
    BadId,
    /// An `id` without `method`, `result` or `error`.
    #[error("id without method, result or error")]
    NoOutcome,
    /// Neither `id` nor `method`.
    #[error("neither id nor method")]
    NoKind,
    /// Longer than the reader accepts (see the process's `max_line`); only its start is kept.
    #[error("line of {0} bytes is over the limit")]
    TooLong(usize),
}

/// One line from codex, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The answer to one of codexd's requests.
    Response {
        /// The request's id.
        id: RequestId,
        /// `result`, or `error`.
        outcome: Result<Value, RpcError>,
    },
    /// A notification (no answer expected).
    Notification {
        /// E.g. `turn/completed`.
        method: String,
        /// `params`, or `null`.
        params: Value,
    },
    /// A request codex makes of codexd; it must be answered, if only with an error.
    ServerRequest {
        /// codex's id for it (its own id space).
        id: RequestId,
        /// E.g. `item/commandExecution/requestApproval`.
        method: String,
        /// `params`, or `null`.
        params: Value,
    },
    /// Not a message: logged and skipped; the session goes on.
    Garbage {
        /// The line (lossy UTF-8).
        line: String,
        /// What is wrong with it.
        error: Malformed,
    },
}

/// Classifies one line (without its `\n`); never panics. See the module table.
pub fn classify(line: &[u8]) -> Incoming {
    let garbage = |error| Incoming::Garbage {
        line: String::from_utf8_lossy(line).into_owned(),
        error,
    };
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => return garbage(Malformed::NotJson(error.to_string())),
    };
    let Value::Object(mut object) = value else {
        return garbage(Malformed::NotAnObject);
    };
    let method = match object.remove("method") {
        None => None,
        Some(Value::String(method)) => Some(method),
        Some(_) => return garbage(Malformed::BadMethod),
    };
    let id = match object.get("id") {
        None => None,
        Some(value) => match RequestId::from_value(value) {
            Some(id) => Some(id),
            None => return garbage(Malformed::BadId),
        },
    };
    let params = object.remove("params").unwrap_or(Value::Null);
    match (id, method) {
        (Some(id), Some(method)) => Incoming::ServerRequest { id, method, params },
        (None, Some(method)) => Incoming::Notification { method, params },
        (Some(id), None) => {
            if let Some(error) = object.get("error") {
                let outcome = Err(RpcError::from_value(error));
                Incoming::Response { id, outcome }
            } else if let Some(result) = object.remove("result") {
                Incoming::Response {
                    id,
                    outcome: Ok(result),
                }
            } else {
                garbage(Malformed::NoOutcome)
            }
        }
        (None, None) => garbage(Malformed::NoKind),
    }
}

/// A message codexd sends to codex.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// A request; its answer is a [`Incoming::Response`] with the same id.
    Request {
        /// From [`Outstanding::start`].
        id: RequestId,
        /// E.g. `turn/start`.
        method: String,
        /// Left out of the line when `None`.
        params: Option<Value>,
    },
    /// A notification, e.g. `initialized`.
    Notification {
        /// The method.
        method: String,
        /// Left out of the line when `None`.
        params: Option<Value>,
    },
    /// The answer to a [`Incoming::ServerRequest`].
    Response {
        /// The server request's id, as codex sent it.
        id: RequestId,
        /// `result`, or `error`.
        outcome: Result<Value, RpcError>,
    },
}

impl Outgoing {
    /// A notification.
    pub fn notification(method: &str, params: Option<Value>) -> Self {
        Self::Notification {
            method: method.to_owned(),
            params,
        }
    }

    /// The error reply to a server request codexd does not handle, so that nothing in
    /// codex waits for it (an error reply fails the item and the turn goes on, §7).
    pub fn method_not_found(id: RequestId, method: &str) -> Self {
        Self::Response {
            id,
            outcome: Err(RpcError {
                code: METHOD_NOT_FOUND,
                message: format!("unsupported by this client: {method}"),
                data: None,
            }),
        }
    }

    /// The request's or response's id.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            Self::Request { id, .. } | Self::Response { id, .. } => Some(id),
            Self::Notification { .. } => None,
        }
    }

    /// One line of compact JSON, without the `\n`. JSON escapes control characters inside
    /// strings, so the line never contains a raw newline.
    pub fn encode(&self) -> String {
        let mut object = Map::new();
        match self {
            Self::Request { id, method, params } => {
                object.insert("id".into(), id.to_value());
                object.insert("method".into(), Value::from(method.as_str()));
                if let Some(params) = params {
                    object.insert("params".into(), params.clone());
                }
            }
            Self::Notification { method, params } => {
                object.insert("method".into(), Value::from(method.as_str()));
                if let Some(params) = params {
                    object.insert("params".into(), params.clone());
                }
            }
            Self::Response { id, outcome } => {
                object.insert("id".into(), id.to_value());
                match outcome {
                    Ok(result) => object.insert("result".into(), result.clone()),
                    Err(error) => object.insert("error".into(), error.to_value()),
                };
            }
        }
        Value::Object(object).to_string()
    }
}

/// A request codexd sent and is waiting on.
#[derive(Debug)]
pub struct Pending<W> {
    /// The request's method, for logs.
    pub method: String,
    /// When to give up on it ([`Outstanding::expire`]).
    pub deadline: Instant,
    /// Whoever wants the answer: a reply port, or what to do next.
    pub waiter: W,
}

/// codexd's requests in flight, by id. Ids are integers from 1 up, never reused within
/// one map (one map per codex process).
///
/// | event                          | call                 | the waiter gets          |
/// |--------------------------------|----------------------|--------------------------|
/// | sending a request              | [`Self::start`]      | —                        |
/// | its `Response` arrives         | [`Self::resolve`]    | the outcome              |
/// | the send failed                | [`Self::resolve`]    | the send error           |
/// | a timer tick                   | [`Self::expire`]     | a timeout                |
/// | the process exited             | [`Self::drain`]      | "process exited"         |
#[derive(Debug)]
pub struct Outstanding<W> {
    next: i64,
    pending: HashMap<i64, Pending<W>>,
}

impl<W> Default for Outstanding<W> {
    fn default() -> Self {
        Self {
            next: 1,
            pending: HashMap::new(),
        }
    }
}

impl<W> Outstanding<W> {
    /// An empty map; the first id is 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a request under a fresh id and returns it, ready to send.
    pub fn start(
        &mut self,
        method: &str,
        params: Option<Value>,
        deadline: Instant,
        waiter: W,
    ) -> Outgoing {
        let id = self.next;
        self.next += 1;
        let pending = Pending {
            method: method.to_owned(),
            deadline,
            waiter,
        };
        self.pending.insert(id, pending);
        Outgoing::Request {
            id: RequestId::Int(id),
            method: method.to_owned(),
            params,
        }
    }

    /// Takes the request a response answers; `None` for an id not (or no longer) pending.
    pub fn resolve(&mut self, id: &RequestId) -> Option<Pending<W>> {
        match id {
            RequestId::Int(n) => self.pending.remove(n),
            RequestId::Str(_) => None,
        }
    }

    /// Takes every request whose deadline is at or before `now`, oldest first.
    pub fn expire(&mut self, now: Instant) -> Vec<(RequestId, Pending<W>)> {
        let mut due: Vec<i64> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        due.sort_unstable();
        self.take(due)
    }

    /// Takes every request, oldest first (the process is gone).
    pub fn drain(&mut self) -> Vec<(RequestId, Pending<W>)> {
        let mut all: Vec<i64> = self.pending.keys().copied().collect();
        all.sort_unstable();
        self.take(all)
    }

    /// The earliest deadline, to arm one timer for all requests.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|pending| pending.deadline).min()
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// No request in flight.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn take(&mut self, ids: Vec<i64>) -> Vec<(RequestId, Pending<W>)> {
        ids.into_iter()
            .filter_map(|id| Some((RequestId::Int(id), self.pending.remove(&id)?)))
            .collect()
    }
}

#[cfg(test)]
#[path = "jsonrpc_tests.rs"]
mod tests;
