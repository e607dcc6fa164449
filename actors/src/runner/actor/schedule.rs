//! What runs next: jobs (`compact`, `clear`, status queries) and the journal's entries,
//! each on its conversation's thread key.
//!
//! | the entry's thread key …                       | the entry                                   |
//! |------------------------------------------------|---------------------------------------------|
//! | has a turn of the entry's conversation, steering on, its id known, no steer in flight | is steered into it (`turn/steer` with `expectedTurnId`) |
//! | has any other turn, or is being opened         | waits                                       |
//! | is idle, and fewer than `max_turns` keys are busy | starts a turn (its thread opened first)  |
//!
//! Entries of one thread key run in journal order: once one waits, the later ones of that
//! key wait too, and so does a key whose steer codex has not answered yet. A steer answered
//! with an error (the turn ended in between: `no active turn to steer`, or another turn id)
//! puts the entry back: it runs as the next turn; one refused while the turn still runs
//! makes later follow-ups wait for that turn's end.
//!
//! **Suspects.** An entry codex died during (`attempts > 0`) replays alone: while one is
//! pending, nothing else starts until the running turns end; then it runs with nothing
//! beside it. So a poison prompt's second crash is counted against it only, not against the
//! conversations that happened to run with it the first time.

use std::collections::HashSet;
use std::time::Duration;

use ractor::ActorProcessingErr;
use serde_json::Value;
use tokio::time::Instant;

use super::threads::INVITE_KEY;
use super::{Job, MAX_ATTEMPTS, Open, Purpose, RunnerState, Waiter};
use crate::codex::jsonrpc::RpcError;
use crate::runner::conversation::Conversation;
use crate::runner::inbox::RelayJob;
use crate::runner::journal::{Entry, EntryKind};
use crate::runner::{prompt, session};
use crate::trace::TraceCtx;

/// How long a compaction may block its thread when turns have no timeout.
const COMPACTION_TIMEOUT: Duration = Duration::from_secs(600);

impl RunnerState {
    /// Starts what can start: due handovers, jobs, then entries.
    pub(super) fn next(&mut self) {
        if !self.initialized || self.process.is_none() {
            return;
        }
        if let Err(error) = self.run_jobs().and_then(|()| self.run_entries()) {
            tracing::warn!(agent.nick = %self.settings.nick, error = %error, "a request to codex was not sent");
        }
    }

    /// Whether `key` runs a turn, compacts, waits for a steer's answer or is being opened.
    fn busy(&self, key: &str) -> bool {
        self.turns.contains_key(key)
            || self.compacting.contains_key(key)
            || self.steers.values().any(|k| k == key)
            || matches!(self.threads.get(key), Some(Open::Opening))
    }

    /// Thread keys that hold one of the `max_turns` places: running a turn, or opening a
    /// thread for one.
    fn places_taken(&self) -> usize {
        let opening = self
            .threads
            .iter()
            .filter(|(key, open)| **open == Open::Opening && !self.turns.contains_key(*key))
            .count();
        self.turns.len() + opening
    }

    fn place_free(&self) -> bool {
        self.places_taken() < self.settings.conversations.max_turns.max(1)
    }

    /// Makes `key` ready for a turn: true when its thread is loaded and no handover is due
    /// (else opens it or runs the handover, and the caller waits).
    fn prepare(&mut self, key: &str) -> Result<bool, ActorProcessingErr> {
        match self.threads.get(key).cloned() {
            None => {
                self.open_thread(key)?;
                Ok(false)
            }
            Some(Open::Opening) => Ok(false),
            Some(Open::Ready {
                thread,
                handover: true,
            }) => {
                self.threads.insert(
                    key.to_owned(),
                    Open::Ready {
                        thread: thread.clone(),
                        handover: false,
                    },
                );
                let purpose = Purpose::Handover { from: thread };
                self.start_turn(key, prompt::HANDOVER, purpose, TraceCtx::default());
                Ok(false)
            }
            Some(Open::Ready { .. }) => Ok(true),
        }
    }

    /// Runs the jobs whose thread is idle; the others keep their place.
    fn run_jobs(&mut self) -> Result<(), ActorProcessingErr> {
        let mut kept = std::collections::VecDeque::new();
        while let Some(job) = self.jobs.pop_front() {
            let key = match &job {
                Job::Compact { key } | Job::Clear { key } => Some(key.clone()),
                Job::Query { .. } => self.query_key(),
            };
            let (Some(key), false) = (key, self.expired(&job)) else {
                // Nowhere to ask, or its caller gave up: the status without a query.
                if let Job::Query { reply, .. } = job {
                    let _ = reply.send(self.turn_status(None));
                }
                continue;
            };
            if self.busy(&key) {
                kept.push_back(job);
                continue;
            }
            match job {
                Job::Clear { key } => {
                    tracing::info!(agent.nick = %self.settings.nick, conversation = %key, "clear: the conversation's next turn starts a new codex thread");
                    if let Err(error) = self.book.forget(&key) {
                        tracing::warn!(agent.nick = %self.settings.nick, error = %error, "clear: the thread book was not rewritten");
                    }
                    self.close_thread(&key);
                }
                Job::Compact { key } if self.book.get(&key).is_none() => {
                    tracing::info!(agent.nick = %self.settings.nick, conversation = %key, "compact: the conversation has no thread yet");
                }
                job => {
                    if !self.place_free() || !self.prepare(&key)? {
                        kept.push_back(job);
                        continue;
                    }
                    let thread = self.ready_thread(&key).unwrap_or_default().to_owned();
                    match job {
                        Job::Compact { .. } => {
                            let params = session::compact(&thread);
                            let deadline = Instant::now()
                                + self.settings.turn_timeout.unwrap_or(COMPACTION_TIMEOUT);
                            self.compacting.insert(key.clone(), deadline);
                            self.arm(deadline);
                            let waiter = Waiter::Compact { key };
                            self.request("thread/compact/start", Some(params), waiter)?;
                        }
                        Job::Query { reply, deadline } => {
                            let purpose = Purpose::Query {
                                reply: Some(reply),
                                deadline,
                            };
                            self.start_turn(
                                &key,
                                prompt::STATUS_QUERY,
                                purpose,
                                TraceCtx::default(),
                            );
                        }
                        Job::Clear { .. } => unreachable!("handled above"),
                    }
                }
            }
        }
        self.jobs = kept;
        Ok(())
    }

    /// The thread key of a journal entry (an invitation gets a short-lived one).
    fn key_of(&self, entry: &Entry) -> String {
        match entry.entry.kind {
            EntryKind::Invite => format!("{INVITE_KEY}{}", entry.id),
            _ => self.settings.thread_key(&Conversation::of(&entry.entry)),
        }
    }

    /// Starts, steers or opens for the pending entries, in journal order per thread key.
    fn run_entries(&mut self) -> Result<(), ActorProcessingErr> {
        if self.peers.pause.is_paused() {
            return Ok(());
        }
        let pending = self.inbox.journal.lock().pending();
        let ids: HashSet<u64> = pending.iter().map(|entry| entry.id).collect();
        self.dispatched.retain(|id| ids.contains(id));
        if self.turns.values().any(|active| active.suspect) {
            return Ok(()); // a suspect replays alone
        }
        let suspects = pending.iter().any(|entry| {
            !self.dispatched.contains(&entry.id) && (1..MAX_ATTEMPTS).contains(&entry.attempts)
        });
        let mut waiting: HashSet<String> = self.steers.values().cloned().collect();
        for entry in pending {
            if self.dispatched.contains(&entry.id) {
                continue;
            }
            let key = self.key_of(&entry);
            if waiting.contains(&key) {
                continue;
            }
            if entry.attempts >= MAX_ATTEMPTS {
                self.give_up(&entry);
                continue;
            }
            waiting.insert(key.clone());
            if suspects {
                // Only a suspect starts, and only with nothing else running.
                if entry.attempts == 0 || self.places_taken() > 0 || !self.prepare(&key)? {
                    continue;
                }
                self.start_entry(&key, &entry);
                return Ok(());
            }
            if self.turns.contains_key(&key) {
                self.try_steer(&key, &entry)?;
                continue;
            }
            if self.busy(&key) || !self.place_free() || !self.prepare(&key)? {
                continue;
            }
            self.start_entry(&key, &entry);
        }
        Ok(())
    }

    /// Each earlier attempt at `entry` ended with codex dying mid-turn: a poison prompt must
    /// not keep the agent in a crash loop.
    fn give_up(&mut self, entry: &Entry) {
        self.dispatched.insert(entry.id);
        tracing::error!(agent.nick = %self.settings.nick, entry = entry.id, attempts = entry.attempts, "giving up on a mention: codex died during every attempt at it");
        if !matches!(entry.entry.kind, EntryKind::Poll | EntryKind::Invite) {
            self.inbox.outbox.push(RelayJob::Say {
                target: entry.entry.reply_to.clone(),
                lines: vec![prompt::SORRY.to_owned()],
                trace: entry.entry.trace.clone(),
            });
        }
        self.inbox
            .outbox
            .push(RelayJob::Complete { entry: entry.id });
        let failures = {
            let mut stats = self.stats();
            stats.turns_failed += 1;
            stats.consecutive_failures += 1;
            stats.consecutive_failures
        };
        self.breaker(failures, &entry.entry.trace);
    }

    /// Steers `entry` into `key`'s running turn when it is the same conversation's, its id
    /// is known and no other steer is in flight (else it waits for the turn's end).
    fn try_steer(&mut self, key: &str, entry: &Entry) -> Result<(), ActorProcessingErr> {
        if !self.settings.conversations.steer || entry.entry.kind == EntryKind::Invite {
            return Ok(());
        }
        let conversation = Conversation::of(&entry.entry);
        let Some(active) = self.turns.get_mut(key) else {
            return Ok(());
        };
        let same =
            matches!(&active.purpose, Purpose::Entry { conversation: c, .. } if *c == conversation);
        let ready = same && !active.steer_refused && active.turn.interrupted.is_none();
        let (true, Some(turn), None) = (ready, active.turn.id.clone(), active.steering) else {
            return Ok(());
        };
        active.steering = Some(entry.id);
        self.steers.insert(entry.id, key.to_owned());
        let params = session::turn_steer(&active.thread, &turn, &entry.entry.prompt);
        self.dispatched.insert(entry.id);
        tracing::info!(agent.nick = %self.settings.nick, entry = entry.id, conversation = %conversation, codex.turn_id = %turn, "a follow-up is steered into the running turn");
        let waiter = Waiter::Steer {
            key: key.to_owned(),
            entry: entry.id,
            turn,
            asked: entry.entry.kind != EntryKind::Poll,
        };
        self.request("turn/steer", Some(params), waiter)
    }

    /// A `turn/steer` was answered: the entry joins the turn (done when it ends), or runs as
    /// the next turn when the turn had ended or was another.
    pub(super) fn steered(
        &mut self,
        key: &str,
        (entry, asked): (u64, bool),
        turn: &str,
        result: Result<Value, RpcError>,
    ) {
        let nick = self.settings.nick.clone();
        self.steers.remove(&entry);
        let active = self
            .turns
            .get_mut(key)
            .filter(|active| active.turn.id.as_deref() == Some(turn));
        match (result, active) {
            (Ok(_), Some(active)) => {
                active.steering = None;
                if let Purpose::Entry {
                    ids,
                    fresh,
                    asked: turn_asked,
                    ..
                } = &mut active.purpose
                {
                    // A mention steered into a poll's turn is owed a Sorry if it fails.
                    *turn_asked |= asked;
                    // What was answered before the follow-up is done: never replayed.
                    let answered = ids.len() - *fresh;
                    for id in ids.drain(..answered) {
                        self.inbox.outbox.push(RelayJob::Complete { entry: id });
                    }
                    ids.push(entry);
                    *fresh += 1;
                }
                active.turn.span.in_scope(|| {
                    tracing::info!(agent.nick = %nick, entry, "follow-up steered into the turn");
                });
            }
            (result, active) => {
                if let Some(active) = active {
                    // Refused while it still runs: later follow-ups wait for its end.
                    active.steering = None;
                    active.steer_refused = true;
                }
                match result {
                    Ok(_) => {
                        tracing::warn!(agent.nick = %nick, entry, codex.turn_id = %turn, "a follow-up was steered into a turn that has ended; it runs as the next turn (it may be answered twice)")
                    }
                    Err(error) => {
                        tracing::info!(agent.nick = %nick, entry, codex.turn_id = %turn, error = %error, "the turn ended before the follow-up could steer it; it runs as the next turn")
                    }
                }
                self.dispatched.remove(&entry);
            }
        }
        self.next();
    }

    /// Starts the turn of `entry` on `key`'s loaded thread.
    fn start_entry(&mut self, key: &str, entry: &Entry) {
        self.dispatched.insert(entry.id);
        if entry.attempts > 0 {
            tracing::info!(agent.nick = %self.settings.nick, entry = entry.id, crashed_attempts = entry.attempts, "replaying an accepted mention");
        }
        if entry.entry.kind == EntryKind::Invite {
            let purpose = Purpose::Invite {
                id: entry.id,
                channel: entry.entry.reply_to.clone(),
            };
            self.start_turn(key, &entry.entry.prompt, purpose, entry.entry.trace.clone());
            self.mark_suspect(key, entry);
            return;
        }
        if entry.entry.kind != EntryKind::Poll {
            self.stats().last_activation = Some(super::turns::epoch_now());
        }
        self.book.touch(key);
        let purpose = Purpose::Entry {
            ids: vec![entry.id],
            fresh: 1,
            conversation: Conversation::of(&entry.entry),
            reply_to: entry.entry.reply_to.clone(),
            asked: entry.entry.kind != EntryKind::Poll,
        };
        let prompt = self.with_whispers(&entry.entry.prompt);
        let prompt = match self.book.take_handover(key) {
            Some(summary) => format!("{}\n{summary}\n\n{prompt}", prompt::HANDOVER_SEED),
            None => prompt,
        };
        self.start_turn(key, &prompt, purpose, entry.entry.trace.clone());
        self.mark_suspect(key, entry);
    }

    /// The turn of `entry` on `key` replays an entry codex died during: it runs alone.
    fn mark_suspect(&mut self, key: &str, entry: &Entry) {
        if let Some(active) = self.turns.get_mut(key) {
            active.suspect = entry.attempts > 0;
        }
    }

    /// Whether a status query's caller has given up.
    fn expired(&self, job: &Job) -> bool {
        matches!(job, Job::Query { deadline, .. } if *deadline <= Instant::now())
    }
}
