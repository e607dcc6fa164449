//! The `codex` service: every `codex app-server` process of the daemon, and nothing about
//! agents, turns, the journal or IRC (DESIGN.md "Codex processes: a service under the
//! Host"). Each process is an actor, [`CodexProcess`], a child `process-<n>` of the
//! `codex` [`Supervisor`](crate::supervisor::Supervisor) under the Host, restarted and
//! circuit-broken like every other child; runners attach to their [`Slot`] and keep their
//! conversations across its restarts.
//!
//! | part                                        | module      |
//! |---------------------------------------------|-------------|
//! | the OS process: spawn, pipes, stop, reap    | [`child`], `stdio` |
//! | JSON-RPC lines                              | [`jsonrpc`] |
//! | the process actor: sessions, routing by id and `threadId`, the request [`window`] | [`process`], `traffic` |
//! | placement of agents on slots, the service   | [`pool`]    |
//!
//! A runner that attaches gets every message of its threads as a [`SessionEvent`]; when the
//! process is gone (crashed, killed as wedged, stopped) each session hears [`Gone`] once,
//! exactly one of them with `report` set (it raises the one alert), and the supervisor
//! starts the next process at once. [`Slot::watch`] tells the runners when it is up.

pub mod child;
pub mod jsonrpc;
pub mod pool;
pub mod process;
mod slot;
mod stdio;
mod traffic;
pub mod window;

use std::sync::Arc;

pub use child::{CodexCommand, ExitStatus, Grace};
pub use pool::CodexPool;
pub use process::{CodexProcess, CodexProcessMessage};
pub use slot::{Attached, Slot};
pub use window::REQUEST_WINDOW;

use jsonrpc::Incoming;

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

/// The `initialize` params the process sends once, for every session on it.
pub fn initialize_params() -> serde_json::Value {
    serde_json::json!({
        "clientInfo": {"name": "codexd", "title": "codexd", "version": env!("CARGO_PKG_VERSION")},
        "capabilities": {"experimentalApi": false},
    })
}
