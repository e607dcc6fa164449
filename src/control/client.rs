//! The CLI's side of the control socket: check the socket belongs to us, send one
//! request, read one answer, all bounded in time; for `watch`, then the stream of lines
//! that follows the answer, for as long as the caller reads it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

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
    /// The daemon closed a watch stream (it stopped, or its control service restarted).
    #[error("codexd at {0} closed the connection")]
    Closed(PathBuf),
}

/// A `watch` under way: the daemon's answer, then one line per record.
pub struct Watching {
    /// The answer to the request (`ok: false` ends the watch before it starts).
    pub answer: Response,
    path: PathBuf,
    lines: BufReader<OwnedReadHalf>,
    /// Held open: closing it would tell the daemon the watcher left.
    _write: OwnedWriteHalf,
}

impl Watching {
    /// The next streamed line (without its newline); [`ClientError::Closed`] when the
    /// daemon hung up.
    pub async fn next_line(&mut self) -> Result<String, ClientError> {
        let mut line = Vec::new();
        let read = (&mut self.lines)
            .take(MAX_LINE as u64 * 64)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => Err(ClientError::Closed(self.path.clone())),
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                Ok(String::from_utf8_lossy(&line).into_owned())
            }
        }
    }
}

/// Sends a `watch` request and waits up to `timeout` for its answer; the stream after it
/// is read with [`Watching::next_line`], without a time limit.
pub async fn watch(
    path: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Watching, ClientError> {
    let exchange = async {
        let (mut reader, write) = send(path, request).await?;
        let answer = read_answer(path, &mut reader).await?;
        Ok(Watching {
            answer,
            path: path.to_owned(),
            lines: reader,
            _write: write,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(path.to_owned(), timeout))?
}

/// Sends `request` to the daemon at `path` and returns its answer.
pub async fn request(
    path: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let exchange = async {
        let (mut reader, _write) = send(path, request).await?;
        read_answer(path, &mut reader).await
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(path.to_owned(), timeout))?
}

fn not_running(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::NotRunning {
        path: path.to_owned(),
        source,
    }
}

/// Checks the socket is ours, connects and writes the request line.
async fn send(
    path: &Path,
    request: &Request,
) -> Result<(BufReader<OwnedReadHalf>, OwnedWriteHalf), ClientError> {
    let meta = std::fs::metadata(path).map_err(not_running(path))?;
    if meta.uid() != own_uid() {
        return Err(ClientError::NotOwned(path.to_owned()));
    }
    let stream = UnixStream::connect(path).await.map_err(not_running(path))?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    write.write_all(&line).await.map_err(not_running(path))?;
    Ok((BufReader::new(read), write))
}

/// Reads one answer line.
async fn read_answer(
    path: &Path,
    reader: &mut BufReader<OwnedReadHalf>,
) -> Result<Response, ClientError> {
    let mut answer = Vec::new();
    reader
        .take(MAX_LINE as u64 * 64)
        .read_until(b'\n', &mut answer)
        .await
        .map_err(not_running(path))?;
    serde_json::from_slice::<Response>(&answer)
        .map_err(|e| ClientError::Protocol(format!("{e}: {}", String::from_utf8_lossy(&answer))))
}
