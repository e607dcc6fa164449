//! The control socket: `codexd status|reset|fault` talk to the running daemon over a Unix
//! socket (0600, owner-checked both ways) with one JSON object per line.
//!
//! | request                                                        | answer `data`          |
//! |----------------------------------------------------------------|------------------------|
//! | `{"cmd":"status"}`                                             | the tree (HostStatus)  |
//! | `{"cmd":"reset","nick":"spark-a","child":"irc"}` (child optional) | `null`              |
//! | `{"cmd":"fault","nick":"spark-a","child":"irc","kind":"panic"}` | `null`                 |
//!
//! Every answer is `{"id":…,"ok":true,"data":…}` or `{"id":…,"ok":false,"code":…,"error":…}`.
//! A malformed line gets an error answer and the connection stays open.

mod client;
mod server;

use serde::{Deserialize, Serialize};

pub use client::{ClientError, request};
pub use codexd_actors::socket::{BindError as SocketError, BoundSocket as ControlSocket};
pub use server::ControlFactory;

/// Longest request line accepted.
pub const MAX_LINE: usize = 1 << 20;

/// A request, tagged by `cmd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The whole tree's status.
    Status,
    /// Close a circuit (one child, or the agent and all its children).
    Reset {
        /// The agent.
        nick: String,
        /// The child; absent resets the agent and every child.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        child: Option<String>,
    },
    /// Inject a fault into one child.
    Fault {
        /// The agent.
        nick: String,
        /// The child.
        child: String,
        /// `panic`, `error`, `hang` or `hang:<seconds>`.
        kind: String,
    },
}

/// Why the daemon refused a request; the CLI maps codes to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line was not a valid request.
    BadRequest,
    /// No such agent or child.
    NoSuchChild,
    /// The child exists but is not running.
    NotRunning,
    /// Unknown fault kind.
    UnknownFault,
    /// The tree did not answer in time.
    Unresponsive,
}

/// One answer line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's `id`, echoed (null when it had none).
    #[serde(default)]
    pub id: serde_json::Value,
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result (status tree; null for reset and fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// Human-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    fn success(id: serde_json::Value, data: serde_json::Value) -> Self {
        Self {
            id,
            ok: true,
            data: Some(data),
            code: None,
            error: None,
        }
    }

    fn failure(id: serde_json::Value, code: ErrorCode, error: impl Into<String>) -> Self {
        Self {
            id,
            ok: false,
            data: None,
            code: Some(code),
            error: Some(error.into()),
        }
    }
}
