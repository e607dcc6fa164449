//! Conversations and the codex threads they run on.
//!
//! A **conversation** is where a mention or DM came from: a channel (`#dev`), an IRC thread
//! of a channel (`#dev thread:fix-ci`) or one DM peer (`DM:ori`). By default each has a codex
//! thread of its own ([`ThreadMode::PerConversation`]): what a peer says in a DM is never in
//! the context of a channel's turn, and turns of different conversations may run at once.
//! [`ThreadMode::Shared`] is Culture's behaviour: one thread for everything, one turn at a
//! time.
//!
//! The [`ThreadBook`] keeps each thread's id, by thread key (the conversation, or `*` for
//! the shared thread), in `<state_dir>/threads.json` (0600, replaced atomically and
//! durably), with the tool set it was started with and a replaced thread's summary:
//!
//! ```json
//! {"last": "#dev", "threads": {"#dev": {"thread": "019a…", "tools": "v1:…"},
//!                              "DM:ori": {"thread": "019b…", "tools": "v1:…", "handover": "…"}}}
//! ```
//!
//! **Upgrade.** An agent from before conversations has one thread in `thread-id` (with
//! `tool-set` and `handover`). [`ThreadBook::open`] moves it to the book under the key it is
//! given, the agent's first configured channel (or `*` in shared mode), writes the book and
//! removes the old files; with no channel configured it is kept under `*` and the first
//! channel conversation to need a thread adopts it ([`ThreadBook::adopt`]), never a DM.
//!
//! A book (or an old file) that cannot be read or parsed is renamed `<name>.corrupt` and the
//! agent starts new threads (noted for the `journal_error` alert).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::journal::{EntryKind, JournalError, NewEntry, first_line, io_error, readable};
use crate::durable::{remove_durably, write_atomic};

/// The book's file in the state directory.
const BOOK_FILE: &str = "threads.json";
/// The single-thread files of earlier versions, moved into the book.
const LEGACY_THREAD: &str = "thread-id";
const LEGACY_TOOLS: &str = "tool-set";
const LEGACY_HANDOVER: &str = "handover";

/// The key of the one thread of [`ThreadMode::Shared`] (and of an upgraded agent's thread
/// until a conversation adopts it).
pub const SHARED_KEY: &str = "*";

/// How an agent's conversations map to codex threads (`conversations.threads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadMode {
    /// A thread per conversation (codexd's default).
    #[default]
    PerConversation,
    /// One thread for every conversation (Culture's behaviour).
    Shared,
}

impl ThreadMode {
    /// The config value.
    pub fn name(self) -> &'static str {
        match self {
            ThreadMode::PerConversation => "per_conversation",
            ThreadMode::Shared => "shared",
        }
    }
}

/// `conversations:` — how an agent's conversations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConversationSettings {
    /// Thread per conversation, or one shared thread.
    pub threads: ThreadMode,
    /// Turns of different threads that may run at once (at least 1).
    pub max_turns: usize,
    /// A mention or DM in the conversation whose turn runs is steered into that turn
    /// (`turn/steer`); false: it waits for the next turn.
    pub steer: bool,
}

/// Turns of one agent that may run at once by default: see bench/README.md (conversations).
pub const DEFAULT_MAX_TURNS: usize = 4;

impl Default for ConversationSettings {
    fn default() -> Self {
        Self {
            threads: ThreadMode::PerConversation,
            max_turns: DEFAULT_MAX_TURNS,
            steer: true,
        }
    }
}

/// Where a mention, DM or poll came from; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Conversation(String);

impl Conversation {
    /// The conversation of a journal entry: its buffer key, and its IRC thread in a channel.
    pub fn of(entry: &NewEntry) -> Self {
        match (&entry.thread, entry.kind, is_channel(&entry.key)) {
            (Some(thread), EntryKind::Mention, true) => {
                Self(format!("{} thread:{thread}", entry.key))
            }
            _ => Self(entry.key.clone()),
        }
    }

    /// A conversation named by an operator or the model (`#dev`, `#dev thread:x`, `DM:ori`);
    /// the error says what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let valid = match text.split_once(" thread:") {
            Some((channel, thread)) => {
                is_channel(channel) && !thread.is_empty() && !thread.contains(char::is_whitespace)
            }
            None if is_channel(text) => !text.contains(char::is_whitespace),
            None => text
                .strip_prefix("DM:")
                .is_some_and(|peer| !peer.is_empty() && !peer.contains(char::is_whitespace)),
        };
        if !valid || text.contains(char::is_control) {
            return Err(format!(
                "{text:?} is not a conversation: expected #channel, \"#channel thread:<name>\" or DM:<nick>"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The peer of a DM conversation.
    pub fn dm_peer(&self) -> Option<&str> {
        self.0.strip_prefix("DM:")
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_channel(key: &str) -> bool {
    key.starts_with('#') || key.starts_with('&')
}

/// One thread the book keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRecord {
    /// The codex thread id.
    pub thread: String,
    /// The tool set it was started with ([`crate::tools::ToolChoice::tag`]); `None`: it
    /// predates tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<String>,
    /// The summary of the thread it replaced, for its first turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct BookFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<String>,
    #[serde(default)]
    threads: BTreeMap<String, ThreadRecord>,
}

/// The agent's threads by thread key, on disk; see the module documentation.
#[derive(Debug)]
pub struct ThreadBook {
    dir: PathBuf,
    file: BookFile,
}

impl ThreadBook {
    /// Opens the book in `dir` (which exists), moving an earlier version's single thread to
    /// `home`. Returns what had to be set aside, one sentence each.
    pub fn open(dir: &Path, home: &str) -> Result<(Self, Vec<String>), JournalError> {
        let mut set_aside = Vec::new();
        let file = match readable(dir, BOOK_FILE, &mut set_aside)? {
            None => BookFile::default(),
            Some(text) => match serde_json::from_str::<BookFile>(&text) {
                Ok(file) => file,
                Err(error) => {
                    let path = dir.join(BOOK_FILE);
                    let aside = dir.join(format!("{BOOK_FILE}.corrupt"));
                    std::fs::rename(&path, &aside).map_err(|source| JournalError::Io {
                        action: "set aside",
                        path: path.clone(),
                        source,
                    })?;
                    tracing::warn!(file = %path.display(), error = %error, "unreadable thread book set aside; new threads will be started");
                    set_aside.push(format!("{} ({error})", aside.display()));
                    BookFile::default()
                }
            },
        };
        let mut book = Self {
            dir: dir.to_owned(),
            file,
        };
        book.migrate(home, &mut set_aside)?;
        Ok((book, set_aside))
    }

    /// Moves `thread-id` (+ `tool-set`, `handover`) into the book under `home`.
    fn migrate(&mut self, home: &str, set_aside: &mut Vec<String>) -> Result<(), JournalError> {
        let thread = first_line(readable(&self.dir, LEGACY_THREAD, set_aside)?.as_deref());
        let tools = first_line(readable(&self.dir, LEGACY_TOOLS, set_aside)?.as_deref());
        let handover =
            readable(&self.dir, LEGACY_HANDOVER, set_aside)?.filter(|t| !t.trim().is_empty());
        if let Some(thread) = thread {
            if !self.file.threads.contains_key(home) {
                tracing::info!(codex.thread_id = %thread, conversation = home, "the agent's thread from before conversations carries on as this conversation's");
                self.file.threads.insert(
                    home.to_owned(),
                    ThreadRecord {
                        thread,
                        tools,
                        handover,
                    },
                );
                self.save()
                    .map_err(io_error("write", &self.dir.join(BOOK_FILE)))?;
            }
        }
        for name in [LEGACY_THREAD, LEGACY_TOOLS, LEGACY_HANDOVER] {
            let path = self.dir.join(name);
            remove_durably(&self.dir, &path).map_err(io_error("remove", &path))?;
        }
        Ok(())
    }

    /// The thread of `key`.
    pub fn get(&self, key: &str) -> Option<&ThreadRecord> {
        self.file
            .threads
            .get(key)
            .filter(|record| !record.thread.is_empty())
    }

    /// Gives channel conversation `key` the upgraded thread kept under [`SHARED_KEY`] when
    /// `key` has none (in per-conversation mode, with no channel configured). True when it
    /// did.
    pub fn adopt(&mut self, key: &str) -> io::Result<bool> {
        // Only a channel: the old thread holds what every peer said; no DM gets it.
        if !is_channel(key) || self.file.threads.contains_key(key) {
            return Ok(false);
        }
        let Some(record) = self.file.threads.remove(SHARED_KEY) else {
            return Ok(false);
        };
        tracing::info!(codex.thread_id = %record.thread, conversation = key, "the agent's thread from before conversations carries on as this conversation's");
        self.file.threads.insert(key.to_owned(), record);
        self.save().map(|()| true)
    }

    /// Records `key`'s new thread, started with tool set `tools` (a handover summary kept
    /// for it is kept).
    pub fn set(&mut self, key: &str, thread: &str, tools: &str) -> io::Result<()> {
        let handover = self.file.threads.remove(key).and_then(|r| r.handover);
        self.file.threads.insert(
            key.to_owned(),
            ThreadRecord {
                thread: thread.to_owned(),
                tools: Some(tools.to_owned()),
                handover,
            },
        );
        self.save()
    }

    /// Forgets `key`'s thread (`clear`): its next turn starts a new one.
    pub fn forget(&mut self, key: &str) -> io::Result<()> {
        if self.file.threads.remove(key).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// Keeps a replaced thread's summary for `key`'s next turn.
    pub fn set_handover(&mut self, key: &str, summary: &str) -> io::Result<()> {
        let record = self
            .file
            .threads
            .entry(key.to_owned())
            .or_insert_with(|| ThreadRecord {
                thread: String::new(),
                tools: None,
                handover: None,
            });
        record.handover = Some(summary.to_owned());
        self.save()
    }

    /// Takes `key`'s kept summary (it goes into one turn's prompt).
    pub fn take_handover(&mut self, key: &str) -> Option<String> {
        let summary = self.file.threads.get_mut(key)?.handover.take()?;
        if let Err(error) = self.save() {
            tracing::warn!(error = %error, "the thread book was not rewritten after a handover");
        }
        Some(summary)
    }

    /// The thread key that ran a turn last (for `status`), kept across restarts.
    pub fn last(&self) -> Option<&str> {
        self.file.last.as_deref()
    }

    /// `key` ran a turn; saved with the book's next write.
    pub fn touch(&mut self, key: &str) {
        if self.file.last.as_deref() != Some(key) {
            self.file.last = Some(key.to_owned());
        }
    }

    /// Every thread key with a thread, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.file
            .threads
            .iter()
            .filter(|(_, record)| !record.thread.is_empty())
            .map(|(key, _)| key.as_str())
    }

    fn save(&self) -> io::Result<()> {
        let json = serde_json::to_vec(&self.file).map_err(io::Error::other)?;
        write_atomic(&self.dir, BOOK_FILE, &json)
    }
}

#[cfg(test)]
#[path = "conversation_tests.rs"]
mod tests;
