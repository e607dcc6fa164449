//! The audit writer: one thread draining the queue into `codexd.<date>[.<n>].jsonl`
//! files, fsyncing every [`SYNC_LINES`] lines or [`SYNC_INTERVAL`] after the first unsynced
//! one, whichever comes first.
//!
//! | a line dated `date` arrives while …                  | it goes to                      |
//! |------------------------------------------------------|---------------------------------|
//! | no file is open                                      | `codexd.<date>.jsonl`, or the first `.<n>` below the cap |
//! | `rotate_utc_midnight` and the open file is of another date | `codexd.<date>.jsonl` (…)  |
//! | it would take the open file past `max_file_bytes`    | the open file's next `.<n>`, dated `date` |
//! | otherwise                                            | the open file                   |
//!
//! agentirc names its files `<server>-<date>[.<n>].jsonl`: a `-` right before the date.
//! codexd's have a `.` there, so no server name makes the two collide in one directory.
//! Files are 0600 (also when they existed with a wider mode); a new file's directory entry
//! is fsynced.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{AuditSettings, Item, Record, Shared};

/// Lines written between two fsyncs at most.
pub(super) const SYNC_LINES: usize = 100;
/// How long a written line waits for its fsync at most.
pub(super) const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Files of one date at most (Culture's bound too); past it the last one grows.
const MAX_SUFFIX: u32 = 1000;
/// Mode of the audit files.
const FILE_MODE: u32 = 0o600;

/// The name of the `suffix`th file of `date` (`YYYY-MM-DD`).
pub(super) fn file_name(date: &str, suffix: u32) -> String {
    match suffix {
        0 => format!("codexd.{date}.jsonl"),
        n => format!("codexd.{date}.{n}.jsonl"),
    }
}

/// The audit files: which one is open and how full it is.
pub(super) struct Files {
    dir: PathBuf,
    max_bytes: u64,
    rotate_utc_midnight: bool,
    open: Option<Open>,
}

struct Open {
    writer: BufWriter<File>,
    path: PathBuf,
    date: String,
    suffix: u32,
    size: u64,
}

impl Files {
    pub(super) fn new(settings: &AuditSettings) -> Self {
        Self {
            dir: settings.dir.clone(),
            max_bytes: settings.max_file_bytes,
            rotate_utc_midnight: settings.rotate_utc_midnight,
            open: None,
        }
    }

    /// The file being written.
    pub(super) fn path(&self) -> Option<&Path> {
        self.open.as_ref().map(|open| open.path.as_path())
    }

    /// Appends `line` (newline included) dated `date`, rotating first when the module
    /// table says so. Buffered: [`Files::sync`] makes it durable.
    pub(super) fn append(&mut self, date: &str, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        let next = match &self.open {
            None => Some((date, 0)),
            Some(open) if self.rotate_utc_midnight && open.date != date => Some((date, 0)),
            Some(open) if open.size > 0 && open.size + len > self.max_bytes => {
                let suffix = if open.date == date {
                    open.suffix + 1
                } else {
                    0
                };
                Some((date, suffix))
            }
            Some(_) => None,
        };
        if let Some((date, suffix)) = next {
            self.sync()?;
            self.open = Some(self.open_file(date, suffix, len)?);
        }
        let open = self.open.as_mut().expect("opened above");
        open.writer.write_all(line)?;
        open.size += len;
        Ok(())
    }

    /// Flushes the buffer and fsyncs the open file.
    pub(super) fn sync(&mut self) -> io::Result<()> {
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        open.writer.flush()?;
        open.writer.get_ref().sync_data()
    }

    /// `date`'s first file from `suffix` on that is empty or has room for `len` more bytes
    /// (a restart during the day keeps to the cap), opened to append, 0600.
    fn open_file(&self, date: &str, mut suffix: u32, len: u64) -> io::Result<Open> {
        let mut path = self.dir.join(file_name(date, suffix));
        let mut size = existing_size(&path);
        while size > 0 && size + len > self.max_bytes && suffix < MAX_SUFFIX {
            suffix += 1;
            path = self.dir.join(file_name(date, suffix));
            size = existing_size(&path);
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(&path)?;
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
        if size == 0 {
            crate::durable::sync_dir(&self.dir)?;
        }
        Ok(Open {
            writer: BufWriter::new(file),
            path,
            date: date.to_owned(),
            suffix,
            size,
        })
    }
}

fn existing_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The writer thread's loop: until the queue closes or [`super::AuditWriter::finish`]
/// asks, then what is queued is written and fsynced.
pub(super) fn run(queue: Receiver<Item>, files: Files, shared: &Shared) {
    let mut batch = Batch {
        files,
        unsynced: 0,
        due: None,
    };
    loop {
        let wait = batch.due.map_or(SYNC_INTERVAL, |due| {
            due.saturating_duration_since(Instant::now())
        });
        match queue.recv_timeout(wait) {
            Ok(Item::Record(record)) => batch.write(&record, shared),
            Ok(Item::Close) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if batch.due.is_some_and(|due| Instant::now() >= due) {
            batch.sync(shared);
        }
        if shared.closing.load(Ordering::Relaxed) {
            while let Ok(item) = queue.try_recv() {
                if let Item::Record(record) = item {
                    batch.write(&record, shared);
                }
            }
            break;
        }
    }
    batch.sync(shared);
}

/// The files and the lines written since their last fsync.
struct Batch {
    files: Files,
    unsynced: usize,
    /// When the oldest unsynced line must be fsynced.
    due: Option<Instant>,
}

impl Batch {
    /// Writes one line; the [`SYNC_LINES`]th unsynced line fsyncs the batch.
    fn write(&mut self, record: &Record, shared: &Shared) {
        write(&mut self.files, record, shared);
        self.unsynced += 1;
        self.due
            .get_or_insert_with(|| Instant::now() + SYNC_INTERVAL);
        if self.unsynced >= SYNC_LINES {
            self.sync(shared);
        }
    }

    /// Fsyncs what was written since the last time, if anything.
    fn sync(&mut self, shared: &Shared) {
        if self.unsynced == 0 {
            return;
        }
        sync(&mut self.files, shared);
        self.unsynced = 0;
        self.due = None;
    }
}

fn write(files: &mut Files, record: &Record, shared: &Shared) {
    let mut line = match serde_json::to_vec(record) {
        Ok(line) => line,
        Err(error) => return failed(shared, "encode", &error),
    };
    line.push(b'\n');
    let date = record.ts.get(..10).unwrap_or("0000-00-00");
    match files.append(date, &line) {
        Ok(()) => {
            shared.stats.written.fetch_add(1, Ordering::Relaxed);
            let mut file = shared
                .file
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if file.as_deref() != files.path() {
                *file = files.path().map(Path::to_path_buf);
            }
        }
        Err(error) => failed(shared, "write", &error),
    }
}

fn sync(files: &mut Files, shared: &Shared) {
    match files.sync() {
        Ok(()) => {
            shared.stats.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => {
            tracing::warn!(error = %error, "audit fsync failed; the last lines may not be durable");
        }
    }
}

fn failed(shared: &Shared, action: &str, error: &dyn std::fmt::Display) {
    let failed = shared.stats.failed.fetch_add(1, Ordering::Relaxed) + 1;
    if super::worth_a_warning(failed) {
        tracing::warn!(action, error = %error, failed, "audit line not written");
    }
}
