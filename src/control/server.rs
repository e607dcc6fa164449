//! The control actor: a Host service that accepts connections on the bound socket and
//! turns each request line into a typed request to the Host. Accepting and reading happen
//! in tasks owned by the actor's state, so the mailbox always stays responsive and a
//! restart (or stop) aborts them.

use std::sync::Arc;
use std::time::Duration;

use codexd_actors::child::{
    ChildFactory, ChildHandle, ControlError, ControlMsg, FaultKind, spawn_linked,
};
use codexd_actors::fault;
use codexd_actors::host::{Host, HostError};
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};

use super::{ErrorCode, MAX_LINE, Request, Response};
use codexd_actors::socket::own_uid;

/// How long `fault <nick> <child> hang` hangs when no duration is given.
pub(super) const DEFAULT_HANG: Duration = Duration::from_secs(30);

/// Starts the control actor on a socket bound by [`super::ControlSocket`].
pub struct ControlFactory {
    listener: Arc<UnixListener>,
}

impl ControlFactory {
    /// A factory serving `listener`.
    pub fn new(listener: Arc<UnixListener>) -> Self {
        Self { listener }
    }
}

impl ChildFactory for ControlFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let args = ControlArgs {
            listener: self.listener.clone(),
            host: Host::from_ref(supervisor.clone().into()),
        };
        spawn_linked(Control, args, supervisor)
    }
}

/// The control actor.
pub(super) struct Control;

/// Messages of the control actor.
#[derive(Debug)]
pub(super) enum ControlServerMsg {
    /// Supervisor and operator requests aimed at this actor itself.
    Control(ControlMsg),
}

impl From<ControlMsg> for ControlServerMsg {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// What the control actor starts with.
pub(super) struct ControlArgs {
    listener: Arc<UnixListener>,
    host: Host,
}

/// The accept loop, aborted (with every connection) when the actor's state is dropped.
pub(super) struct ControlState {
    accept: JoinHandle<()>,
}

impl Drop for ControlState {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Actor for Control {
    type Msg = ControlServerMsg;
    type State = ControlState;
    type Arguments = ControlArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ControlServerMsg>,
        args: ControlArgs,
    ) -> Result<ControlState, ActorProcessingErr> {
        let accept = tokio::spawn(accept_loop(args.listener, args.host));
        Ok(ControlState { accept })
    }

    async fn handle(
        &self,
        _myself: ActorRef<ControlServerMsg>,
        msg: ControlServerMsg,
        _state: &mut ControlState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ControlServerMsg::Control(control) => fault::handle_leaf(control, "control").await,
        }
    }
}

async fn accept_loop(listener: Arc<UnixListener>, host: Host) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, host.clone()));
                }
                Err(error) => {
                    tracing::warn!(error = %error, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one connection: one answer per request line until the client hangs up.
async fn serve(stream: UnixStream, host: Host) {
    let peer = stream.peer_cred().map(|c| c.uid());
    let (read, mut write) = stream.into_split();
    if peer.as_ref().ok() != Some(&own_uid()) {
        tracing::warn!(peer_uid = ?peer, "control connection from another user refused");
        let refusal = Response::failure(
            serde_json::Value::Null,
            ErrorCode::BadRequest,
            "permission denied: not the daemon's user",
        );
        let _ = write_line(&mut write, &refusal).await;
        let _ = write.shutdown().await;
        codexd_actors::socket::discard_input(read, Duration::from_secs(1)).await;
        return;
    }
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        let response = match read {
            Ok(0) | Err(_) => return,
            Ok(_) if line.len() > MAX_LINE => {
                let answer = Response::failure(
                    serde_json::Value::Null,
                    ErrorCode::BadRequest,
                    format!("request longer than {MAX_LINE} bytes"),
                );
                let _ = write_line(&mut write, &answer).await;
                return; // the rest of the oversized line cannot be resynchronised
            }
            Ok(_) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(_) => answer(&line, &host).await,
        };
        if write_line(&mut write, &response).await.is_err() {
            return;
        }
    }
}

async fn write_line(
    write: &mut (impl AsyncWriteExt + Unpin),
    response: &Response,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

/// Parses one request line and carries it out.
async fn answer(line: &[u8], host: &Host) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => {
            return Response::failure(
                serde_json::Value::Null,
                ErrorCode::BadRequest,
                format!("invalid JSON: {error}"),
            );
        }
    };
    let id = value.get("id").cloned().unwrap_or_default();
    let mut fields = value;
    if let Some(object) = fields.as_object_mut() {
        object.remove("id");
    }
    let request: Request = match serde_json::from_value(fields) {
        Ok(request) => request,
        Err(error) => {
            return Response::failure(
                id,
                ErrorCode::BadRequest,
                format!("bad request: {error} (expected cmd status, reset or fault)"),
            );
        }
    };
    let span = tracing::info_span!("control.request", cmd = ?request);
    let _entered = span.enter();
    match carry_out(request, host).await {
        Ok(data) => Response::success(id, data),
        Err(error) => Response::failure(id, code_of(&error), error.to_string()),
    }
}

async fn carry_out(request: Request, host: &Host) -> Result<serde_json::Value, HostError> {
    match request {
        Request::Status => {
            let status = host.status().await?;
            Ok(serde_json::to_value(status).unwrap_or_default())
        }
        Request::Reset { nick, child } => host
            .reset(&nick, child.as_deref())
            .await
            .map(|()| serde_json::Value::Null),
        Request::Fault { nick, child, kind } => {
            let kind = FaultKind::parse(&kind, DEFAULT_HANG)?;
            tracing::warn!(agent.nick = %nick, child = %child, fault = %kind, "injecting fault on operator request");
            host.fault(&nick, &child, kind)
                .await
                .map(|()| serde_json::Value::Null)
        }
    }
}

fn code_of(error: &HostError) -> ErrorCode {
    match error {
        HostError::Refused(ControlError::NoSuchChild { .. }) => ErrorCode::NoSuchChild,
        HostError::Refused(ControlError::NotRunning { .. }) => ErrorCode::NotRunning,
        HostError::Refused(
            ControlError::UnknownFault(_)
            | ControlError::HangOutOfRange(_)
            | ControlError::UnsupportedFault { .. },
        ) => ErrorCode::UnknownFault,
        HostError::Refused(ControlError::Unreachable(_)) | HostError::Unresponsive(_) => {
            ErrorCode::Unresponsive
        }
    }
}
