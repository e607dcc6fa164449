//! One client connection: the owner check, then requests answered one at a time, in
//! order, while whispers are written between answers. A writer task owns the write half,
//! so a client that stops reading only stalls itself: its answers back up, then its
//! requests stop being read, then a write that cannot finish in [`WRITE_TIMEOUT`] closes
//! the connection. Nothing a client sends can stop the actor or touch other clients.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::bind::own_uid;
use super::hub::Hub;
use super::protocol::{self, Parsed, Response, Verb};
use super::verbs::{self, Agent, Caller};
use crate::runner::TurnScope;
use crate::trace::TraceCtx;

/// Longest request line read; a longer one is answered with an error and skipped.
pub const MAX_REQUEST_LINE: usize = 4 << 20;
/// Outgoing lines (answers and whispers) buffered per client.
const OUTGOING: usize = 64;
/// A write that makes no progress for this long closes the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a refused client may keep sending before its connection is closed.
pub(crate) const REFUSAL_DRAIN: Duration = Duration::from_secs(1);

/// What the connection tasks share.
pub(crate) struct Shared {
    pub(crate) hub: Arc<Hub>,
    pub(crate) agent: Agent,
    /// Removed before `shutdown` is answered (see [`super::pidfile`]).
    pub(crate) pid_file: Option<Arc<super::PidFile>>,
}

/// Serves one client until it hangs up.
pub(crate) async fn serve(stream: UnixStream, shared: Arc<Shared>) {
    let peer = stream.peer_cred();
    let (read, write) = stream.into_split();
    let (lines, outgoing) = mpsc::channel(OUTGOING);
    let writer = tokio::spawn(write_lines(write, outgoing));
    let uid = peer.as_ref().map(|c| c.uid()).ok();
    if uid != Some(own_uid()) {
        tracing::warn!(agent.nick = %shared.agent.nick, peer_uid = ?uid, "ipc connection from another user refused");
        let refusal = Response::error("".into(), "permission denied: not the daemon's user");
        let _ = lines.send(Out::Line(protocol::encode_line(&refusal))).await;
        drop(lines);
        let _ = writer.await;
        // Closing with unread input would reset the connection and lose the refusal.
        super::bind::discard_input(read, REFUSAL_DRAIN).await;
        return;
    }
    let pid = peer
        .ok()
        .and_then(|c| c.pid())
        .and_then(|p| u32::try_from(p).ok());
    let (id, waiting) = shared.hub.connect(lines.clone());
    let _registered = Registered {
        hub: &shared.hub,
        id,
    };
    for whisper in waiting {
        if lines.send(Out::Line(whisper)).await.is_err() {
            return;
        }
    }
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        let answer = match read_line(&mut reader, &mut line, MAX_REQUEST_LINE).await {
            Ok(Line::End) | Err(_) => break,
            Ok(Line::TooLong(len)) => Some(too_long(len)),
            Ok(Line::Complete) => match protocol::parse(&line) {
                Parsed::Ignore => None,
                Parsed::Reject(response) => Some(response),
                Parsed::Request(request) => {
                    let shutdown = request.verb == Verb::Shutdown;
                    let response = answer(&shared.agent, request, pid).await;
                    if shutdown && response.is_ok() {
                        // Culture's CLI reads the PID file once answered and would SIGTERM
                        // that pid, the whole daemon: it must be gone first.
                        if let Some(pid_file) = &shared.pid_file {
                            pid_file.remove();
                        }
                        // Culture answers before it stops; wait until the answer is out.
                        shared.hub.answered(true);
                        let _ = lines
                            .send(Out::Line(protocol::encode_line(&response)))
                            .await;
                        let (flushed, written) = oneshot::channel();
                        if lines.send(Out::Flush(flushed)).await.is_ok() {
                            let _ = tokio::time::timeout(WRITE_TIMEOUT, written).await;
                        }
                        verbs::request_stop(&shared.agent);
                        continue;
                    }
                    Some(response)
                }
            },
        };
        let Some(answer) = answer else { continue };
        shared.hub.answered(answer.is_ok());
        if lines
            .send(Out::Line(protocol::encode_line(&answer)))
            .await
            .is_err()
        {
            break; // the writer gave up on this client
        }
    }
}

/// Carries out one request inside its `codexd.ipc.request` span.
async fn answer(agent: &Agent, request: protocol::Request, pid: Option<u32>) -> Response {
    let verb = request.verb.name();
    let span = tracing::info_span!(
        "codexd.ipc.request",
        ipc.verb = verb,
        agent.nick = %agent.nick,
        ipc.ok = tracing::field::Empty,
        ipc.error = tracing::field::Empty,
    );
    // The turns of the codex process the client runs under, if it does.
    let turns: Vec<TurnScope> = match pid {
        Some(pid) => agent
            .turn
            .all()
            .into_iter()
            .filter(|turn| is_within(pid, turn.pid))
            .collect(),
        None => Vec::new(),
    };
    let parent = turns
        .last()
        .map(|turn| turn.trace.clone())
        .unwrap_or_default();
    // A process under the agent's codex acts in the conversations of the turns running
    // there (none between turns); with one shared thread nothing is private.
    let under_codex = pid.and_then(|pid| agent.turn.codex().filter(|(c, _)| is_within(pid, *c)));
    let caller = match under_codex {
        Some((_, true)) => Caller::Within(
            turns
                .iter()
                .filter_map(|turn| turn.conversation.clone())
                .collect(),
        ),
        _ => Caller::Anyone,
    };
    let span = parent.follow(span);
    let response = async {
        let trace = TraceCtx::current();
        verbs::carry_out(agent, request, &trace, &caller).await
    }
    .instrument(span.clone())
    .await;
    span.record("ipc.ok", response.is_ok());
    if let Some(error) = response.error_text() {
        span.record("ipc.error", error);
        tracing::debug!(parent: &span, agent.nick = %agent.nick, ipc.verb = verb, error, "ipc request refused");
    }
    response
}

fn too_long(len: usize) -> Response {
    Response::error(
        "".into(),
        format!(
            "request line of {len} bytes exceeds the limit of {MAX_REQUEST_LINE} bytes; it was dropped"
        ),
    )
}

/// Unregisters the client from the hub however the connection ends.
struct Registered<'a> {
    hub: &'a Hub,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.hub.disconnect(self.id);
    }
}

/// What the writer task is given.
#[derive(Debug)]
pub(crate) enum Out {
    /// A line to write (an answer or a whisper).
    Line(Vec<u8>),
    /// Signal once everything before this was written.
    Flush(oneshot::Sender<()>),
}

/// Writes every outgoing line; gives up on a write error or a stalled client.
async fn write_lines(mut write: OwnedWriteHalf, mut outgoing: mpsc::Receiver<Out>) {
    while let Some(out) = outgoing.recv().await {
        match out {
            Out::Line(line) => {
                match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&line)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => return,
                }
            }
            Out::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
    let _ = write.shutdown().await;
}

/// How reading one line ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// `buf` holds one line, without its `\n`.
    Complete,
    /// The line was longer than the limit; it was read and thrown away (its length given).
    TooLong(usize),
    /// The client hung up (a last line without `\n` is still returned first).
    End,
}

/// Reads one `\n`-terminated line into `buf` (cleared first), holding at most `max` bytes:
/// a longer line is consumed to its end and reported as [`Line::TooLong`].
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut len = 0usize;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match len {
                0 => Line::End,
                _ if len > max => Line::TooLong(len),
                _ => Line::Complete,
            });
        }
        let (part, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(at) => (&chunk[..at], at + 1),
            None => (chunk, chunk.len()),
        };
        len += part.len();
        if len <= max {
            buf.extend_from_slice(part);
        } else {
            buf.clear();
        }
        let finished = done > part.len();
        reader.consume(done);
        if finished {
            return Ok(if len > max {
                Line::TooLong(len)
            } else {
                Line::Complete
            });
        }
    }
}

/// True when process `pid` is `ancestor` or one of its descendants (read from `/proc`).
fn is_within(pid: u32, ancestor: u32) -> bool {
    let mut current = pid;
    for _ in 0..64 {
        if current == ancestor {
            return true;
        }
        match parent_of(current) {
            Some(parent) if parent > 1 => current = parent,
            _ => return false,
        }
    }
    false
}

/// The parent pid from `/proc/<pid>/stat` (the field after the `)` that ends the name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            let line = read_line(&mut reader, &mut buf, max).await.expect("read");
            if line == Line::End {
                return out;
            }
            out.push((line, buf.clone()));
        }
    }

    #[tokio::test]
    async fn lines_over_the_limit_are_skipped_and_reading_goes_on() {
        let got = lines_of(b"short\nthis one is too long\nok\nlast", 8).await;
        assert_eq!(
            got,
            [
                (Line::Complete, b"short".to_vec()),
                (Line::TooLong(20), Vec::new()),
                (Line::Complete, b"ok".to_vec()),
                (Line::Complete, b"last".to_vec()),
            ]
        );
        assert_eq!(lines_of(b"", 8).await, []);
        assert_eq!(
            lines_of(b"12345678\n", 8).await,
            [(Line::Complete, b"12345678".to_vec())]
        );
        assert_eq!(
            lines_of(b"123456789", 8).await,
            [(Line::TooLong(9), Vec::new())]
        );
    }

    #[test]
    fn this_process_is_within_itself_and_its_parent_but_not_a_sibling() {
        let me = std::process::id();
        let parent = parent_of(me).expect("parent");
        assert!(is_within(me, me));
        assert!(is_within(me, parent));
        assert!(!is_within(parent, me));
    }
}
