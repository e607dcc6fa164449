//! The agent's durable inbox, in its state directory.
//!
//! A mention or DM is *accepted* once [`Journal::append`] returned: its entry is on disk. It
//! is removed by [`Journal::complete`] only after its turn ended and its replies were handed
//! to IRC, so after a crash or restart [`Journal::open`] hands back what is still pending,
//! oldest first, to be replayed. A message the server sends twice (same `msgid`) is journaled
//! once. The conversation an entry belongs to is its `key` and `thread`
//! ([`super::conversation::Conversation::of`]); the codex threads are in the
//! [`super::conversation::ThreadBook`].
//!
//! | path                          | holds                                  | written by                        |
//! |-------------------------------|----------------------------------------|-----------------------------------|
//! | `<dir>/journal/<id:020>.json` | one pending [`Entry`]                  | `append`, `started`; removed by `complete` |
//! | `<dir>/journal/<first:020>.group` | the entries of one group commit, one JSON line each | [`Batch::write`]; removed when all are complete |
//! | `<dir>/journal/<first:020>.group.done` | the ids completed from that group, one per line | `complete` (fsynced appends) |
//! | `<dir>/done-msgids`           | msgids of the last 4096 completed entries, one per line | `complete` |
//!
//! Directories are created 0700 and files 0600. Every write is atomic and durable: write
//! `<name>.tmp`, fsync it, rename it over `<name>`, fsync the directory. `done-msgids` grows
//! by fsynced appends and is rewritten that way when it is trimmed.
//!
//! What [`Journal::open`] does with each file in `<dir>/journal`:
//!
//! | file                                         | open                                       |
//! |----------------------------------------------|--------------------------------------------|
//! | `<id>.json` holding entry `<id>`             | pending                                    |
//! | `<id>.json` whose msgid is in `done-msgids`  | completed just before a crash: removed     |
//! | `<id>.json` unreadable, unparsable, or holding another id | renamed `<id>.json.corrupt`, warned, skipped |
//! | `<id>.json.corrupt`                          | kept; its id is never reused               |
//! | `<first>.group`                              | its entries not in `<first>.group.done` are pending (an entry file of the same id is newer: `started`) |
//! | `<first>.group` with an unreadable line      | its readable pending entries saved as `<id>.json`, the file renamed `.group.corrupt` |
//! | `<first>.group.done` without its group       | removed                                    |
//! | `*.tmp`                                      | an interrupted write: removed              |
//! | anything else                                | ignored                                    |
//!
//! `done-msgids` that cannot be read as text (invalid UTF-8, not a file) is
//! renamed `<name>.corrupt` the same way and counts as empty: the agent keeps taking
//! mentions. Whatever was set aside is listed once by [`Journal::take_set_aside`] (the
//! runner raises an alert).
//!
//! Bursts are committed in groups: [`Journal::prepare`] gives ids, [`Batch::write`] writes
//! them as one group file, atomically and durably like any other file (one fsync for the
//! group, off the async workers, without the journal's lock), [`Journal::commit`] makes them
//! pending. A group of one is an entry file: the format every journal had before groups.
//!
//! New ids continue after the highest id on disk (`.corrupt` files included); once every
//! entry is completed and the daemon restarts, ids start again at 1.
//!
//! Deduplication ([`Journal::append`] returns `Ok(None)`) applies to a non-empty msgid without
//! control characters that equals the msgid of a pending entry or of one of the last 4096
//! completed entries; any other msgid, like none, is never deduplicated.

mod batch;
mod scan;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use self::batch::Batch;
use self::scan::{
    done_msgids, encode, entry_file_name, group_done_name, group_file_name, scan_entries,
};
pub(crate) use self::scan::{first_line, readable};
use crate::durable::{append_line, create_dir, remove_durably, write_atomic};
use crate::trace::TraceCtx;

/// The subdirectory holding one file per pending entry.
const ENTRIES_DIR: &str = "journal";
/// The file holding recently completed msgids.
const DONE_FILE: &str = "done-msgids";
/// How many completed msgids are remembered.
const DONE_LIMIT: usize = 4096;

/// What an inbound line was for the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A channel message that @-mentions the agent.
    Mention,
    /// A private message to the agent.
    Direct,
    /// A channel poll the `attention` actor asked for (unread channel traffic).
    Poll,
    /// A room invitation (agentirc's `ROOMINVITE`): `key` and `reply_to` are the room,
    /// `text` its metadata; evaluated on a short-lived thread of its own.
    Invite,
}

/// What the intake journals for one inbound mention or DM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEntry {
    /// Mention or DM.
    pub kind: EntryKind,
    /// The buffer key: `#channel` or `DM:<nick>`.
    pub key: String,
    /// Where replies go: the channel, or the sender of a DM.
    pub reply_to: String,
    /// The sender's nick.
    pub sender: String,
    /// The IRC text, verbatim.
    pub text: String,
    /// The thread the message belongs to, if any.
    pub thread: Option<String>,
    /// The server's message id, the deduplication key.
    pub msgid: Option<String>,
    /// The prompt built when the message was accepted.
    pub prompt: String,
    /// The span context of the inbound line.
    pub trace: TraceCtx,
}

impl NewEntry {
    /// The msgid as a deduplication key: `None` when absent, empty or holding a control
    /// character (it could not be one line of `done-msgids`).
    fn dedup_key(&self) -> Option<&str> {
        self.msgid
            .as_deref()
            .filter(|msgid| !msgid.is_empty() && !msgid.contains(char::is_control))
    }
}

/// A journaled entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Increasing with acceptance; the replay order.
    pub id: u64,
    /// When it was journaled, in epoch seconds (whole microseconds).
    pub accepted_at: f64,
    /// Turns for it that ended with codex dying mid-turn (the runner gives up at 2).
    pub attempts: u32,
    /// What was accepted (flattened into the entry's JSON object on disk).
    #[serde(flatten)]
    pub entry: NewEntry,
}

/// Why the journal could not read or write its files.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `write journal entry`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// An entry could not be encoded as JSON.
    #[error("cannot encode journal entry {id}: {source}")]
    Encode {
        /// The entry's id.
        id: u64,
        /// What serde said.
        source: serde_json::Error,
    },
}

impl JournalError {
    /// What went wrong in a few words without paths (for a sender's notice and alerts).
    pub fn summary(&self) -> &'static str {
        match self {
            JournalError::Io { source, .. } => match source.kind() {
                io::ErrorKind::StorageFull => "disk full",
                io::ErrorKind::QuotaExceeded => "disk quota exceeded",
                io::ErrorKind::ReadOnlyFilesystem => "read-only file system",
                io::ErrorKind::PermissionDenied => "permission denied",
                _ => "a storage error",
            },
            JournalError::Encode { .. } => "an encoding error",
        }
    }
}

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

/// The durable inbox of one agent; see the module documentation.
#[derive(Debug)]
pub struct Journal {
    /// The state directory.
    dir: PathBuf,
    /// The pending entries, by id (also on disk).
    pending: BTreeMap<u64, Entry>,
    /// Recently completed msgids, oldest first (also on disk).
    done: VecDeque<String>,
    /// How many completed msgids `done` keeps.
    done_limit: usize,
    /// The id of the next appended entry.
    next_id: u64,
    /// Files `open` set aside, for [`Journal::take_set_aside`].
    set_aside: Vec<String>,
    /// Each group file's pending members, by the group's first id.
    groups: BTreeMap<u64, BTreeSet<u64>>,
    /// The group file of each pending entry written in a group.
    group_of: BTreeMap<u64, u64>,
}

impl Journal {
    /// Opens (creating) `dir`; returns the journal and the pending entries, oldest first.
    /// Entry files that cannot be read back are set aside, never fatal (module table).
    pub fn open(dir: &Path) -> Result<(Journal, Vec<Entry>), JournalError> {
        Self::open_with_limit(dir, DONE_LIMIT)
    }

    /// [`Journal::open`] remembering the last `done_limit` (at least 1) completed msgids.
    pub(crate) fn open_with_limit(
        dir: &Path,
        done_limit: usize,
    ) -> Result<(Journal, Vec<Entry>), JournalError> {
        let entries_dir = dir.join(ENTRIES_DIR);
        create_dir(dir).map_err(io_error("create directory", dir))?;
        create_dir(&entries_dir).map_err(io_error("create directory", &entries_dir))?;
        let done_limit = done_limit.max(1);
        let mut set_aside = Vec::new();
        let scan = scan_entries(&entries_dir, &mut set_aside)?;
        let done = readable(dir, DONE_FILE, &mut set_aside)?;
        let mut journal = Journal {
            dir: dir.to_owned(),
            pending: BTreeMap::new(),
            done: done_msgids(done.as_deref(), done_limit),
            done_limit,
            next_id: scan.max_id + 1,
            set_aside,
            groups: BTreeMap::new(),
            group_of: BTreeMap::new(),
        };
        for (first, entries) in scan.groups {
            journal.groups.insert(first, BTreeSet::new());
            for entry in entries {
                journal.group_of.insert(entry.id, first);
                journal.groups.entry(first).or_default().insert(entry.id);
                journal.pending.insert(entry.id, entry);
            }
        }
        // An entry file is newer than its group's copy (`started` wrote it).
        for entry in scan.own {
            journal.pending.insert(entry.id, entry);
        }
        let completed: Vec<u64> = journal
            .pending
            .values()
            .filter(|entry| journal.is_done(&entry.entry))
            .map(|entry| entry.id)
            .collect();
        for id in completed {
            journal.pending.remove(&id);
            journal.forget(id)?;
        }
        let empty: Vec<u64> = journal
            .groups
            .iter()
            .filter(|(_, members)| members.is_empty())
            .map(|(first, _)| *first)
            .collect();
        for first in empty {
            journal.remove_group(first)?;
        }
        let pending = journal.pending();
        Ok((journal, pending))
    }

    /// Journals a new entry durably before returning it; `Ok(None)` when its msgid is a
    /// duplicate of a pending or recently completed entry's (module documentation).
    pub fn append(&mut self, new: NewEntry) -> Result<Option<Entry>, JournalError> {
        let batch = self.prepare(vec![new]);
        batch.write()?;
        Ok(self.commit(batch).pop().flatten())
    }

    /// The first step of a group commit: gives each new entry its id, or `None` when its
    /// msgid is a duplicate (of a pending, recently completed or earlier entry of the same
    /// group). Nothing is written: [`Batch::write`] does that without the journal (so without
    /// its lock), then [`Journal::commit`] makes the entries pending. A batch that fails to
    /// write is dropped: its ids are not reused.
    pub fn prepare(&mut self, news: Vec<NewEntry>) -> Batch {
        let mut entries: Vec<Option<Entry>> = Vec::with_capacity(news.len());
        for new in news {
            if let Some(msgid) = new.dedup_key() {
                let in_batch = entries
                    .iter()
                    .flatten()
                    .any(|e| e.entry.dedup_key() == Some(msgid));
                if in_batch || self.knows(msgid) {
                    tracing::debug!(msgid, key = %new.key, "duplicate message not journaled");
                    entries.push(None);
                    continue;
                }
            }
            let id = self.next_id;
            self.next_id += 1;
            entries.push(Some(Entry {
                id,
                accepted_at: epoch_seconds(),
                attempts: 0,
                entry: new,
            }));
        }
        Batch {
            entries_dir: self.entries_dir(),
            entries,
        }
    }

    /// The last step of a group commit: the written entries are pending. Returns them in
    /// the order they were prepared (`None` for a duplicate).
    pub fn commit(&mut self, batch: Batch) -> Vec<Option<Entry>> {
        let group = batch.group();
        for entry in batch.entries.iter().flatten() {
            self.pending.insert(entry.id, entry.clone());
            if let Some(first) = group {
                self.group_of.insert(entry.id, first);
                self.groups.entry(first).or_default().insert(entry.id);
            }
        }
        batch.entries
    }

    /// The pending entries, oldest first.
    pub fn pending(&self) -> Vec<Entry> {
        self.pending.values().cloned().collect()
    }

    /// How many entries are pending.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// True while a poll of `key` waits or runs.
    pub fn polling(&self, key: &str) -> bool {
        self.pending
            .values()
            .any(|e| e.entry.kind == EntryKind::Poll && e.entry.key == key)
    }

    /// Records a failed attempt at `id` (a turn codex died during): its attempts grow by
    /// one, durably. Returns the new count, or 0 for an unknown id.
    pub fn started(&mut self, id: u64) -> Result<u32, JournalError> {
        let Some(current) = self.pending.get(&id) else {
            return Ok(0);
        };
        let mut updated = current.clone();
        updated.attempts = updated.attempts.saturating_add(1);
        self.write_entry(&updated)?;
        let attempts = updated.attempts;
        self.pending.insert(id, updated);
        Ok(attempts)
    }

    /// Removes entry `id` (its turn ended and its replies were handed to IRC) after
    /// remembering its msgid in `done-msgids`. An unknown id is fine (idempotent).
    ///
    /// The entry stops being pending even when this fails (a full disk): it is not run again
    /// by this process, but its file may still be on disk and be replayed after a restart
    /// (at least once, never lost).
    pub fn complete(&mut self, id: u64) -> Result<(), JournalError> {
        let Some(entry) = self.pending.remove(&id) else {
            return Ok(());
        };
        if let Some(msgid) = entry.entry.dedup_key().map(str::to_owned) {
            self.remember_done(msgid)?;
        }
        self.forget(id)
    }

    /// What [`Journal::open`] had to set aside (files it could not read), one sentence
    /// each; taken once, for an alert.
    pub fn take_set_aside(&mut self) -> Vec<String> {
        std::mem::take(&mut self.set_aside)
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `msgid` belongs to a pending or recently completed entry.
    fn knows(&self, msgid: &str) -> bool {
        self.pending
            .values()
            .any(|entry| entry.entry.dedup_key() == Some(msgid))
            || self.done.iter().any(|done| done == msgid)
    }

    /// Whether `entry`'s msgid was completed (its file outlived a crash in `complete`).
    fn is_done(&self, entry: &NewEntry) -> bool {
        entry
            .dedup_key()
            .is_some_and(|msgid| self.done.iter().any(|done| done == msgid))
    }

    fn entries_dir(&self) -> PathBuf {
        self.dir.join(ENTRIES_DIR)
    }

    /// Writes `entry` to its file, atomically and durably.
    fn write_entry(&self, entry: &Entry) -> Result<(), JournalError> {
        let json = encode(entry)?;
        let entries_dir = self.entries_dir();
        let name = entry_file_name(entry.id);
        write_atomic(&entries_dir, &name, &json)
            .map_err(io_error("write journal entry", &entries_dir.join(&name)))
    }

    /// Removes the file of entry `id` (already gone is fine), durably.
    fn remove_entry_file(&self, id: u64) -> Result<(), JournalError> {
        let entries_dir = self.entries_dir();
        let path = entries_dir.join(entry_file_name(id));
        remove_durably(&entries_dir, &path).map_err(io_error("remove journal entry", &path))
    }

    /// Makes entry `id` gone from disk, durably: its own file is removed; an entry of a
    /// group has its id appended to the group's `.group.done` first, and the group's files
    /// are removed once every member is done.
    fn forget(&mut self, id: u64) -> Result<(), JournalError> {
        let Some(first) = self.group_of.remove(&id) else {
            return self.remove_entry_file(id);
        };
        let entries_dir = self.entries_dir();
        let done = group_done_name(first);
        append_line(&entries_dir, &done, &id.to_string()).map_err(io_error(
            "record a completed journal entry",
            &entries_dir.join(&done),
        ))?;
        self.remove_entry_file(id)?;
        let members = self.groups.entry(first).or_default();
        members.remove(&id);
        if members.is_empty() {
            self.remove_group(first)?;
        }
        Ok(())
    }

    /// Removes group `first`'s files (every member is done), durably.
    fn remove_group(&mut self, first: u64) -> Result<(), JournalError> {
        self.groups.remove(&first);
        let entries_dir = self.entries_dir();
        for name in [group_file_name(first), group_done_name(first)] {
            let path = entries_dir.join(name);
            remove_durably(&entries_dir, &path).map_err(io_error("remove journal group", &path))?;
        }
        Ok(())
    }

    /// Adds `msgid` to the completed msgids: appended to `done-msgids`, or the file is
    /// rewritten with the last `done_limit` msgids once it is full.
    fn remember_done(&mut self, msgid: String) -> Result<(), JournalError> {
        let path = self.dir.join(DONE_FILE);
        if self.done.len() < self.done_limit {
            append_line(&self.dir, DONE_FILE, &msgid)
                .map_err(io_error("append to done msgids", &path))?;
            self.done.push_back(msgid);
            return Ok(());
        }
        let overflow = self.done.len() + 1 - self.done_limit;
        let mut kept: VecDeque<String> = self.done.iter().skip(overflow).cloned().collect();
        kept.push_back(msgid);
        let text: String = kept.iter().map(|done| format!("{done}\n")).collect();
        write_atomic(&self.dir, DONE_FILE, text.as_bytes())
            .map_err(io_error("write done msgids", &path))?;
        self.done = kept;
        Ok(())
    }
}

/// Wraps an I/O error with what was being done to which path.
pub(crate) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_owned();
    move |source| JournalError::Io {
        action,
        path,
        source,
    }
}

/// Now, in epoch seconds (0 if the clock is before 1970); see [`whole_micros`].
fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, whole_micros)
}

/// `elapsed` in seconds, cut to whole microseconds. Such a value prints with at most 16
/// significant digits until the year 2255, and serde_json (without `float_roundtrip`) reads
/// those back exactly; a full-precision `f64` can need 17 and read back one ulp off.
fn whole_micros(elapsed: Duration) -> f64 {
    elapsed.as_micros() as f64 / 1_000_000.0
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
