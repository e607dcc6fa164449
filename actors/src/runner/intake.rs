//! The agent's intake: the task that takes mentions and DMs off the `irc` actor's
//! [`IntakePath`] and journals them, in groups (one sync for a burst, off the async
//! workers), after admission control. Every message is either journaled (and so answered)
//! or refused visibly: counted in status and in the `codexd.intake.messages` metric, its
//! sender told by NOTICE once per window. A journal that cannot write refuses what it
//! cannot keep and raises `journal_error` (once per failing spell).
//!
//! | message                                   | outcome           |
//! |-------------------------------------------|-------------------|
//! | admitted, journaled                        | `journaled`       |
//! | same msgid as a pending or recent entry    | `duplicate`       |
//! | over the sender's rate                     | `refused_rate`    |
//! | `max_pending` entries waiting              | `refused_pending` |
//! | the journal could not write it             | `refused_journal` |

use std::sync::{Arc, Mutex, MutexGuard};

use opentelemetry::KeyValue;
use ractor::RpcReplyPort;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::RunnerMessage;
use super::admission::{Admission, AdmissionSettings, Refusal};
use super::journal::{Batch, EntryKind, JournalError, NewEntry, SharedJournal};
use super::prompt;
use crate::audit;
use crate::irc::{Addressed, InboundMessage, IrcMessage, MessageKind, SendPriority};
use crate::link::Link;
use crate::webhook::{self, Alert, AlertEvent, WebhookMessage};

/// The most messages journaled in one group.
const MAX_GROUP: usize = 512;
/// Thread history lines put into a thread mention's prompt (Culture: 50).
const THREAD_HISTORY: usize = 50;
/// How long reading a thread's history from `irc` may take.
const IRC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Who the inbox's tasks (this intake and the relay) talk to.
#[derive(Debug, Clone)]
pub struct InboxPeers {
    /// The agent's nick.
    pub nick: String,
    /// Its `irc` actor.
    pub irc: Link<IrcMessage>,
    /// Its runner, woken when an entry is journaled.
    pub runner: Link<RunnerMessage>,
    /// Its webhook (`journal_error` alerts).
    pub webhook: Link<WebhookMessage>,
    /// Its tags (Culture's ROOMINVITE prompt shows them).
    pub tags: Vec<String>,
    /// The audit log (`message.in`), files and live tap; `None` records nothing.
    pub audit: Option<crate::audit::Audit>,
}

/// The meter of the intake's metric.
const METER: &str = "codexd";

/// What the intake counted (outlives runner restarts; shown in `status`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IntakeStats {
    /// Mentions and DMs journaled.
    pub journaled: u64,
    /// Messages the server sent twice (same msgid): journaled once.
    pub duplicates: u64,
    /// Refused: over the per-sender rate.
    pub refused_rate: u64,
    /// Refused: too many entries waiting.
    pub refused_pending: u64,
    /// Refused: the journal could not write them.
    pub refused_journal: u64,
    /// Notices sent to refused senders.
    pub notices: u64,
    /// Groups committed, and the largest.
    pub groups: u64,
    /// See `groups`.
    pub largest_group: usize,
    /// Entries whose completion could not be recorded (they may be answered again after a
    /// restart).
    pub completions_unrecorded: u64,
    /// The journal's last write error while it keeps failing; cleared by a good write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_error: Option<String>,
}

/// The stats, shared by the intake, the relay and the runner's status.
#[derive(Debug, Clone, Default)]
pub struct SharedStats(Arc<Mutex<IntakeStats>>);

impl SharedStats {
    /// Locks them (a poisoned lock is taken over: they are counters).
    pub fn lock(&self) -> MutexGuard<'_, IntakeStats> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A journal write failed: remembered for status; true when this starts a failing
    /// spell (the caller alerts once).
    pub(super) fn journal_failed(&self, error: &JournalError) -> bool {
        let mut stats = self.lock();
        let first = stats.journal_error.is_none();
        stats.journal_error = Some(format!("{}: {error}", error.summary()));
        first
    }

    /// A journal write succeeded: the failing spell (if any) is over.
    pub(super) fn journal_ok(&self) {
        self.lock().journal_error = None;
    }
}

/// Runs the intake until the path closes (the agent is gone).
pub(super) async fn run(
    mut queue: mpsc::UnboundedReceiver<Addressed>,
    peers: InboxPeers,
    journal: SharedJournal,
    settings: AdmissionSettings,
    stats: SharedStats,
) {
    let mut intake = Intake {
        admission: Admission::new(settings),
        peers,
        journal,
        stats,
    };
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        intake.take(std::mem::take(&mut group)).await;
    }
}

/// The intake task's state.
struct Intake {
    admission: Admission,
    peers: InboxPeers,
    journal: SharedJournal,
    stats: SharedStats,
}

impl Intake {
    /// Admits, journals (one group commit) and wakes the runner; the group's window places
    /// are given back only once each message is journaled or refused.
    async fn take(&mut self, group: Vec<Addressed>) {
        let now = Instant::now();
        let pending = self.journal.lock().pending_count();
        let mut admitted: Vec<InboundMessage> = Vec::with_capacity(group.len());
        let mut holds = Vec::with_capacity(group.len());
        for Addressed { message, hold } in group {
            holds.push(hold);
            let kind = self
                .admission
                .admit(&message.sender, pending + admitted.len(), now);
            match kind {
                Ok(()) => admitted.push(message),
                Err(refusal) => self.refuse(&message, &refusal, now),
            }
        }
        let mut news = Vec::with_capacity(admitted.len());
        for message in &admitted {
            news.push(self.new_entry(message).await);
        }
        let batch = self.journal.lock().prepare(news);
        match write(batch).await {
            Ok(batch) => self.accepted(&admitted, batch),
            Err(error) => self.not_written(&admitted, &error, now),
        }
        drop(holds);
    }

    /// The group is durable: its entries are pending; the runner is woken.
    fn accepted(&mut self, messages: &[InboundMessage], batch: Batch) {
        let nick = &self.peers.nick;
        let size = batch.len();
        let entries = self.journal.lock().commit(batch);
        self.stats.journal_ok();
        let mut journaled = 0;
        for (message, entry) in messages.iter().zip(&entries) {
            match entry {
                Some(entry) => {
                    journaled += 1;
                    audit_in(&self.peers.audit, message, "journaled");
                    tracing::info!(agent.nick = %nick, entry = entry.id, from = %message.sender, to = %message.reply_to, "mention accepted (journaled)");
                }
                None => {
                    audit_in(&self.peers.audit, message, "duplicate");
                    tracing::info!(agent.nick = %nick, msgid = ?message.msgid, "duplicate mention ignored (same msgid)");
                }
            }
        }
        let duplicates = messages.len() - journaled;
        count(nick, "journaled", journaled);
        count(nick, "duplicate", duplicates);
        {
            let mut stats = self.stats.lock();
            stats.journaled += journaled as u64;
            stats.duplicates += duplicates as u64;
            if size > 0 {
                stats.groups += 1;
                stats.largest_group = stats.largest_group.max(size);
            }
        }
        if journaled > 0 {
            if let Some(runner) = self.peers.runner.get() {
                let _ = runner.cast(RunnerMessage::Wake);
            }
        }
    }

    /// The group could not be written: each of its messages is refused, told and counted;
    /// the first failure of a spell raises `journal_error`.
    fn not_written(&mut self, messages: &[InboundMessage], error: &JournalError, now: Instant) {
        let nick = &self.peers.nick;
        tracing::error!(agent.nick = %nick, error = %error, refused = messages.len(), "mentions NOT accepted: they could not be journaled");
        if self.stats.journal_failed(error) {
            let text = format!(
                "Agent {nick}: mentions are refused: the journal cannot write ({}). Each sender is told; see `codexd status {nick}`.",
                error.summary()
            );
            self.alert(text);
        }
        let refusal = Refusal::Journal {
            kind: error.summary().to_owned(),
        };
        for message in messages {
            self.refuse(message, &refusal, now);
        }
    }

    /// Counts a refusal and tells the sender, once per window.
    fn refuse(&mut self, message: &InboundMessage, refusal: &Refusal, now: Instant) {
        let nick = &self.peers.nick;
        let label = refusal.label();
        count(nick, label, 1);
        audit_in(&self.peers.audit, message, label);
        let notify = self.admission.notice_due(&message.sender, now);
        {
            let mut stats = self.stats.lock();
            match refusal {
                Refusal::Rate { .. } => stats.refused_rate += 1,
                Refusal::Pending { .. } => stats.refused_pending += 1,
                Refusal::Journal { .. } => stats.refused_journal += 1,
            }
            stats.notices += u64::from(notify);
        }
        tracing::debug!(agent.nick = %nick, from = %message.sender, reason = label, "mention refused");
        if !notify {
            return;
        }
        tracing::warn!(agent.nick = %nick, from = %message.sender, reason = label, "refusing mentions from a sender; told by notice");
        let text = refusal.notice(nick, self.admission.settings());
        if let Some(irc) = self.peers.irc.get() {
            let (reply, _) = ractor::concurrency::oneshot();
            let _ = irc.cast(IrcMessage::Send {
                target: message.sender.clone(),
                text,
                notice: true,
                require_joined: false,
                priority: SendPriority::Low,
                trace: message.trace.clone(),
                reply: RpcReplyPort::from(reply),
            });
        }
    }

    fn alert(&self, message: String) {
        let alert = Alert {
            event: AlertEvent::JournalError,
            nick: self.peers.nick.clone(),
            message,
            trace: crate::trace::TraceCtx::current(),
        };
        webhook::raise(&self.peers.webhook, alert);
    }

    /// Culture's prompt for a mention or DM (a thread mention carries the thread's
    /// history) as a journal entry.
    async fn new_entry(&self, message: &InboundMessage) -> NewEntry {
        let kind = match message.kind {
            MessageKind::Direct => EntryKind::Direct,
            MessageKind::Invite => EntryKind::Invite,
            _ => EntryKind::Mention,
        };
        NewEntry {
            kind,
            key: message.key.clone(),
            reply_to: message.reply_to.clone(),
            sender: message.sender.clone(),
            text: message.text.clone(),
            thread: message.thread.clone(),
            msgid: message.msgid.clone(),
            prompt: self.prompt(message).await,
            trace: message.trace.clone(),
        }
    }

    async fn prompt(&self, message: &InboundMessage) -> String {
        if message.kind == MessageKind::Invite {
            let meta = prompt::parse_room_meta(&message.text);
            return prompt::room_invite(&message.reply_to, &meta, &self.peers.tags);
        }
        let (Some(thread), true) = (&message.thread, message.reply_to.starts_with('#')) else {
            return prompt::mention(&message.reply_to, &message.sender, &message.text);
        };
        let make = |reply| IrcMessage::ReadThread {
            key: message.key.clone(),
            thread: thread.clone(),
            limit: THREAD_HISTORY,
            reply,
        };
        let history = self.peers.irc.call(make, IRC_TIMEOUT).await;
        let history: Vec<(String, String)> = history
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.nick, m.text))
            .collect();
        prompt::thread_mention(
            &message.reply_to,
            thread,
            &history,
            &message.sender,
            &message.text,
        )
    }
}

/// Writes a group on the blocking pool (its sync must not hold an async worker).
async fn write(batch: Batch) -> Result<Batch, JournalError> {
    let written = tokio::task::spawn_blocking(move || batch.write().map(|()| batch)).await;
    written.unwrap_or_else(|join| {
        Err(JournalError::Io {
            action: "write journal entries",
            path: Default::default(),
            source: std::io::Error::other(join.to_string()),
        })
    })
}

/// `codexd.intake.messages{agent.nick, outcome}`.
fn count(nick: &str, outcome: &'static str, n: usize) {
    if n == 0 {
        return;
    }
    opentelemetry::global::meter(METER)
        .u64_counter("codexd.intake.messages")
        .with_description("mentions and DMs taken by an agent's intake, by outcome")
        .build()
        .add(
            n as u64,
            &[
                KeyValue::new("agent.nick", nick.to_owned()),
                KeyValue::new("outcome", outcome),
            ],
        );
}

/// `message.in` for `message` with the intake's `outcome`, when the log is on.
fn audit_in(audit: &Option<audit::Audit>, message: &InboundMessage, outcome: &'static str) {
    let Some(audit) = audit else {
        return;
    };
    let kind = match message.kind {
        MessageKind::Mention => "mention",
        MessageKind::Direct => "dm",
        MessageKind::Invite => "invite",
        MessageKind::Ambient => "ambient",
        MessageKind::Notice => "notice",
    };
    let event = audit::Event::MessageIn(audit::MessageIn {
        kind,
        outcome,
        from: message.sender.clone(),
        target: message.reply_to.clone(),
        thread: message.thread.clone(),
        msgid: message.msgid.clone(),
        text: message.text.clone(),
    });
    audit.record(event, &message.trace);
}
