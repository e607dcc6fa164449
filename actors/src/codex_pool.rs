//! The `codex` service under the Host: `codexd status` shows every shared codex process
//! (pid, the agents placed on it, runners attached, threads, turns and requests in flight,
//! starts, restarts, circuit), and `codexd reset codex process-<n>` closes a process's
//! circuit. The processes themselves belong to the [`CodexPool`]: each is started by the
//! first runner that attaches and restarted when a runner of it restarts, as long as its
//! circuit lets it (see [`crate::runner::shared`]).
//!
//! | request                          | answer                                        |
//! |----------------------------------|-----------------------------------------------|
//! | status                           | `agents_per_process`, `request_window`, `processes` |
//! | reset, path `[process-<n>]`      | that slot's circuit closed                    |
//! | reset, path `[other]`            | no such child (the known names listed)        |

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};

use crate::child::{ChildFactory, ChildHandle, ControlError, ControlMsg, Report, spawn_linked};
use crate::fault;
use crate::runner::shared::CodexPool;

/// The `codex` service actor.
pub struct CodexService;

/// Its messages: supervisor and operator requests only.
#[derive(Debug)]
pub enum CodexServiceMessage {
    /// Status (the pool's slots), ping and faults.
    Control(ControlMsg),
}

impl From<ControlMsg> for CodexServiceMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// Starts the service for `pool`.
pub struct CodexServiceFactory {
    pool: CodexPool,
}

impl CodexServiceFactory {
    /// The service reporting `pool`.
    pub fn new(pool: CodexPool) -> Self {
        Self { pool }
    }
}

impl ChildFactory for CodexServiceFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        spawn_linked(CodexService, self.pool.clone(), supervisor)
    }
}

impl Actor for CodexService {
    type Msg = CodexServiceMessage;
    type State = CodexPool;
    type Arguments = CodexPool;

    async fn pre_start(
        &self,
        _myself: ActorRef<CodexServiceMessage>,
        pool: CodexPool,
    ) -> Result<CodexPool, ActorProcessingErr> {
        Ok(pool)
    }

    async fn handle(
        &self,
        _myself: ActorRef<CodexServiceMessage>,
        message: CodexServiceMessage,
        pool: &mut CodexPool,
    ) -> Result<(), ActorProcessingErr> {
        let CodexServiceMessage::Control(control) = message;
        match control {
            ControlMsg::Status { reply, .. } => {
                let detail = serde_json::json!({
                    "agents_per_process": pool.per_process(),
                    "request_window": pool.window(),
                    "processes": pool.status(),
                });
                let _ = reply.send(Report::leaf(&detail));
                Ok(())
            }
            ControlMsg::Reset { path, reply, .. } if !path.is_empty() => {
                let result = match path.as_slice() {
                    [name] => pool.reset(Some(name)).map_err(|_| no_such(pool, name)),
                    _ => Err(no_such(pool, &path.join("/"))),
                };
                let _ = reply.send(result);
                Ok(())
            }
            other => fault::handle_leaf(other, "codex").await,
        }
    }
}

/// The error for a reset of an unknown slot, listing the known ones.
fn no_such(pool: &CodexPool, name: &str) -> ControlError {
    let known: Vec<String> = pool.status().into_iter().map(|s| s.name).collect();
    ControlError::NoSuchChild {
        name: name.to_owned(),
        known: known.join(", "),
    }
}
