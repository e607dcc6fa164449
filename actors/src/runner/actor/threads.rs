//! The conversations' threads on the current session: opened when a turn or job needs one
//! (`thread/resume` of the book's thread, else `thread/start`), recorded in the
//! [`crate::runner::conversation::ThreadBook`], replaced through a handover turn when the
//! tool set changed, and short-lived threads for room invitations.

use ractor::ActorProcessingErr;
use serde_json::Value;

use super::{Open, RunnerState, Waiter};
use crate::codex::jsonrpc::RpcError;
use crate::runner::conversation::{SHARED_KEY, ThreadMode};
use crate::runner::session;

/// The prefix of a room invitation's short-lived thread key.
pub(super) const INVITE_KEY: &str = "invite:";

/// Conversation threads an agent keeps loaded in codex at once: opening one more unloads
/// (`thread/unsubscribe`) the one idle longest; it is resumed when next needed. Each loaded
/// thread costs codex memory (about 2 MiB, bench/README.md `pool`), and an agent answering
/// many DM peers for weeks would otherwise load them all.
pub(super) const LOADED_THREADS: usize = 8;

impl RunnerState {
    /// The loaded thread of `key`, if it is ready.
    pub(super) fn ready_thread(&self, key: &str) -> Option<&str> {
        match self.threads.get(key) {
            Some(Open::Ready { thread, .. }) => Some(thread),
            _ => None,
        }
    }

    /// Opens `key`'s thread on this session: resumes the book's thread, else starts one (a
    /// short-lived one for an invitation). Nothing when it is open or opening.
    pub(super) fn open_thread(&mut self, key: &str) -> Result<(), ActorProcessingErr> {
        if self.threads.contains_key(key) {
            return Ok(());
        }
        self.make_room();
        self.threads.insert(key.to_owned(), Open::Opening);
        if key.starts_with(INVITE_KEY) {
            let params = self.settings.thread.start_ephemeral();
            let waiter = Waiter::StartThread {
                key: key.to_owned(),
            };
            return self.request("thread/start", Some(params), waiter);
        }
        if let Err(error) = self.book.adopt(key) {
            tracing::warn!(agent.nick = %self.settings.nick, error = %error, "the thread book was not rewritten");
        }
        match self.book.get(key).map(|record| record.thread.clone()) {
            Some(thread) => {
                let params = self.settings.thread.resume(&thread);
                let waiter = Waiter::Resume {
                    key: key.to_owned(),
                    thread,
                };
                self.request("thread/resume", Some(params), waiter)
            }
            None => self.start_thread(key),
        }
    }

    /// Unloads the conversation thread idle longest while [`LOADED_THREADS`] are loaded.
    fn make_room(&mut self) {
        loop {
            let loaded: Vec<&String> = self
                .threads
                .keys()
                .filter(|key| !key.starts_with(INVITE_KEY))
                .collect();
            if loaded.len() < LOADED_THREADS {
                return;
            }
            let idle = loaded
                .into_iter()
                .filter(|key| {
                    matches!(self.threads.get(*key), Some(Open::Ready { .. }))
                        && !self.turns.contains_key(*key)
                        && !self.compacting.contains_key(*key)
                        && !self.steers.values().any(|k| k == *key)
                })
                .min_by_key(|key| self.used.get(*key).copied().unwrap_or(0))
                .cloned();
            let Some(key) = idle else {
                return; // all busy: it goes over for now
            };
            tracing::info!(agent.nick = %self.settings.nick, conversation = %key, "unloading the thread idle longest ({LOADED_THREADS} loaded); it is resumed when next needed");
            self.close_thread(&key);
        }
    }

    /// `thread/start` for `key` with the agent's tools.
    pub(super) fn start_thread(&mut self, key: &str) -> Result<(), ActorProcessingErr> {
        self.threads.insert(key.to_owned(), Open::Opening);
        let mut params = self.settings.thread.start();
        let tools = self.settings.tool_set().declared();
        if !tools.is_empty() {
            params["dynamicTools"] = Value::Array(tools);
        }
        let waiter = Waiter::StartThread {
            key: key.to_owned(),
        };
        self.request("thread/start", Some(params), waiter)
    }

    /// `thread/resume` of `key` answered.
    pub(super) fn resumed(&mut self, key: String, thread: String, result: Result<Value, RpcError>) {
        let nick = self.settings.nick.clone();
        match result {
            Ok(result) => {
                let thread = session::thread_id(&result).unwrap_or(thread);
                let recorded = self.book.get(&key).and_then(|record| record.tools.clone());
                let current = self.settings.tool_set().tag();
                let handover = recorded.as_deref() != Some(current.as_str());
                if handover {
                    let recorded = recorded.unwrap_or_else(|| "none".to_owned());
                    tracing::warn!(agent.nick = %nick, conversation = %key, codex.thread_id = %thread, recorded = %recorded, current = %current, "the codex thread was started with another tool set (a thread's tools are fixed at its start); it writes a summary, then a new thread with the current tools starts from it");
                } else {
                    tracing::info!(agent.nick = %nick, conversation = %key, codex.thread_id = %thread, "codex thread resumed");
                }
                self.threads.insert(key, Open::Ready { thread, handover });
            }
            Err(error) => {
                tracing::warn!(agent.nick = %nick, conversation = %key, codex.thread_id = %thread, error = %error, "codex thread could not be resumed; starting a new thread (the earlier conversation is not in it)");
                if let Err(error) = self.start_thread(&key) {
                    tracing::warn!(agent.nick = %nick, error = %error, "thread/start not sent");
                }
                return;
            }
        }
        self.next();
    }

    /// `thread/start` of `key` answered: recorded in the book (not a short-lived thread).
    pub(super) fn started(
        &mut self,
        key: String,
        result: Result<Value, RpcError>,
    ) -> Result<(), ActorProcessingErr> {
        let nick = self.settings.nick.clone();
        let thread = match result.as_ref().map(session::thread_id) {
            Ok(Some(thread)) => thread,
            Ok(None) => return Err("thread/start answered without a thread id".into()),
            Err(error) => return Err(session::failure("thread/start", error).into()),
        };
        if !key.starts_with(INVITE_KEY) {
            let tag = self.settings.tool_set().tag();
            if let Err(error) = self.book.set(&key, &thread, &tag) {
                tracing::error!(agent.nick = %nick, conversation = %key, error = %error, "thread id not persisted; a restart will start a new thread");
            }
        }
        tracing::info!(agent.nick = %nick, conversation = %key, codex.thread_id = %thread, "codex thread started");
        self.threads.insert(
            key,
            Open::Ready {
                thread,
                handover: false,
            },
        );
        self.next();
        Ok(())
    }

    /// Unloads `key`'s thread from codex and forgets it on this session: a short-lived
    /// thread's work is done; a conversation's thread is idle or cleared (the book keeps it
    /// unless cleared, and it is resumed when next needed).
    pub(super) fn close_thread(&mut self, key: &str) {
        self.used.remove(key);
        if let Some(Open::Ready { thread, .. }) = self.threads.remove(key) {
            let params = session::unsubscribe(&thread);
            if let Err(error) =
                self.request("thread/unsubscribe", Some(params), Waiter::Unsubscribe)
            {
                tracing::debug!(agent.nick = %self.settings.nick, error = %error, "thread/unsubscribe not sent");
            }
        }
    }

    /// Every thread key with a thread (in the book or open now), short-lived ones aside, and
    /// with threads per conversation the upgraded thread a conversation has not adopted yet.
    pub(super) fn known_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.book.keys().map(str::to_owned).collect();
        for key in self.threads.keys() {
            if !key.starts_with(INVITE_KEY) && !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        if self.settings.conversations.threads == ThreadMode::PerConversation {
            keys.retain(|key| key != SHARED_KEY);
        }
        keys
    }

    /// The thread a status query runs on (its answer goes to any caller, so never a private
    /// conversation's): the one that ran a turn last, else any known, else the first
    /// channel's (started for it); `None`: nowhere to ask.
    pub(super) fn query_key(&self) -> Option<String> {
        let known: Vec<String> = self
            .known_keys()
            .into_iter()
            .filter(|key| !self.settings.is_private(key))
            .collect();
        let home = self.settings.home_key();
        let home = (self.settings.conversations.threads == ThreadMode::Shared
            || home != SHARED_KEY)
            .then_some(home);
        self.book
            .last()
            .filter(|last| known.iter().any(|k| k == last))
            .map(str::to_owned)
            .or_else(|| known.into_iter().next())
            .or(home)
    }
}
