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
//! | what a process tells its sessions; a runner's session on one process | `session`, `attached` |
//! | a runner's place: the process of the moment, its comings and goings | `slot` |
//! | placement of agents on slots, the service   | [`pool`]    |
//!
//! A runner that attaches gets every message of its threads as a [`SessionEvent`]; when the
//! process is gone (crashed, killed as wedged, stopped) each session hears [`Gone`] once,
//! exactly one of them with `report` set (it raises the one alert), and the supervisor
//! starts the next process at once. [`Slot::watch`] tells the runners when it is up.

mod attached;
pub mod child;
pub mod jsonrpc;
pub mod pool;
pub mod process;
mod session;
mod slot;
mod stdio;
mod traffic;
pub mod window;

pub use attached::Attached;
pub use child::{CodexCommand, ExitStatus, Grace};
pub use pool::CodexPool;
pub use process::{CodexProcess, CodexProcessMessage};
pub use session::{CLIENT_NAME, Gone, SessionEvent, SessionSink, initialize_params};
pub use slot::Slot;
pub(crate) use stdio::stderr_summary;
pub use window::REQUEST_WINDOW;
