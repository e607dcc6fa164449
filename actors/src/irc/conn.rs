//! One TCP (or TLS) connection: a task that connects and then reads lines, and a writer
//! task that sends the lines of the connection's [`outbox`](super::outbox) in priority
//! order. Both report back to the `irc` actor as messages tagged with the connection's id;
//! the actor never awaits I/O. Dropping a [`Connection`] aborts both tasks, which closes the
//! socket.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tracing::Instrument;

use super::IrcMessage;
use super::intake::IntakePath;
use super::outbox::{self, Outbox};
use super::settings::{IrcSettings, TlsSettings};

/// Inbound lines longer than this (tags included) are discarded, not fatal. IRCv3 allows
/// 4096 bytes of tags plus 512 of message; agentirc caps input at 8192.
pub(super) const MAX_INBOUND_LINE: usize = 16 * 1024;

/// What a connection's tasks tell the actor.
#[derive(Debug)]
pub enum ConnEvent {
    /// TCP (and TLS) is up; registration lines already queued are going out.
    Up {
        /// Connection id.
        conn: u64,
    },
    /// One inbound line (CR/LF stripped, invalid UTF-8 replaced).
    Line {
        /// Connection id.
        conn: u64,
        /// The line.
        line: String,
        /// Its place in the inbound window ([`super::intake`]): the reader holds at most
        /// [`super::INBOUND_WINDOW`] lines between the socket and the journal, so a server's
        /// flood fills the TCP buffers (and stalls the server), not the actor's mailbox.
        hold: Option<super::intake::Hold>,
    },
    /// The connection is gone (or never came up).
    Down {
        /// Connection id.
        conn: u64,
        /// Why, for logs and status.
        reason: String,
    },
}

/// The actor's handle on a live connection.
pub(super) struct Connection {
    pub(super) id: u64,
    outbox: outbox::Shared,
    kill: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    timers: Vec<JoinHandle<()>>,
}

impl Connection {
    /// Starts connecting; lines can be queued at once and go out once the link is up.
    pub(super) fn open(
        id: u64,
        settings: &IrcSettings,
        intake: &IntakePath,
        actor: ActorRef<IrcMessage>,
    ) -> Self {
        let intake = intake.clone();
        let outbox = outbox::Shared::new(Outbox::new(settings.flood, Instant::now()));
        let (kill, kill_rx) = oneshot::channel();
        let span = tracing::info_span!(
            parent: None,
            "harness.irc.connect",
            harness.backend = "codex",
            harness.nick = %settings.nick,
            harness.server = %settings.server(),
            irc.tls = settings.tls.is_some(),
            irc.connection = id,
            error = tracing::field::Empty,
        );
        let target = Target {
            host: settings.host.clone(),
            port: settings.port,
            tls: settings.tls.clone(),
            timeout: settings.registration_timeout,
        };
        let lines = outbox.clone();
        let task = tokio::spawn(async move {
            let connected = target.connect().instrument(span.clone()).await;
            let stream = match connected {
                Ok(stream) => stream,
                Err(error) => {
                    span.record("error", error.to_string());
                    let reason = format!("cannot connect to {}: {error}", target.addr());
                    let _ = actor.cast(IrcMessage::Conn(ConnEvent::Down { conn: id, reason }));
                    return;
                }
            };
            drop(span);
            let _ = actor.cast(IrcMessage::Conn(ConnEvent::Up { conn: id }));
            let (read, write) = tokio::io::split(stream);
            let mut writer = AbortOnDrop(tokio::spawn(outbox::write_lines(write, lines)));
            let reason = tokio::select! {
                reason = read_lines(BufReader::new(read), id, &intake, &actor) => reason,
                Ok(reason) = &mut writer.0 => reason,
                _ = kill_rx => "connection dropped (fault injected)".to_owned(),
            };
            drop(writer);
            let _ = actor.cast(IrcMessage::Conn(ConnEvent::Down { conn: id, reason }));
        });
        Self {
            id,
            outbox,
            kill: Some(kill),
            task,
            timers: Vec::new(),
        }
    }

    /// Queues normal lines (chat, commands), paced by flood control; false when the
    /// outbox is backed up (nothing was queued).
    pub(super) fn send_all(&self, lines: Vec<String>) -> bool {
        self.outbox.normal(lines)
    }

    /// Queues normal lines accepted before this connection existed (rejoins, what waited
    /// in the send queue): bounded where they were accepted, never refused here.
    pub(super) fn send_accepted(&self, lines: Vec<String>) {
        self.outbox.accepted(lines);
    }

    /// Queues a line ahead of everything else (PONG, PING, registration, QUIT).
    pub(super) fn send_urgent(&self, line: String) {
        self.outbox.urgent(line);
    }

    /// Sets the presence line to send when no normal line waits (replacing an unsent one).
    pub(super) fn send_presence(&self, line: String) {
        self.outbox.presence(line);
    }

    /// Queues courtesy lines sent when no normal line waits; false when their small queue
    /// is full (nothing was queued).
    pub(super) fn send_low(&self, lines: Vec<String>) -> bool {
        self.outbox.low(lines)
    }

    /// Ties a timer (keepalive, heartbeat) to this connection's life.
    pub(super) fn add_timer(&mut self, timer: JoinHandle<()>) {
        self.timers.push(timer);
    }

    /// Sends `last` (QUIT), lets the writer drain, and waits up to `grace` for the socket
    /// to close; the tasks are aborted after that.
    pub(super) async fn close(mut self, last: String, grace: Duration) {
        self.send_urgent(last);
        self.outbox.close();
        let _ = tokio::time::timeout(grace, &mut self.task).await;
    }

    /// Drops the socket the way a network fault would; the reader reports `Down`.
    pub(super) fn drop_link(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
        for timer in &self.timers {
            timer.abort();
        }
    }
}

/// Aborts the writer when the connection task ends or is aborted itself.
struct AbortOnDrop(JoinHandle<String>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where to connect.
struct Target {
    host: String,
    port: u16,
    tls: Option<TlsSettings>,
    timeout: Duration,
}

/// A connected byte stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

impl Target {
    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    async fn connect(&self) -> io::Result<Box<dyn Stream>> {
        let connecting = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            let Some(tls) = &self.tls else {
                return Ok(Box::new(tcp) as Box<dyn Stream>);
            };
            let connector = TlsConnector::from(Arc::new(client_config(tls)?));
            let name = ServerName::try_from(self.host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream = connector.connect(name, tcp).await?;
            Ok(Box::new(stream) as Box<dyn Stream>)
        };
        tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
    }
}

/// A verifying rustls client config: the system's roots plus the configured CA file.
fn client_config(tls: &TlsSettings) -> io::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = &tls.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("cannot read CA file {}: {e}", path.display()),
                )
            })?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad CA certificate in {}: {e}", path.display()),
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Reads lines until EOF or an error, forwarding each to the actor with its place in the
/// inbound window (waiting for one first: a full window stops the reading); returns why
/// it ended.
async fn read_lines<R: AsyncBufRead + Unpin>(
    mut reader: R,
    conn: u64,
    intake: &IntakePath,
    actor: &ActorRef<IrcMessage>,
) -> String {
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let hold = intake.hold().await;
        match read_line_capped(&mut reader, &mut buf, MAX_INBOUND_LINE).await {
            Ok(LineRead::Eof) => return "server closed the connection".to_owned(),
            Ok(LineRead::TooLong(len)) => {
                tracing::warn!(bytes = len, "discarded an oversized line from the server");
            }
            Ok(LineRead::Line) => {
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\r', '\n']);
                if line.trim().is_empty() {
                    continue;
                }
                let line = line.to_owned();
                if actor
                    .cast(IrcMessage::Conn(ConnEvent::Line {
                        conn,
                        line,
                        hold: Some(hold),
                    }))
                    .is_err()
                {
                    return "irc actor stopped".to_owned();
                }
            }
            Err(error) => return format!("read error: {error}"),
        }
    }
}

/// How one read ended.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// `buf` holds one line (with its terminator, unless the stream ended without one).
    Line,
    /// A line longer than the cap was skipped; its length.
    TooLong(usize),
    /// End of stream with nothing pending.
    Eof,
}

/// Reads up to and including `\n` into `buf`, never holding more than `max` bytes of a line.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    let mut skipped = 0usize;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (skipped, buf.is_empty()) {
                (0, true) => LineRead::Eof,
                (0, false) => LineRead::Line,
                (n, _) => LineRead::TooLong(n),
            });
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        if skipped == 0 && buf.len() + used <= max {
            buf.extend_from_slice(chunk);
        } else {
            skipped += buf.len() + used;
            buf.clear();
        }
        reader.consume(used);
        if done {
            return Ok(if skipped == 0 {
                LineRead::Line
            } else {
                LineRead::TooLong(skipped)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8], max: usize) -> Vec<(LineRead, Vec<u8>)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let read = read_line_capped(&mut reader, &mut buf, max).await.unwrap();
            if read == LineRead::Eof {
                return out;
            }
            out.push((read, buf));
        }
    }

    #[tokio::test]
    async fn lines_are_split_and_oversized_ones_skipped() {
        let got = read_all(b"PING :a\r\nTOOLONGLINE\r\nok\npartial", 10).await;
        assert_eq!(
            got,
            vec![
                (LineRead::Line, b"PING :a\r\n".to_vec()),
                (LineRead::TooLong(13), Vec::new()),
                (LineRead::Line, b"ok\n".to_vec()),
                (LineRead::Line, b"partial".to_vec()),
            ]
        );
    }
}
