//! The control actor: a Host service that accepts connections on the bound socket and
//! turns each request line into a typed request to the Host, to an agent's socket actor
//! ([`super::requests`]) or, for `watch`, into a stream ([`super::watch`]). Accepting and
//! reading happen in tasks owned by the actor's state, so the mailbox always stays
//! responsive and a restart (or stop) aborts them, watches included.

use std::sync::Arc;
use std::time::Duration;

use codexd_actors::audit::Audit;
use codexd_actors::child::{ChildFactory, ChildHandle, ControlMsg, spawn_linked};
use codexd_actors::fault;
use codexd_actors::host::Host;
use codexd_actors::socket::SocketDirectory;
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};

use super::{ErrorCode, MAX_LINE, Peers, Request, Response, requests, watch};
use codexd_actors::socket::own_uid;

/// Starts the control actor on a socket bound by [`super::ControlSocket`].
pub struct ControlFactory {
    listener: Arc<UnixListener>,
    audit: Audit,
    sockets: SocketDirectory,
}

impl ControlFactory {
    /// A factory serving `listener`, reaching agents through `sockets` and following
    /// `audit`'s live tap for `watch`.
    pub fn new(listener: Arc<UnixListener>, audit: Audit, sockets: SocketDirectory) -> Self {
        Self {
            listener,
            audit,
            sockets,
        }
    }
}

impl ChildFactory for ControlFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let args = ControlArgs {
            listener: self.listener.clone(),
            peers: Peers {
                host: Host::from_ref(supervisor.clone().into()),
                audit: self.audit.clone(),
                sockets: self.sockets.clone(),
            },
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
    peers: Peers,
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
        let accept = tokio::spawn(accept_loop(args.listener, args.peers));
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

/// Accepts connections until aborted. When the process is out of file descriptors (EMFILE,
/// ENFILE) the reserved descriptor is given up so one connection is still accepted and
/// served — `codexd status` keeps answering while agents cannot connect — and taken back
/// once that connection is done. A failure streak is logged once, with its count at the end.
async fn accept_loop(listener: Arc<UnixListener>, peers: Peers) {
    let mut connections = JoinSet::new();
    let mut reserve = Reserve::take();
    let mut failing: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if failing > 0 {
                        tracing::info!(failed_accepts = failing, "control socket accepts again");
                        failing = 0;
                    }
                    connections.spawn(serve(stream, peers.clone()));
                }
                Err(error) if out_of_descriptors(&error) && reserve.release() => {
                    failing += 1;
                    tracing::warn!(error = %error, "control socket: out of file descriptors; serving one connection on the reserved descriptor");
                }
                Err(error) => {
                    if failing == 0 {
                        tracing::warn!(error = %error, "control socket accept failed");
                    }
                    failing += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => reserve.restore(),
        }
    }
}

/// One descriptor held back (`/dev/null`) for the control socket's own use.
struct Reserve(Option<std::fs::File>);

impl Reserve {
    fn take() -> Self {
        Reserve(std::fs::File::open("/dev/null").ok())
    }

    /// Closes the reserved descriptor; false when there was none to give up.
    fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes a descriptor back if it was given up (and one is free again).
    fn restore(&mut self) {
        if self.0.is_none() {
            *self = Reserve::take();
        }
    }
}

/// EMFILE or ENFILE: the process or the system has no descriptor left.
fn out_of_descriptors(error: &std::io::Error) -> bool {
    let emfile = rustix::io::Errno::MFILE.raw_os_error();
    let enfile = rustix::io::Errno::NFILE.raw_os_error();
    matches!(error.raw_os_error(), Some(code) if code == emfile || code == enfile)
}

/// Serves one connection: one answer per request line until the client hangs up; a
/// `watch` turns the rest of the connection into its stream.
async fn serve(stream: UnixStream, peers: Peers) {
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
            Ok(_) => match requests::parse(&line) {
                Err((id, refusal)) => refusal.into_response(id),
                Ok((id, Request::Watch { nick })) => {
                    match watch::subscribe(&peers, nick.as_deref()).await {
                        Ok(watcher) => {
                            let answer = Response::success(id, watcher.describe());
                            if write_line(&mut write, &answer).await.is_ok() {
                                watcher.stream(&mut reader, &mut write).await;
                            }
                            return;
                        }
                        Err(refusal) => refusal.into_response(id),
                    }
                }
                Ok((id, request)) => requests::answer(id, request, &peers).await,
            },
        };
        if write_line(&mut write, &response).await.is_err() {
            return;
        }
    }
}

pub(super) async fn write_line(
    write: &mut (impl AsyncWriteExt + Unpin),
    response: &Response,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}
