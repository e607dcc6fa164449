//! A group commit's entries: prepared by [`super::Journal::prepare`], written here without
//! the journal (so without its lock), made pending by [`super::Journal::commit`].

use std::path::PathBuf;

use super::scan::{encode, encode_group, entry_file_name, group_file_name};
use super::{Entry, JournalError, io_error};
use crate::durable::write_atomic;

/// Entries prepared for a group commit ([`Journal::prepare`]).
#[derive(Debug)]
pub struct Batch {
    pub(super) entries_dir: PathBuf,
    pub(super) entries: Vec<Option<Entry>>,
}

impl Batch {
    /// How many entries it journals (duplicates not counted).
    pub fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    /// True when it journals nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The group file's first id, when it writes more than one entry (one entry is written
    /// as an entry file, as [`Journal::append`] does).
    pub(super) fn group(&self) -> Option<u64> {
        let mut ids = self.entries.iter().flatten().map(|e| e.id);
        let first = ids.next()?;
        ids.next().map(|_| first)
    }

    /// Writes the entries durably with one sync for all: one group file (one entry per
    /// line), or one entry file for a single entry (blocking: call it off the async workers,
    /// without the journal's lock). After an error none of them counts as journaled.
    pub fn write(&self) -> Result<(), JournalError> {
        let entries: Vec<&Entry> = self.entries.iter().flatten().collect();
        let (name, bytes) = match (self.group(), entries.as_slice()) {
            (_, []) => return Ok(()),
            (Some(first), _) => (group_file_name(first), encode_group(&entries)?),
            (None, [entry, ..]) => (entry_file_name(entry.id), encode(entry)?),
        };
        write_atomic(&self.entries_dir, &name, &bytes).map_err(io_error(
            "write journal entry",
            &self.entries_dir.join(&name),
        ))
    }
}
