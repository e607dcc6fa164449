//! The agent's inbox and outbox: two tasks that outlive every runner restart, so nothing
//! accepted is lost while codex or the runner is down.
//!
//! | task   | reads                      | does                                                     |
//! |--------|----------------------------|----------------------------------------------------------|
//! | intake | the `irc` actor's events   | mention/DM → prompt → **journaled** → wakes the runner   |
//! | relay  | [`Outbox`] jobs, in order  | hands reply lines to `irc`; then removes finished entries |
//!
//! Channel polls come from the `attention` actor through a [`PollIntake`]: journaled the
//! same way, one pending poll per channel at most.
//!
//! A mention is accepted once its journal entry is durable; it is removed only after its
//! turn ended and every reply line of it was handed to `irc` (the relay runs jobs in
//! order, so an entry's `Complete` comes after its lines). A runner that restarts finds
//! what is still pending in the journal and replays it; a daemon restart does the same.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ractor::RpcReplyPort;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::RunnerMessage;
use super::journal::{EntryKind, Journal, NewEntry};
use super::prompt;
use crate::irc::{InboundMessage, IrcError, IrcEvent, IrcMessage, MessageKind, SendPriority};
use crate::link::Link;
use crate::trace::TraceCtx;

/// How long the relay keeps retrying a line while the `irc` actor is down.
const RELAY_PATIENCE: Duration = Duration::from_secs(120);
/// Pause between relay retries.
const RELAY_RETRY: Duration = Duration::from_millis(500);
/// How long one call to the `irc` actor may take.
const IRC_TIMEOUT: Duration = Duration::from_secs(10);
/// Thread history lines put into a thread mention's prompt (Culture: 50).
const THREAD_HISTORY: usize = 50;

/// The journal, shared by the intake, the relay and the runner.
#[derive(Debug, Clone)]
pub struct SharedJournal(Arc<Mutex<Journal>>);

impl SharedJournal {
    /// Shares `journal`.
    pub fn new(journal: Journal) -> Self {
        Self(Arc::new(Mutex::new(journal)))
    }

    /// Locks it (a poisoned lock is taken over: the journal's state is on disk).
    pub fn lock(&self) -> MutexGuard<'_, Journal> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Where the `attention` actor hands channel polls to the runner: each poll is journaled
/// like a mention (so it survives restarts) and wakes the runner.
#[derive(Debug, Clone)]
pub struct PollIntake {
    nick: String,
    journal: SharedJournal,
    runner: Link<RunnerMessage>,
}

impl PollIntake {
    /// True when a runner instance runs (a poll would not wait for a restart).
    pub fn runner_up(&self) -> bool {
        self.runner.get().is_some()
    }

    /// True while a poll of `channel` waits or runs.
    pub fn polling(&self, channel: &str) -> bool {
        self.journal.lock().polling(channel)
    }

    /// Journals a poll of `channel` with its Culture prompt and wakes the runner; its
    /// replies go to `channel`. Returns the entry id.
    pub fn submit(
        &self,
        channel: &str,
        prompt: String,
        trace: TraceCtx,
    ) -> Result<u64, super::journal::JournalError> {
        let new = NewEntry {
            kind: EntryKind::Poll,
            key: channel.to_owned(),
            reply_to: channel.to_owned(),
            sender: String::new(),
            text: String::new(),
            thread: None,
            msgid: None,
            prompt,
            trace,
        };
        let id = self.journal.lock().append(new)?.map_or(0, |entry| entry.id);
        tracing::info!(agent.nick = %self.nick, entry = id, channel, "channel poll accepted (journaled)");
        if let Some(runner) = self.runner.get() {
            let _ = runner.cast(RunnerMessage::Wake);
        }
        Ok(id)
    }
}

/// What the relay does, in order.
#[derive(Debug)]
pub enum RelayJob {
    /// PRIVMSG the agent's reply lines to `target`.
    Say {
        /// A channel or nick.
        target: String,
        /// The lines (already cleaned by [`prompt::relay_lines`]).
        lines: Vec<String>,
        /// The turn's trace; the IRC lines carry it.
        trace: TraceCtx,
    },
    /// The entry's turn ended and its lines are handed over: remove it from the journal.
    Complete {
        /// The journal entry.
        entry: u64,
    },
}

/// The relay's queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    jobs: mpsc::UnboundedSender<RelayJob>,
}

impl Outbox {
    /// Queues a job; never blocks.
    pub fn push(&self, job: RelayJob) {
        if self.jobs.send(job).is_err() {
            tracing::error!("the relay task is gone; a reply or journal removal was dropped");
        }
    }
}

/// The intake and relay tasks of one agent; dropping it stops both.
#[derive(Debug)]
pub struct Inbox {
    /// The relay's queue.
    pub outbox: Outbox,
    /// The journal.
    pub journal: SharedJournal,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Inbox {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Who the inbox talks to.
#[derive(Debug, Clone)]
pub struct InboxPeers {
    /// The agent's nick.
    pub nick: String,
    /// Its `irc` actor.
    pub irc: Link<IrcMessage>,
    /// Its runner, woken when an entry is journaled.
    pub runner: Link<RunnerMessage>,
}

impl Inbox {
    /// The attention actor's way in.
    pub fn polls(&self, nick: &str, runner: Link<RunnerMessage>) -> PollIntake {
        PollIntake {
            nick: nick.to_owned(),
            journal: self.journal.clone(),
            runner,
        }
    }

    /// Starts both tasks (within a tokio runtime); `events` must be subscribed before any
    /// line can arrive (i.e. before the `irc` actor starts).
    pub fn start(
        journal: Journal,
        events: broadcast::Receiver<IrcEvent>,
        peers: InboxPeers,
    ) -> Self {
        let journal = SharedJournal::new(journal);
        let (jobs, queue) = mpsc::unbounded_channel();
        let intake = tokio::spawn(intake(events, peers.clone(), journal.clone()));
        let relay = tokio::spawn(relay(queue, peers, journal.clone()));
        Self {
            outbox: Outbox { jobs },
            journal,
            tasks: [intake, relay],
        }
    }
}

async fn intake(
    mut events: broadcast::Receiver<IrcEvent>,
    peers: InboxPeers,
    journal: SharedJournal,
) {
    loop {
        let message = match events.recv().await {
            Ok(IrcEvent::Message(message)) => message,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::error!(agent.nick = %peers.nick, missed, "the runner's intake fell behind the irc events; mentions among them were not journaled");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let kind = match message.kind {
            MessageKind::Mention => EntryKind::Mention,
            MessageKind::Direct => EntryKind::Direct,
            MessageKind::Ambient | MessageKind::Notice => continue,
        };
        if message.sender.eq_ignore_ascii_case(&peers.nick) {
            continue; // never the agent's own lines
        }
        let prompt = build_prompt(&peers, &message).await;
        let new = NewEntry {
            kind,
            key: message.key.clone(),
            reply_to: message.reply_to.clone(),
            sender: message.sender.clone(),
            text: message.text.clone(),
            thread: message.thread.clone(),
            msgid: message.msgid.clone(),
            prompt,
            trace: message.trace.clone(),
        };
        let appended = journal.lock().append(new);
        match appended {
            Ok(Some(entry)) => {
                tracing::info!(agent.nick = %peers.nick, entry = entry.id, from = %message.sender, to = %message.reply_to, "mention accepted (journaled)");
                if let Some(runner) = peers.runner.get() {
                    let _ = runner.cast(RunnerMessage::Wake);
                }
            }
            Ok(None) => {
                tracing::info!(agent.nick = %peers.nick, msgid = ?message.msgid, "duplicate mention ignored (same msgid)")
            }
            Err(error) => {
                tracing::error!(agent.nick = %peers.nick, error = %error, from = %message.sender, "mention NOT accepted: it could not be journaled")
            }
        }
    }
}

/// Culture's prompt for a mention or DM; a thread mention carries the thread's history.
async fn build_prompt(peers: &InboxPeers, message: &InboundMessage) -> String {
    let (Some(thread), true) = (&message.thread, message.reply_to.starts_with('#')) else {
        return prompt::mention(&message.reply_to, &message.sender, &message.text);
    };
    let make = |reply| IrcMessage::ReadThread {
        key: message.key.clone(),
        thread: thread.clone(),
        limit: THREAD_HISTORY,
        reply,
    };
    let history = peers.irc.call(make, IRC_TIMEOUT).await.unwrap_or_default();
    let history: Vec<(String, String)> = history.into_iter().map(|m| (m.nick, m.text)).collect();
    prompt::thread_mention(
        &message.reply_to,
        thread,
        &history,
        &message.sender,
        &message.text,
    )
}

async fn relay(
    mut queue: mpsc::UnboundedReceiver<RelayJob>,
    peers: InboxPeers,
    journal: SharedJournal,
) {
    while let Some(job) = queue.recv().await {
        match job {
            RelayJob::Say {
                target,
                lines,
                trace,
            } => {
                for line in lines {
                    say(&peers, &target, line, &trace).await;
                }
            }
            RelayJob::Complete { entry } => {
                if let Err(error) = journal.lock().complete(entry) {
                    tracing::error!(agent.nick = %peers.nick, entry, error = %error, "journal entry could not be removed; it will be replayed");
                }
            }
        }
    }
}

/// Hands one line to `irc`, waiting out an `irc` restart for up to [`RELAY_PATIENCE`].
async fn say(peers: &InboxPeers, target: &str, line: String, trace: &TraceCtx) {
    let deadline = tokio::time::Instant::now() + RELAY_PATIENCE;
    loop {
        let result = send(peers, target, &line, trace).await;
        let retry = match &result {
            Ok(()) => return,
            Err(
                IrcError::Unavailable | IrcError::QueueFull { .. } | IrcError::Backlogged { .. },
            ) => tokio::time::Instant::now() < deadline,
            Err(_) => false,
        };
        if !retry {
            if let Err(error) = result {
                tracing::error!(agent.nick = %peers.nick, target, error = %error, "reply line dropped");
            }
            return;
        }
        tokio::time::sleep(RELAY_RETRY).await;
    }
}

async fn send(
    peers: &InboxPeers,
    target: &str,
    line: &str,
    trace: &TraceCtx,
) -> Result<(), IrcError> {
    let make = |reply: RpcReplyPort<_>| IrcMessage::Send {
        target: target.to_owned(),
        text: line.to_owned(),
        notice: false,
        require_joined: false,
        priority: SendPriority::Normal,
        trace: trace.clone(),
        reply,
    };
    match peers.irc.call(make, IRC_TIMEOUT).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(IrcError::Unavailable),
    }
}
