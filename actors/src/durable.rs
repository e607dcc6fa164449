//! File primitives for the state directory: atomic, durable replacement and appends of
//! private files (the journal, the remembered channels).
//!
//! | operation          | steps                                                         |
//! |--------------------|---------------------------------------------------------------|
//! | [`create_dir`]     | `mkdir -p`, mode 0700                                         |
//! | [`write_atomic`]   | write `<name>.tmp` (0600), fsync, rename over `<name>`, fsync dir |
//! | [`append_line`]    | append `<line>\n` (created 0600), fsync; fsync dir if new      |
//! | [`remove_durably`] | unlink (absent is fine), fsync dir                            |
//! | [`read_optional`]  | read to a string; absent is `None`                            |

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the directories the journal creates.
const DIR_MODE: u32 = 0o700;
/// Mode of the files the journal writes.
const FILE_MODE: u32 = 0o600;
/// Suffix of a file being written by [`write_atomic`].
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// `path`'s content, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Creates `dir` (and its parents) with mode 0700; an existing directory is kept as it is.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Replaces `dir/name` with `bytes`: `name.tmp` written and fsynced, renamed over `name`,
/// then `dir` fsynced.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)?;
    // A leftover tmp file keeps its old mode through `open`.
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &path)?;
    sync_dir(dir)
}

/// Appends `line` and a newline to `dir/name` (created 0600), fsynced; `dir` is fsynced
/// too when the file is new.
pub(crate) fn append_line(dir: &Path, name: &str, line: &str) -> io::Result<()> {
    let path = dir.join(name);
    let existed = path.exists();
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(&path)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_all()?;
    if existed {
        return Ok(());
    }
    sync_dir(dir)
}

/// Removes `path` in `dir` (already gone is fine), then fsyncs `dir`.
pub(crate) fn remove_durably(dir: &Path, path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(dir),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Makes the directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
