//! The codex process's three pipes, each served by a task of its own:
//!
//! | pipe   | task              | does                                                       |
//! |--------|-------------------|------------------------------------------------------------|
//! | stdout | [`read_stdout`]   | splits lines (no length cliff), classifies, hands them on  |
//! | stdin  | [`write_stdin`]   | writes queued lines; closing the queue closes the pipe     |
//! | stderr | [`read_stderr`]   | keeps the last bytes in a [`StderrTail`], logs each line   |
//!
//! None of them ever waits on a consumer: the reader's only hand-off is `deliver`, a
//! non-blocking call (an actor `cast`, an unbounded channel send).

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::sync::mpsc;

use super::jsonrpc::{Incoming, Malformed, classify};
use crate::redact;

/// The stdout reader's buffer size; also what its line buffer shrinks back to.
const READ_BUFFER: usize = 64 * 1024;
/// How much of an over-long line a `Garbage` report keeps.
const GARBAGE_EXCERPT: usize = 1024;
/// stderr lines are logged up to this length.
const STDERR_LOG_LINE: usize = 4096;
/// The longest [`stderr_summary`], in characters (its end is kept).
const STDERR_SUMMARY_CHARS: usize = 300;

/// Reads stdout to its end, handing each non-blank line to `deliver`, classified.
/// A line may be up to `max_line` bytes (without its `\n`); a longer one is skipped as it
/// streams by (never held whole) and reported as `Garbage` with its first bytes. Returns
/// when stdout ends, a read fails, or `deliver` says nobody listens.
pub(super) async fn read_stdout<R: AsyncRead + Unpin>(
    stdout: R,
    max_line: usize,
    pid: u32,
    deliver: impl Fn(Incoming) -> bool,
) {
    let mut reader = BufReader::with_capacity(READ_BUFFER, stdout);
    let mut line = Vec::with_capacity(READ_BUFFER);
    loop {
        line.clear();
        let incoming = match read_line(&mut reader, &mut line, max_line).await {
            Ok(Line::Eof) => return,
            Ok(Line::Complete) => {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                classify(&line)
            }
            Ok(Line::TooLong(len)) => Incoming::Garbage {
                line: String::from_utf8_lossy(&line).into_owned(),
                error: Malformed::TooLong(len),
            },
            Err(error) => {
                tracing::warn!(codex.pid = pid, error = %error, "codex stdout read failed");
                return;
            }
        };
        if let Incoming::Garbage { line, error } = &incoming {
            let excerpt = excerpt(line, 200);
            tracing::warn!(codex.pid = pid, bytes = line.len(), line = %excerpt, error = %error, "codex wrote a line that is not JSON-RPC");
        }
        if !deliver(incoming) {
            return;
        }
        if line.capacity() > 16 * READ_BUFFER {
            line = Vec::with_capacity(READ_BUFFER);
        }
    }
}

/// How one line read ended.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// `buf` holds a line without its `\n` (the last line may lack one).
    Complete,
    /// The line was longer than the limit; `buf` holds its first KiB; this is its length.
    TooLong(usize),
    /// End of stream with nothing pending.
    Eof,
}

/// Reads one line into `buf`, growing it as needed up to `max` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Line> {
    let mut len = 0usize;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(match len {
                0 => Line::Eof,
                n if n > max => Line::TooLong(n),
                _ => Line::Complete,
            });
        }
        let (chunk, used, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        len += chunk.len();
        if len <= max {
            buf.extend_from_slice(chunk);
        } else {
            let room = GARBAGE_EXCERPT.saturating_sub(buf.len()).min(chunk.len());
            buf.truncate(GARBAGE_EXCERPT);
            buf.extend_from_slice(&chunk[..room]);
        }
        reader.consume(used);
        if done {
            return Ok(if len > max {
                Line::TooLong(len)
            } else {
                Line::Complete
            });
        }
    }
}

/// Writes each queued line and a `\n`. Ends (closing stdin, which codex reads as "shut
/// down") when the queue is closed and empty, or when a write fails because codex is gone.
pub(super) async fn write_stdin<W: AsyncWrite + Unpin>(
    mut stdin: W,
    mut lines: mpsc::Receiver<String>,
    pid: u32,
) {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        };
        if let Err(error) = written.await {
            tracing::debug!(codex.pid = pid, error = %error, "codex stdin closed");
            return;
        }
    }
    let _ = stdin.shutdown().await;
}

/// The last bytes codex wrote to stderr, for status and exit reports. Cloning shares it.
#[derive(Debug, Clone)]
pub(super) struct StderrTail {
    bytes: Arc<Mutex<VecDeque<u8>>>,
    cap: usize,
}

impl StderrTail {
    /// An empty tail keeping at most `cap` bytes.
    pub(super) fn new(cap: usize) -> Self {
        Self {
            bytes: Arc::new(Mutex::new(VecDeque::with_capacity(cap.min(64 * 1024)))),
            cap,
        }
    }

    /// Appends, dropping the oldest bytes beyond the cap.
    fn push(&self, data: &[u8]) {
        let Ok(mut bytes) = self.bytes.lock() else {
            return;
        };
        let data = &data[data.len().saturating_sub(self.cap)..];
        let over = (bytes.len() + data.len()).saturating_sub(self.cap);
        bytes.drain(..over);
        bytes.extend(data);
    }

    /// The tail as text (lossy UTF-8). When older output was dropped, the text starts at
    /// the first whole line, if there is one.
    pub(super) fn snapshot(&self) -> String {
        let Ok(bytes) = self.bytes.lock() else {
            return String::new();
        };
        let bytes: Vec<u8> = bytes.iter().copied().collect();
        let start = if bytes.len() >= self.cap {
            bytes.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1)
        } else {
            0
        };
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }
}

/// Reads stderr to its end into `tail`, logging each line (up to a length) as it comes.
pub(super) async fn read_stderr<R: AsyncRead + Unpin>(mut stderr: R, tail: StderrTail, pid: u32) {
    let mut chunk = vec![0u8; 8 * 1024];
    let mut line = Vec::new();
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tail.push(&chunk[..n]);
        for byte in &chunk[..n] {
            if *byte == b'\n' {
                log_stderr_line(&line, pid);
                line.clear();
            } else if line.len() < STDERR_LOG_LINE {
                line.push(*byte);
            }
        }
    }
    log_stderr_line(&line, pid);
}

fn log_stderr_line(line: &[u8], pid: u32) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    if !text.is_empty() {
        tracing::info!(codex.pid = pid, line = %redact::text(text), "codex stderr");
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn excerpt(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The last `count` non-blank lines of codex's stderr, [redacted](redact::text), ` | `-joined
/// and cut to their last [`STDERR_SUMMARY_CHARS`] characters, leaving out a Rust backtrace
/// (`Stack backtrace:` and the frames after it, printed when `RUST_BACKTRACE` is set), so
/// that the error codex died with is what status, logs and alerts show, without secrets.
pub(crate) fn stderr_summary(text: &str, count: usize) -> String {
    let text = match text.rfind("Stack backtrace:") {
        Some(at) if !text[..at].trim_end().is_empty() => &text[..at],
        _ => text,
    };
    let lines: Vec<String> = text
        .lines()
        .map(|line| redact::text(&plain(line)))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let summary = lines[lines.len().saturating_sub(count)..].join(" | ");
    let chars = summary.chars().count();
    if chars <= STDERR_SUMMARY_CHARS {
        return summary;
    }
    let tail: String = summary.chars().skip(chars - STDERR_SUMMARY_CHARS).collect();
    format!("…{tail}")
}

/// `line` without terminal escape sequences (codex colours its log lines: `ESC[2m…ESC[0m`).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        // CSI: ESC [ parameters… final byte in @..~; any other escape: drop ESC and the next.
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let read = read_line(&mut reader, &mut buf, max).await.expect("read");
            if read == Line::Eof {
                return out;
            }
            out.push((read, buf));
        }
    }

    #[tokio::test]
    async fn lines_grow_past_the_buffer_and_only_overlimit_ones_are_cut() {
        let got = lines(b"{\"a\":1}\n0123456789ABCDEF\n\nok\r\npartial", 12).await;
        assert_eq!(
            got,
            vec![
                (Line::Complete, b"{\"a\":1}".to_vec()),
                (Line::TooLong(16), b"0123456789ABCDEF".to_vec()),
                (Line::Complete, Vec::new()),
                (Line::Complete, b"ok\r".to_vec()),
                (Line::Complete, b"partial".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn an_overlong_line_keeps_an_excerpt_not_the_line() {
        let long = vec![b'x'; 100_000];
        let mut input = long.clone();
        input.extend_from_slice(b"\nnext\n");
        let got = lines(&input, 10_000).await;
        assert_eq!(
            got[0],
            (Line::TooLong(100_000), long[..GARBAGE_EXCERPT].to_vec())
        );
        assert_eq!(got[1], (Line::Complete, b"next".to_vec()));
    }

    #[test]
    fn the_stderr_tail_keeps_the_last_bytes_from_a_line_start() {
        let tail = StderrTail::new(16);
        tail.push(b"first line\n");
        assert_eq!(tail.snapshot(), "first line\n");
        tail.push(b"second\nthird\n");
        assert_eq!(
            tail.snapshot(),
            "second\nthird\n",
            "the cut \"ne\\n\" is left out"
        );
        tail.push(&[b'y'; 40]);
        assert_eq!(tail.snapshot(), "y".repeat(16));
    }

    #[test]
    fn excerpts_cut_at_char_boundaries() {
        assert_eq!(excerpt("héllo", 2), "h");
        assert_eq!(excerpt("abc", 10), "abc");
    }
}

#[cfg(test)]
mod stderr_tests {
    use super::{STDERR_SUMMARY_CHARS, stderr_summary};

    #[test]
    fn test_last_lines_keep_the_error_and_drop_a_backtrace() {
        let table = [
            ("a\nb\n\nc\n", 2, "b | c"),
            ("one\n", 5, "one"),
            ("", 5, ""),
            (
                "warn\nError: config.toml:1:1: unknown configuration field `x`\n\nStack backtrace:\n   0: <unknown>\n   1: <unknown>\n",
                5,
                "warn | Error: config.toml:1:1: unknown configuration field `x`",
            ),
            (
                "Stack backtrace:\n   0: main\n",
                5,
                "Stack backtrace: |    0: main",
            ),
            (
                "Error: POST https://user:secret@host/x?token=abc failed\nkey sk-proj-abcdefghijklmnopqrstuv\n",
                5,
                "Error: POST https://host/x failed | key sk-[redacted]",
            ),
        ];
        for (stderr, count, want) in table {
            assert_eq!(stderr_summary(stderr, count), want, "{stderr:?}");
        }
    }

    #[test]
    fn a_long_summary_keeps_its_end() {
        let stderr = format!("{}\nError: the last words\n", "x".repeat(1000));
        let summary = stderr_summary(&stderr, 5);
        assert_eq!(summary.chars().count(), STDERR_SUMMARY_CHARS + 1);
        assert!(summary.starts_with("…x"), "{summary}");
        assert!(summary.ends_with("x | Error: the last words"), "{summary}");
    }
}
