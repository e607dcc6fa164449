//! The audit log: one JSON line per message an agent takes in, turn start and end, tool
//! call and line it sends, in daemon-wide files beside agentirc's (Culture's
//! `telemetry.audit_*` keys; docs/telemetry.md "Audit log" has the schema).
//!
//! An [`Audit`] handle (one per agent, [`Audit::agent`]) never blocks its actor: a record
//! goes on a bounded queue to one writer thread ([`writer`]), which batches, fsyncs and
//! rotates the files. A record that finds the queue full (or the writer gone) is not
//! written: it is counted (`dropped` in `codexd status`, service `audit`) and logged as a
//! warning, never dropped silently.
//!
//! | hook                         | event         | where                                  |
//! |------------------------------|---------------|----------------------------------------|
//! | mention / DM / invitation    | `message.in`  | the runner's intake: journaled or refused |
//! | turn started by codex        | `turn.start`  | the runner's `turn/start` answer       |
//! | turn ended                   | `turn.end`    | the runner's `finish`                  |
//! | tool call answered           | `tool.call`   | the runner's tool task                 |
//! | PRIVMSG / NOTICE handed to IRC | `message.out` | the `irc` actor's `send_text`        |
//!
//! The same records also go to a live [`Tap`] (`codexd watch`), whether or not the file is
//! written: [`live`] makes a handle with no file. The tap is a broadcast that never waits
//! for a watcher; one that falls behind is told how many records it missed.

mod service;
mod tap;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::trace::TraceCtx;
pub use service::AuditService;
pub use tap::{TAP_CAPACITY, Tap, Tapped};

/// Where and how the audit files are written (Culture's `telemetry.audit_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// `audit_dir`: created 0700 when missing.
    pub dir: PathBuf,
    /// The IRC server's name, written into every record (`server`).
    pub server: String,
    /// `audit_max_file_bytes`: a line that would take a file past this starts the next one.
    pub max_file_bytes: u64,
    /// `audit_rotate_utc_midnight`: a new file at each UTC date change.
    pub rotate_utc_midnight: bool,
    /// `audit_queue_depth`: records waiting for the writer; more are dropped and counted.
    pub queue_depth: usize,
}

/// The time source of record timestamps (and so of the file date): injected for tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A handle on the daemon's audit log, cheap to clone; [`Audit::agent`] names the agent
/// whose records it writes.
#[derive(Clone)]
pub struct Audit {
    shared: Arc<Shared>,
    agent: Arc<str>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("agent", &self.agent)
            .field("dir", &self.shared.dir)
            .finish()
    }
}

/// Two handles are equal when they write the same log for the same agent.
impl PartialEq for Audit {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared) && self.agent == other.agent
    }
}

/// What the handles and the writer share.
struct Shared {
    /// The writer's queue; `None` for a handle made by [`live`] (no file, the tap only).
    sender: Option<SyncSender<Item>>,
    /// Every record, for `codexd watch`.
    tap: tokio::sync::broadcast::Sender<Arc<Record>>,
    server: String,
    dir: PathBuf,
    clock: Clock,
    stats: Counters,
    /// Set by [`AuditWriter::finish`]: the writer drains the queue and ends.
    closing: AtomicBool,
    /// The file being written, for status.
    file: Mutex<Option<PathBuf>>,
}

/// What travels to the writer.
enum Item {
    Record(Arc<Record>),
    /// Wakes the writer to see `closing`.
    Close,
}

/// The audit log's counters (`codexd status`, service `audit`).
#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    syncs: AtomicU64,
}

/// The audit log's numbers, as `codexd status` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditStats {
    /// `writing <file>: N lines, M dropped`.
    pub summary: String,
    /// The directory.
    pub dir: PathBuf,
    /// The file being written (none before the first record).
    pub file: Option<PathBuf>,
    /// Lines written.
    pub written: u64,
    /// Records not written: the queue was full or the writer gone.
    pub dropped: u64,
    /// Records the writer could not write (I/O errors, logged).
    pub failed: u64,
    /// Batches fsynced.
    pub syncs: u64,
}

/// One audit line (and one `codexd watch` line). Keys in this order; `payload` holds the
/// event's fields.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339 UTC, microseconds: `2026-01-02T03:04:05.123456Z`.
    ts: String,
    server: String,
    agent: String,
    trace_id: String,
    span_id: String,
    #[serde(flatten)]
    event: Event,
}

/// What happened, by `event_type`; docs/telemetry.md lists every field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum Event {
    /// A mention, DM or invitation reached the agent's intake.
    #[serde(rename = "message.in")]
    MessageIn(MessageIn),
    /// codex started a turn.
    #[serde(rename = "turn.start")]
    TurnStart(TurnStart),
    /// A turn ended.
    #[serde(rename = "turn.end")]
    TurnEnd(TurnEnd),
    /// A tool call of the model was answered.
    #[serde(rename = "tool.call")]
    ToolCall(ToolCallDone),
    /// A PRIVMSG or NOTICE was handed to the IRC connection.
    #[serde(rename = "message.out")]
    MessageOut(MessageOut),
}

/// `message.in`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageIn {
    /// `mention`, `dm` or `invite` (`ambient` and `notice` never reach the intake).
    pub kind: &'static str,
    /// The intake's outcome: `journaled`, `duplicate`, `refused_rate`, `refused_pending`,
    /// `refused_journal`.
    pub outcome: &'static str,
    /// The sender's nick.
    pub from: String,
    /// Where a reply goes: the channel, or the sender for a DM.
    pub target: String,
    /// The IRC thread, if any.
    pub thread: Option<String>,
    /// The server's message id, if any.
    pub msgid: Option<String>,
    /// The text (an invitation's: its room metadata).
    pub text: String,
}

/// `turn.start`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnStart {
    /// The conversation: `#channel`, `DM:<peer>` or the shared thread's key.
    pub conversation: String,
    /// codex's thread id.
    pub thread_id: String,
    /// codex's turn id.
    pub turn_id: Option<String>,
}

/// `turn.end`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnEnd {
    /// See [`TurnStart::conversation`].
    pub conversation: String,
    /// codex's thread id.
    pub thread_id: String,
    /// codex's turn id (none when codex never started the turn).
    pub turn_id: Option<String>,
    /// `success`, `error` or `timeout` (Culture's `outcome`).
    pub outcome: &'static str,
    /// A failed turn's reason.
    pub error: Option<String>,
    /// Input tokens, when codex reported usage.
    pub tokens_input: Option<u64>,
    /// Output tokens, when codex reported usage.
    pub tokens_output: Option<u64>,
    /// Wall-clock duration.
    pub duration_ms: u64,
}

/// `tool.call`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallDone {
    /// The tool, e.g. `irc_send`.
    pub tool: String,
    /// codex's call id.
    pub call_id: String,
    /// The arguments the model gave (IRC verbs' fields: channels, texts, limits).
    pub arguments: Value,
    /// `ok` or `failed`.
    pub outcome: &'static str,
    /// How long the call took.
    pub duration_ms: u64,
}

/// `message.out`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageOut {
    /// `PRIVMSG` or `NOTICE`.
    pub command: &'static str,
    /// The channel or nick.
    pub target: String,
    /// The text as the agent gave it (before splitting into lines).
    pub text: String,
    /// Wire lines it took.
    pub lines: usize,
    /// True when it waits for the link to come back (queued, not yet sent).
    pub queued: bool,
}

/// Owns the writer thread; [`AuditWriter::finish`] flushes and stops it.
pub struct AuditWriter {
    shared: Arc<Shared>,
    done: tokio::sync::oneshot::Receiver<()>,
}

/// Starts the audit log: creates `settings.dir` (0700) and the writer thread. Returns the
/// daemon's handle (name agents with [`Audit::agent`]) and the writer's owner.
pub fn start(settings: AuditSettings, clock: Clock) -> std::io::Result<(Audit, AuditWriter)> {
    crate::durable::create_dir(&settings.dir)?;
    let (sender, receiver) = std::sync::mpsc::sync_channel(settings.queue_depth.max(1));
    let shared = Arc::new(Shared {
        sender: Some(sender),
        tap: tap::channel(),
        server: settings.server.clone(),
        dir: settings.dir.clone(),
        clock,
        stats: Counters::default(),
        closing: AtomicBool::new(false),
        file: Mutex::new(None),
    });
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let files = writer::Files::new(&settings);
    let writing = shared.clone();
    std::thread::Builder::new()
        .name("codexd-audit".to_owned())
        .spawn(move || {
            writer::run(receiver, files, &writing);
            let _ = done_tx.send(());
        })?;
    let audit = Audit {
        shared: shared.clone(),
        agent: Arc::from(""),
    };
    Ok((audit, AuditWriter { shared, done }))
}

/// A handle with no file (`telemetry.audit_enabled` off): its records reach only the
/// live [`Tap`], and cost nothing while nobody watches.
pub fn live(server: &str, clock: Clock) -> Audit {
    let shared = Arc::new(Shared {
        sender: None,
        tap: tap::channel(),
        server: server.to_owned(),
        dir: PathBuf::new(),
        clock,
        stats: Counters::default(),
        closing: AtomicBool::new(false),
        file: Mutex::new(None),
    });
    Audit {
        shared,
        agent: Arc::from(""),
    }
}

impl Record {
    /// The agent whose record it is.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// What happened.
    pub fn event(&self) -> &Event {
        &self.event
    }
}

impl Audit {
    /// The same log, writing `nick`'s records.
    pub fn agent(&self, nick: &str) -> Audit {
        Audit {
            shared: self.shared.clone(),
            agent: Arc::from(nick),
        }
    }

    /// Queues `event` with the trace and span ids of `trace` (the context of the work it
    /// belongs to) and hands it to the watchers; never blocks. A full queue drops it,
    /// counted and logged. Without a file and a watcher it is not even built.
    pub fn record(&self, event: Event, trace: &TraceCtx) {
        let watched = self.shared.tap.receiver_count() > 0;
        if self.shared.sender.is_none() && !watched {
            return;
        }
        let (trace_id, span_id) = ids(trace);
        let record = Arc::new(Record {
            ts: timestamp((self.shared.clock)()),
            server: self.shared.server.clone(),
            agent: self.agent.to_string(),
            trace_id,
            span_id,
            event,
        });
        if watched {
            // Fails only when the last watcher left meanwhile.
            let _ = self.shared.tap.send(record.clone());
        }
        let Some(sender) = &self.shared.sender else {
            return;
        };
        let why = match sender.try_send(Item::Record(record)) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => "queue full",
            Err(TrySendError::Disconnected(_)) => "writer stopped",
        };
        let dropped = self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if worth_a_warning(dropped) {
            tracing::warn!(agent.nick = %self.agent, dropped, reason = why, "audit line dropped; see `codexd status` (service audit)");
        }
    }

    /// The counters, for status.
    pub fn stats(&self) -> AuditStats {
        self.shared.stats()
    }

    /// Whether records are written to files (false for a [`live`] handle).
    pub fn writes_files(&self) -> bool {
        self.shared.sender.is_some()
    }

    /// Follows every agent's records from now on (`codexd watch`); dropping the tap ends
    /// the subscription.
    pub fn watch(&self) -> Tap {
        Tap::new(self.shared.tap.subscribe())
    }
}

impl Shared {
    fn stats(&self) -> AuditStats {
        let counters = &self.stats;
        let file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let written = counters.written.load(Ordering::Relaxed);
        let dropped = counters.dropped.load(Ordering::Relaxed);
        let summary = match &file {
            Some(file) => format!(
                "writing {}: {written} lines, {dropped} dropped",
                file.display()
            ),
            None => format!(
                "{}: nothing written yet, {dropped} dropped",
                self.dir.display()
            ),
        };
        AuditStats {
            summary,
            dir: self.dir.clone(),
            file,
            written,
            dropped,
            failed: counters.failed.load(Ordering::Relaxed),
            syncs: counters.syncs.load(Ordering::Relaxed),
        }
    }
}

impl AuditWriter {
    /// Writes and fsyncs what is queued, then stops the writer; gives up after `timeout`
    /// (a wedged disk), saying so.
    pub async fn finish(self, timeout: Duration) {
        self.shared.closing.store(true, Ordering::Relaxed);
        if let Some(sender) = &self.shared.sender {
            let _ = sender.try_send(Item::Close);
        }
        if tokio::time::timeout(timeout, self.done).await.is_err() {
            tracing::error!(
                timeout_s = timeout.as_secs_f64(),
                "audit writer did not finish in time; queued lines may be lost"
            );
        }
        let stats = self.shared.stats();
        if stats.dropped > 0 || stats.failed > 0 {
            tracing::warn!(
                dropped = stats.dropped,
                failed = stats.failed,
                written = stats.written,
                "audit log closed with lines missing"
            );
        }
    }
}

/// | dropped so far | warn? |
/// |----------------|-------|
/// | 1, 2, 4, 8, …  | yes   |
/// | other          | no    |
///
/// A full queue under a flood logs a handful of lines, not one per record.
fn worth_a_warning(dropped: u64) -> bool {
    dropped.is_power_of_two()
}

/// `00-<trace id>-<span id>-<flags>` → (trace id, span id); empty strings without one.
fn ids(trace: &TraceCtx) -> (String, String) {
    let parts: Option<(&str, &str)> = trace.traceparent.as_deref().and_then(|value| {
        let mut fields = value.split('-');
        let (_version, trace_id, span_id) = (fields.next()?, fields.next()?, fields.next()?);
        Some((trace_id, span_id))
    });
    let (trace_id, span_id) = parts.unwrap_or_default();
    (trace_id.to_owned(), span_id.to_owned())
}

/// RFC 3339 in UTC with microseconds and `Z`, as Culture's audit writes it.
fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
}

#[cfg(test)]
mod tests;
