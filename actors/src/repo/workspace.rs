//! The managed workspace: where it may be (codexd-spec §18.1, upstream's messages), and the
//! file-system steps on it. A workspace is wiped before every run, so codexd only ever
//! deletes a directory it made: one holding its marker file, or an empty one.
//!
//! | workspace (resolved)                      | result                                              |
//! |-------------------------------------------|-----------------------------------------------------|
//! | the current directory                     | `workspace must not be the repository root`         |
//! | `$HOME`                                   | `workspace must not be the user's home directory`   |
//! | not under the current directory           | `workspace must be inside the current repository`   |
//! | `<cwd>/.git` or under it                  | `workspace must not be inside the repository's .git directory` |
//! | under the current directory               | accepted (default `.codexd/work`)                   |
//!
//! | [`prepare`] finds at the workspace        | does                                                |
//! |-------------------------------------------|-----------------------------------------------------|
//! | nothing, or an empty directory            | creates it with the marker                          |
//! | a directory with the marker               | deletes it, creates it again with the marker        |
//! | a directory with files and no marker      | refuses: `<path> is not a codexd workspace …`       |
//! | a file                                    | refuses the same way                                |

use std::io;
use std::path::{Component, Path, PathBuf};

/// Upstream's default, relative to the current directory.
pub const DEFAULT_WORKSPACE: &str = ".codexd/work";
/// The file that marks a directory as a workspace codexd made (and may wipe).
pub const MARKER: &str = ".codexd-workspace";

/// Where a workspace may not be (module table).
pub const AT_ROOT: &str = "workspace must not be the repository root";
/// See [`AT_ROOT`].
pub const AT_HOME: &str = "workspace must not be the user's home directory";
/// See [`AT_ROOT`].
pub const OUTSIDE: &str = "workspace must be inside the current repository";
/// See [`AT_ROOT`].
pub const IN_GIT_DIR: &str = "workspace must not be inside the repository's .git directory";

/// The workspace root for `given` (default [`DEFAULT_WORKSPACE`]), relative to `cwd`,
/// resolved like Python's `Path.resolve()`, then checked (module table).
pub fn managed_root(
    cwd: &Path,
    home: Option<&Path>,
    given: Option<&Path>,
) -> Result<PathBuf, String> {
    let root = resolve(cwd);
    let candidate = given.unwrap_or(Path::new(DEFAULT_WORKSPACE));
    let candidate = resolve(&root.join(candidate));
    check_root(&root, home.map(resolve).as_deref(), &candidate)?;
    Ok(candidate)
}

/// The checks of the module table on resolved paths.
pub fn check_root(root: &Path, home: Option<&Path>, candidate: &Path) -> Result<(), String> {
    if candidate == root {
        return Err(AT_ROOT.to_owned());
    }
    if home == Some(candidate) {
        return Err(AT_HOME.to_owned());
    }
    if !candidate.starts_with(root) {
        return Err(OUTSIDE.to_owned());
    }
    if candidate.starts_with(root.join(".git")) {
        return Err(IN_GIT_DIR.to_owned());
    }
    Ok(())
}

/// `path` (absolute) with its symlinks resolved as far as it exists and `.`/`..` applied,
/// component by component as Python's non-strict `Path.resolve()` does (`link/..` is the
/// parent of the link's target).
pub fn resolve(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if let Ok(real) = std::fs::canonicalize(&out) {
                    out = real;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Why the workspace cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// It holds something codexd did not make: nothing is deleted.
    #[error(
        "{} is not a codexd workspace (it is not empty and has no {MARKER} file): refusing to delete it; choose another --workspace or empty it yourself",
        path.display()
    )]
    Foreign {
        /// The directory.
        path: PathBuf,
    },
    /// A file-system step failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl WorkspaceError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { what, path, source }
    }
}

/// Empties the workspace `root` (upstream's `rm -rf <root>; mkdir -p <root>`) if codexd
/// made it, and marks it (module table).
pub fn prepare(root: &Path) -> Result<(), WorkspaceError> {
    match std::fs::symlink_metadata(root) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(WorkspaceError::io("cannot read", root)(error)),
        Ok(meta) if !meta.is_dir() => {
            return Err(WorkspaceError::Foreign {
                path: root.to_path_buf(),
            });
        }
        Ok(_) => {
            let marked = root.join(MARKER).is_file();
            let empty = std::fs::read_dir(root)
                .map_err(WorkspaceError::io("cannot read", root))?
                .next()
                .is_none();
            if !marked && !empty {
                return Err(WorkspaceError::Foreign {
                    path: root.to_path_buf(),
                });
            }
            std::fs::remove_dir_all(root).map_err(WorkspaceError::io("cannot delete", root))?;
        }
    }
    std::fs::create_dir_all(root).map_err(WorkspaceError::io("cannot create", root))?;
    let marker = root.join(MARKER);
    std::fs::write(
        &marker,
        "made by codexd; `codexd repo clean` empties this directory\n",
    )
    .map_err(WorkspaceError::io("cannot write", &marker))
}

/// The checkout in `root`: its one subdirectory holding a `.git` directory (`repo push`
/// pushes from it, never from `root`: defect 18-e). `Err` says what was found instead.
pub fn find_checkout(root: &Path) -> Result<PathBuf, String> {
    let entries = std::fs::read_dir(root)
        .map_err(|error| format!("cannot read workspace {}: {error}", root.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join(".git").is_dir())
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "no checkout in {}: run `codexd repo run` first",
            root.display()
        )),
        _ => Err(format!(
            "{} checkouts in {}: expected one",
            found.len(),
            root.display()
        )),
    }
}

#[cfg(test)]
#[path = "workspace_tests.rs"]
mod tests;
