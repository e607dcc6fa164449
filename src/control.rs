//! The control socket: `codexd status|reset|fault|pause|resume|say|whisper|watch` talk to
//! the running daemon over a Unix socket (0600, owner-checked both ways) with one JSON
//! object per line.
//!
//! | request                                                             | answer `data`          |
//! |---------------------------------------------------------------------|------------------------|
//! | `{"cmd":"status"}`, `{"cmd":"status","nick":"spark-a"}`             | the tree (HostStatus); with `nick` that agent only, and the codex process it is on |
//! | `{"cmd":"reset","nick":"spark-a","child":"irc"}` (child optional)   | `null`                 |
//! | `{"cmd":"fault","nick":"spark-a","child":"irc","kind":"panic"}`     | `null`                 |
//! | `{"cmd":"pause","nick":"spark-a"}`, `{"cmd":"resume",…}`            | `null`                 |
//! | `{"cmd":"say","nick":"spark-a","target":"#dev","text":"hi"}`        | `{"warnings":[…]}`     |
//! | `{"cmd":"whisper","nick":"spark-a","kind":"CORRECTION","text":"…"}` | `null`                 |
//! | `{"cmd":"watch"}`, `{"cmd":"watch","nick":"spark-a"}`               | `{"agents":[…]}`, then a stream (below) |
//! | `{"cmd":"repo_cancel","nick":"spark-a","job":3}`                    | `{"result":"cancelling job 3: …"}` |
//!
//! Every answer is `{"id":…,"ok":true,"data":…}` or `{"id":…,"ok":false,"code":…,"error":…}`.
//! A malformed line gets an error answer and the connection stays open.
//!
//! `watch` is the one streaming request: after its answer, the connection carries one
//! audit record per line (docs/telemetry.md "Watching turns live") until the client
//! disconnects; a client too slow to keep up gets a `watch.skipped` line saying how many
//! records it missed. The server reads nothing more from that connection; it notices the
//! hang-up and drops the subscription.

mod client;
mod requests;
mod server;
mod watch;

use codexd_actors::audit::Audit;
use codexd_actors::host::Host;
use codexd_actors::socket::SocketDirectory;
use serde::{Deserialize, Serialize};

pub use client::{ClientError, Watching, request, watch};
pub use codexd_actors::socket::{BindError as SocketError, BoundSocket as ControlSocket};
pub use server::ControlFactory;

/// What a connection can reach.
#[derive(Debug, Clone)]
struct Peers {
    /// The Host (status, reset, fault, the agents there are).
    host: Host,
    /// The audit log's live tap.
    audit: Audit,
    /// Every agent's socket actor.
    sockets: SocketDirectory,
}

/// Longest request line accepted.
pub const MAX_LINE: usize = 1 << 20;

/// A request, tagged by `cmd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The whole tree's status, or one agent's.
    Status {
        /// Only this agent (and the codex process it is on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
    },
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
    /// Pause an agent (`manual`).
    Pause {
        /// The agent.
        nick: String,
    },
    /// Lift an agent's pause.
    Resume {
        /// The agent.
        nick: String,
    },
    /// Say something as the agent, through its sanitising send path.
    Say {
        /// The agent.
        nick: String,
        /// `#channel` or a nick.
        target: String,
        /// The text.
        text: String,
    },
    /// Whisper to the agent, as its overseer does.
    Whisper {
        /// The agent.
        nick: String,
        /// `CORRECTION` or `THINK_DEEPER`.
        kind: String,
        /// The text.
        text: String,
    },
    /// Stream the audit records of every agent, or of one, as they happen.
    Watch {
        /// Only this agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
    },
    /// Stop one of an agent's repository jobs.
    RepoCancel {
        /// The agent.
        nick: String,
        /// The job's id.
        job: u64,
    },
}

impl Request {
    /// The `cmd` (for spans and logs: never the text a request carries).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status { .. } => "status",
            Request::Reset { .. } => "reset",
            Request::Fault { .. } => "fault",
            Request::Pause { .. } => "pause",
            Request::Resume { .. } => "resume",
            Request::Say { .. } => "say",
            Request::Whisper { .. } => "whisper",
            Request::Watch { .. } => "watch",
            Request::RepoCancel { .. } => "repo_cancel",
        }
    }

    /// The agent it is about, if one.
    pub fn nick(&self) -> Option<&str> {
        match self {
            Request::Status { nick } | Request::Watch { nick } => nick.as_deref(),
            Request::Reset { nick, .. }
            | Request::Fault { nick, .. }
            | Request::Pause { nick }
            | Request::Resume { nick }
            | Request::Say { nick, .. }
            | Request::Whisper { nick, .. }
            | Request::RepoCancel { nick, .. } => Some(nick),
        }
    }
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
    /// The agent refused the request (not joined to the channel, a bad target, an unknown
    /// whisper kind, empty text); the error says why.
    Refused,
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
