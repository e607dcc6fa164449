//! What [`super::Journal::open`] finds in the entries directory, and the names of the files
//! there: one file per entry (`<id>.json`), or one per group commit (`<first id>.group`,
//! one entry per line) with the ids completed from it appended to `<first id>.group.done`.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use super::{Entry, JournalError, io_error};
use crate::durable::{TMP_SUFFIX, read_optional, remove_durably, sync_dir, write_atomic};

/// Suffix of an entry file.
const ENTRY_SUFFIX: &str = ".json";
/// Suffix of a group file.
const GROUP_SUFFIX: &str = ".group";
/// Suffix of a group's completed ids.
const GROUP_DONE_SUFFIX: &str = ".group.done";
/// Suffix added to a file that cannot be read back.
pub(super) const CORRUPT_SUFFIX: &str = ".corrupt";

/// What a file in the entries directory is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileName {
    /// `<id>.json`.
    Entry(u64),
    /// `<first id>.group`.
    Group(u64),
    /// `<first id>.group.done`.
    GroupDone(u64),
    /// `<id>.json.corrupt` or `<first id>.group.corrupt`.
    Corrupt(u64),
    /// `*.tmp`: a write that never finished.
    Interrupted,
    /// Not the journal's.
    Other,
}

/// Classifies a file name of the entries directory (`<id>` is decimal digits).
///
/// | name                                  | kind            |
/// |---------------------------------------|-----------------|
/// | `00000000000000000007.json`           | `Entry(7)`      |
/// | `7.json`                              | `Entry(7)`      |
/// | `00000000000000000007.group`          | `Group(7)`      |
/// | `00000000000000000007.group.done`     | `GroupDone(7)`  |
/// | `00000000000000000007.json.corrupt`   | `Corrupt(7)`    |
/// | `00000000000000000007.group.corrupt`  | `Corrupt(7)`    |
/// | `00000000000000000007.json.tmp`       | `Interrupted`   |
/// | `x.json`, `.json`, `7.txt`, `-1.json` | `Other`         |
pub(super) fn classify(name: &str) -> FileName {
    if name.ends_with(TMP_SUFFIX) {
        return FileName::Interrupted;
    }
    if let Some(id) = name.strip_suffix(GROUP_DONE_SUFFIX).and_then(parse_id) {
        return FileName::GroupDone(id);
    }
    let (stem, corrupt) = match name.strip_suffix(CORRUPT_SUFFIX) {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    let entry = stem.strip_suffix(ENTRY_SUFFIX).and_then(parse_id);
    let group = stem.strip_suffix(GROUP_SUFFIX).and_then(parse_id);
    match (entry, group, corrupt) {
        (Some(id), _, true) | (_, Some(id), true) => FileName::Corrupt(id),
        (Some(id), _, false) => FileName::Entry(id),
        (_, Some(id), false) => FileName::Group(id),
        _ => FileName::Other,
    }
}

/// A non-empty run of ASCII digits as an id.
fn parse_id(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The file name of entry `id`: 20 digits, so names sort like ids.
pub(super) fn entry_file_name(id: u64) -> String {
    format!("{id:020}{ENTRY_SUFFIX}")
}

/// The file name of the group whose first entry is `first`.
pub(super) fn group_file_name(first: u64) -> String {
    format!("{first:020}{GROUP_SUFFIX}")
}

/// The file name of the ids completed from group `first`.
pub(super) fn group_done_name(first: u64) -> String {
    format!("{first:020}{GROUP_DONE_SUFFIX}")
}

/// A group file's content: one entry per line.
pub(super) fn encode_group(entries: &[&Entry]) -> Result<Vec<u8>, JournalError> {
    let mut bytes = Vec::new();
    for entry in entries {
        bytes.extend(encode(entry)?);
        bytes.push(b'\n');
    }
    Ok(bytes)
}

/// What [`scan_entries`] found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Readable entry files, in no particular order.
    pub(super) own: Vec<Entry>,
    /// Each readable group: its first id and its entries not completed yet.
    pub(super) groups: Vec<(u64, Vec<Entry>)>,
    /// The highest id of any file, corrupt ones included; 0 when there is none.
    pub(super) max_id: u64,
}

/// Reads the entries directory: sets aside corrupt files (a group with an unreadable line
/// has its readable pending entries saved as entry files first), removes interrupted
/// writes and the completed ids of groups that are gone (module table).
pub(super) fn scan_entries(
    entries_dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Scan, JournalError> {
    let mut scan = Scan::default();
    let mut names = Vec::new();
    let listing = fs::read_dir(entries_dir).map_err(io_error("list journal", entries_dir))?;
    for dirent in listing {
        let dirent = dirent.map_err(io_error("list journal", entries_dir))?;
        names.push((
            classify(&dirent.file_name().to_string_lossy()),
            dirent.path(),
        ));
    }
    let groups: BTreeSet<u64> = names
        .iter()
        .filter_map(|(kind, _)| match kind {
            FileName::Group(first) => Some(*first),
            _ => None,
        })
        .collect();
    for (kind, path) in names {
        match kind {
            FileName::Entry(id) => {
                scan.max_id = scan.max_id.max(id);
                match read_entry(&path, id) {
                    Ok(entry) => scan.own.push(entry),
                    Err(reason) => set_aside(entries_dir, &path, &reason, notes)?,
                }
            }
            FileName::Group(first) => read_group(entries_dir, first, &path, &mut scan, notes)?,
            FileName::GroupDone(first) if !groups.contains(&first) => {
                remove_durably(entries_dir, &path).map_err(io_error("remove", &path))?;
            }
            FileName::Corrupt(id) => scan.max_id = scan.max_id.max(id),
            FileName::Interrupted => {
                tracing::debug!(file = %path.display(), "removing interrupted journal write");
                remove_durably(entries_dir, &path)
                    .map_err(io_error("remove interrupted write", &path))?;
            }
            FileName::GroupDone(_) | FileName::Other => {}
        }
    }
    Ok(scan)
}

/// Reads entry file `path`, named for `id`; `Err(reason)` when it cannot be read or its
/// content is not entry `id`.
fn read_entry(path: &Path, id: u64) -> Result<Entry, String> {
    let bytes = fs::read(path).map_err(|error| error.to_string())?;
    match serde_json::from_slice::<Entry>(&bytes) {
        Ok(entry) if entry.id == id => Ok(entry),
        Ok(entry) => Err(format!("the file holds entry {}", entry.id)),
        Err(error) => Err(error.to_string()),
    }
}

/// Adds group `first`'s entries not completed yet to `scan`. A group with an unreadable
/// line is set aside once its readable pending entries are saved as entry files (they join
/// `scan` as such).
fn read_group(
    entries_dir: &Path,
    first: u64,
    path: &Path,
    scan: &mut Scan,
    notes: &mut Vec<String>,
) -> Result<(), JournalError> {
    let done_path = entries_dir.join(group_done_name(first));
    let done = completed_ids(&done_path);
    let (entries, problem) = match fs::read(path) {
        Ok(bytes) => parse_group(&bytes, first),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let max_id = entries.iter().map(|e| e.id).max().unwrap_or(first);
    scan.max_id = scan.max_id.max(max_id);
    let pending: Vec<Entry> = entries
        .into_iter()
        .filter(|e| !done.contains(&e.id))
        .collect();
    let Some(reason) = problem else {
        scan.groups.push((first, pending));
        return Ok(());
    };
    for entry in pending {
        let name = entry_file_name(entry.id);
        if entries_dir.join(&name).exists() {
            continue; // a newer copy (`started`), found by the listing
        }
        write_atomic(entries_dir, &name, &encode(&entry)?)
            .map_err(io_error("save journal entry", &entries_dir.join(&name)))?;
        scan.own.push(entry);
    }
    set_aside(entries_dir, path, &reason, notes)?;
    remove_durably(entries_dir, &done_path).map_err(io_error("remove", &done_path))
}

/// A group file's readable entries, and what was wrong with the rest (if anything).
fn parse_group(bytes: &[u8], first: u64) -> (Vec<Entry>, Option<String>) {
    let mut entries = Vec::new();
    let mut problem = None;
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) if entry.id >= first => entries.push(entry),
            Ok(entry) => {
                problem = Some(format!(
                    "line {}: entry {} before the group",
                    n + 1,
                    entry.id
                ))
            }
            Err(error) => problem = Some(format!("line {}: {error}", n + 1)),
        }
    }
    (entries, problem)
}

/// The ids in a `.group.done` file (missing: none; a torn last line is ignored).
fn completed_ids(path: &Path) -> BTreeSet<u64> {
    let text = read_optional(path).ok().flatten().unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// Renames a file that cannot be read back to `<file>.corrupt`, durably, with a warning,
/// and notes it for the alert.
pub(super) fn set_aside(
    dir: &Path,
    path: &Path,
    reason: &str,
    notes: &mut Vec<String>,
) -> Result<(), JournalError> {
    let mut corrupt = path.as_os_str().to_owned();
    corrupt.push(CORRUPT_SUFFIX);
    let corrupt = PathBuf::from(corrupt);
    tracing::warn!(
        file = %path.display(),
        renamed_to = %corrupt.display(),
        error = %reason,
        "unreadable journal file set aside"
    );
    fs::rename(path, &corrupt)
        .and_then(|()| sync_dir(dir))
        .map_err(io_error("set aside unreadable journal file", path))?;
    notes.push(format!("{} ({reason})", corrupt.display()));
    Ok(())
}

/// The text of `dir/name` (`None` when it does not exist); a file that cannot be read as
/// text is set aside like a corrupt entry and counts as absent.
pub(crate) fn readable(
    dir: &Path,
    name: &str,
    notes: &mut Vec<String>,
) -> Result<Option<String>, JournalError> {
    let path = dir.join(name);
    match read_optional(&path) {
        Ok(text) => Ok(text),
        Err(error) => {
            set_aside(dir, &path, &error.to_string(), notes)?;
            Ok(None)
        }
    }
}

/// The last `limit` msgids of `done-msgids`' text.
pub(super) fn done_msgids(text: Option<&str>, limit: usize) -> VecDeque<String> {
    let mut done: VecDeque<String> = text
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|msgid| !msgid.is_empty())
        .map(str::to_owned)
        .collect();
    let overflow = done.len().saturating_sub(limit);
    done.drain(..overflow);
    done
}

/// The first line of a one-line file's text, trimmed; `None` when missing or blank.
pub(crate) fn first_line(text: Option<&str>) -> Option<String> {
    text.and_then(|text| text.lines().next())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// An entry's file content.
pub(super) fn encode(entry: &Entry) -> Result<Vec<u8>, JournalError> {
    serde_json::to_vec(entry).map_err(|source| JournalError::Encode {
        id: entry.id,
        source,
    })
}
