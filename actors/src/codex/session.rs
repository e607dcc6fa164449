//! What passes between a codex process and the sessions attached to it: the events a
//! session hears ([`SessionEvent`]), how a process that ended is reported ([`Gone`]), and
//! the handshake the process makes once for all of them.

use std::sync::Arc;

use super::child::ExitStatus;
use super::jsonrpc::Incoming;

/// What a codex process tells one attached session.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// A message of its threads (or for everyone: rate limits, config warnings).
    Message(Incoming),
    /// The process is gone; nothing follows. The session attaches to the next one.
    Gone(Gone),
}

/// A process that ended under its sessions.
#[derive(Debug, Clone)]
pub struct Gone {
    /// Its slot: `process-<n>`.
    pub process: String,
    /// It died (crash, SIGKILL, killed as wedged) rather than being stopped on purpose.
    pub died: bool,
    /// How it ended, e.g. `codex killed by signal 9; stderr: …`.
    pub why: String,
    /// Its wait status, when the child was reaped.
    pub status: Option<ExitStatus>,
    /// The agents placed on it.
    pub agents: Vec<String>,
    /// This session raises the one alert for the death (the first one attached).
    pub report: bool,
}

/// Where a session's events go: a cast into its runner's mailbox (false once it is gone).
#[derive(Clone)]
pub struct SessionSink(Arc<dyn Fn(SessionEvent) -> bool + Send + Sync>);

impl SessionSink {
    /// A sink calling `f` for each event.
    pub fn new(f: impl Fn(SessionEvent) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Hands `event` over; false once nobody listens.
    pub fn send(&self, event: SessionEvent) -> bool {
        (self.0)(event)
    }
}

impl std::fmt::Debug for SessionSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSink")
    }
}

/// `clientInfo.name`: the originator codex reports to the model provider.
pub const CLIENT_NAME: &str = "codexd";

/// The `initialize` params the process sends once, for every session on it.
pub fn initialize_params() -> serde_json::Value {
    serde_json::json!({
        "clientInfo": {"name": CLIENT_NAME, "title": "codexd", "version": env!("CARGO_PKG_VERSION")},
        // Needed for `dynamicTools` (the agents' IRC tools) on `thread/start`.
        "capabilities": {"experimentalApi": true},
    })
}
