//! The agent's inbox and outbox: two tasks that outlive every runner restart, so nothing
//! accepted is lost while codex or the runner is down.
//!
//! | task   | reads                      | does                                                     |
//! |--------|----------------------------|----------------------------------------------------------|
//! | intake | the `irc` actor's [`IntakePath`] | admission → prompt → **journaled** in groups → wakes the runner ([`super::intake`]) |
//! | relay  | [`Outbox`] jobs, in order  | hands reply lines to `irc`; then removes finished entries (off the async workers) |
//!
//! Channel polls come from the `attention` actor through a [`PollIntake`]: journaled the
//! same way, one pending poll per channel at most.
//!
//! A mention is accepted once its journal entry is durable; it is removed only after its
//! turn ended and every reply line of it was handed to `irc` (the relay runs jobs in
//! order, so an entry's `Complete` comes after its lines). A runner that restarts finds
//! what is still pending in the journal and replays it; a daemon restart does the same.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::RpcReplyPort;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::RunnerMessage;
use super::admission::AdmissionSettings;
use super::intake::{self, InboxPeers, SharedStats};
use super::journal::{EntryKind, Journal, NewEntry, SharedJournal};
use crate::irc::{Addressed, IrcError, IrcMessage, SendPriority};
use crate::link::Link;
use crate::trace::TraceCtx;
use crate::webhook::{self, Alert, AlertEvent};

/// How long the relay keeps retrying a line while the `irc` actor is down.
const RELAY_PATIENCE: Duration = Duration::from_secs(120);
/// Pause between relay retries.
const RELAY_RETRY: Duration = Duration::from_millis(500);
/// How long one call to the `irc` actor may take.
const IRC_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// What the intake counted.
    pub stats: SharedStats,
    /// Whispers (overseer corrections) waiting for the model's next turn.
    pub whispers: Arc<Mutex<Vec<String>>>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Inbox {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
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

    /// Starts both tasks (within a tokio runtime): the intake takes what `irc` hands to
    /// the agent's intake path (`intake`), under `admission`.
    pub fn start(
        journal: Journal,
        intake: mpsc::UnboundedReceiver<Addressed>,
        admission: AdmissionSettings,
        peers: InboxPeers,
    ) -> Self {
        let journal = SharedJournal::new(journal);
        let stats = SharedStats::default();
        let (jobs, queue) = mpsc::unbounded_channel();
        let taking = intake::run(
            intake,
            peers.clone(),
            journal.clone(),
            admission,
            stats.clone(),
        );
        let relay = relay(queue, peers, journal.clone(), stats.clone());
        Self {
            outbox: Outbox { jobs },
            journal,
            stats,
            whispers: Arc::default(),
            tasks: [tokio::spawn(taking), tokio::spawn(relay)],
        }
    }
}

async fn relay(
    mut queue: mpsc::UnboundedReceiver<RelayJob>,
    peers: InboxPeers,
    journal: SharedJournal,
    stats: SharedStats,
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
            RelayJob::Complete { entry } => complete(&peers, &journal, &stats, entry).await,
        }
    }
}

/// Removes a finished entry from the journal on the blocking pool. One that cannot be
/// removed (a full disk) is not run again now but may be after a restart (at least once):
/// counted, and the first failure of a spell raises `journal_error` saying so.
async fn complete(peers: &InboxPeers, journal: &SharedJournal, stats: &SharedStats, entry: u64) {
    let shared = journal.clone();
    let done = tokio::task::spawn_blocking(move || shared.lock().complete(entry)).await;
    let error = match done {
        Ok(Ok(())) => return stats.journal_ok(),
        Ok(Err(error)) => error,
        Err(join) => {
            tracing::error!(agent.nick = %peers.nick, entry, error = %join, "journal completion task failed");
            return;
        }
    };
    let nick = &peers.nick;
    tracing::error!(agent.nick = %nick, entry, error = %error, "journal entry completion not recorded; it may be answered again after a restart");
    stats.lock().completions_unrecorded += 1;
    if stats.journal_failed(&error) {
        let message = format!(
            "Agent {nick}: the journal cannot record finished turns ({}); the mentions they answered may be answered again after a restart (at least once, never lost).",
            error.summary()
        );
        let alert = Alert {
            event: AlertEvent::JournalError,
            nick: nick.clone(),
            message,
            trace: TraceCtx::current(),
        };
        webhook::raise(&peers.webhook, alert);
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
