//! The CLI's side of the control socket: check the socket belongs to us, send one
//! request, read one answer, all bounded in time.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{MAX_LINE, Request, Response};
use codexd_actors::socket::own_uid;

/// Why the daemon could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon listens there.
    #[error("no codexd is running at {path} ({source})")]
    NotRunning {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The socket belongs to another user: refuse to talk to it.
    #[error("{0} is owned by another user; refusing to use it")]
    NotOwned(PathBuf),
    /// No answer in time.
    #[error("codexd at {0} did not answer within {1:?}")]
    Timeout(PathBuf, Duration),
    /// The answer was not a valid response line.
    #[error("unexpected answer from codexd: {0}")]
    Protocol(String),
}

/// Sends `request` to the daemon at `path` and returns its answer.
pub async fn request(
    path: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let not_running = |source| ClientError::NotRunning {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(not_running)?;
    if meta.uid() != own_uid() {
        return Err(ClientError::NotOwned(path.to_owned()));
    }
    let exchange = async {
        let stream = UnixStream::connect(path).await.map_err(not_running)?;
        let (read, mut write) = stream.into_split();
        let mut line =
            serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        write.write_all(&line).await.map_err(not_running)?;
        let mut answer = Vec::new();
        let mut reader = BufReader::new(read).take(MAX_LINE as u64 * 64);
        reader
            .read_until(b'\n', &mut answer)
            .await
            .map_err(not_running)?;
        serde_json::from_slice::<Response>(&answer).map_err(|e| {
            ClientError::Protocol(format!("{e}: {}", String::from_utf8_lossy(&answer)))
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(path.to_owned(), timeout))?
}
