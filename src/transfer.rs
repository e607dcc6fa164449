//! Moving an agent between hosts: `codexd agent export` writes a stopped agent's state and
//! the codex rollouts of its threads into a bundle directory; `codexd agent import` places
//! them on another host, under the same nick or a new one (another server's `<server>-`
//! prefix), so the agent's conversations carry on: its threads keep their ids and codex's
//! `thread/resume` finds their rollouts in the new host's `CODEX_HOME`.
//!
//! The bundle (`--out DIR`, a directory that must not exist; move it with `tar`, `rsync`, …):
//!
//! | path                       | holds                                                     |
//! |----------------------------|-----------------------------------------------------------|
//! | `manifest.json`            | [`Manifest`]: format, nick, server, each thread and its rollout |
//! | `state/…`                  | `<state_dir>/<nick>/` as it was: `threads.json`, `journal/`, `done-msgids`, `channels`, `xdg/`, … |
//! | `codex/sessions/…/rollout-…-<thread>.jsonl` | each thread's rollout, at its path under `CODEX_HOME` |
//!
//! Directories are created 0700 and files 0600, whatever the umask. Interrupted writes
//! (`*.tmp`) and anything that is not a plain file or directory are left behind.
//!
//! | step                          | refused when                                              |
//! |-------------------------------|-----------------------------------------------------------|
//! | export                        | the agent has no state directory; `--out` exists          |
//! | import                        | no `manifest.json` or another format; a path in it leaves the bundle; the agent's state directory exists and is not empty; a rollout exists with other content |
//!
//! Whether the agent is running is asked of the daemon by the command line ([`crate::cli`]).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The bundle format this version writes and reads.
pub const FORMAT: &str = "codexd-agent-bundle/1";
const MANIFEST: &str = "manifest.json";
const STATE: &str = "state";
const CODEX: &str = "codex";

/// What a bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The agent's nick on the host it was exported from.
    pub nick: String,
    /// That host's server name (`server.name`).
    pub server: String,
    /// The agent's codex threads.
    pub threads: Vec<ThreadEntry>,
}

/// One of the agent's threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadEntry {
    /// Its key in `threads.json` (a conversation, `*`, or `thread-id` for an old agent's).
    pub key: String,
    /// The codex thread id.
    pub thread: String,
    /// Its rollout's path under `CODEX_HOME` (and under `codex/` in the bundle); `None`:
    /// codex had none (the thread starts anew on the other host).
    pub rollout: Option<String>,
}

/// Why an export or import was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The agent has never run here (no `<state_dir>/<nick>`).
    #[error("agent '{nick}' has no state in {}", dir.display())]
    NoState {
        /// The agent.
        nick: String,
        /// The directory looked for.
        dir: PathBuf,
    },
    /// The destination is already there.
    #[error("{} already exists{hint}", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
        /// What to do about it.
        hint: &'static str,
    },
    /// The bundle cannot be used.
    #[error("{}: not an agent bundle: {reason}", path.display())]
    BadBundle {
        /// The bundle (or the file in it).
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A rollout on this host has the same path and other content.
    #[error("rollout {} exists with other content; the thread is on this host already", path.display())]
    RolloutClash {
        /// The rollout's path.
        path: PathBuf,
    },
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> TransferError + '_ {
    move |source| TransferError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes the bundle of agent `nick` of server `server` from `state_dir` and `codex_home`
/// into `out` (which must not exist).
pub fn export(
    state_dir: &Path,
    nick: &str,
    server: &str,
    codex_home: &Path,
    out: &Path,
) -> Result<Manifest, TransferError> {
    let agent_dir = state_dir.join(nick);
    if !agent_dir.is_dir() {
        return Err(TransferError::NoState {
            nick: nick.to_owned(),
            dir: agent_dir,
        });
    }
    if out.exists() {
        return Err(TransferError::Exists {
            path: out.to_owned(),
            hint: ": choose a new --out directory",
        });
    }
    private_dir(out)?;
    copy_tree(&agent_dir, &out.join(STATE))?;
    let mut threads = Vec::new();
    for (key, thread) in thread_ids(&agent_dir)? {
        let rollout = find_rollout(&codex_home.join("sessions"), &thread)?;
        let relative = match rollout {
            Some(path) => {
                let relative = path.strip_prefix(codex_home).unwrap_or(&path).to_owned();
                copy_file(&path, &out.join(CODEX).join(&relative))?;
                Some(relative.to_string_lossy().into_owned())
            }
            None => None,
        };
        threads.push(ThreadEntry {
            key,
            thread,
            rollout: relative,
        });
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        nick: nick.to_owned(),
        server: server.to_owned(),
        threads,
    };
    let text = serde_json::to_string_pretty(&manifest).expect("a manifest serializes");
    write_private(&out.join(MANIFEST), text.as_bytes())?;
    Ok(manifest)
}

/// Reads a bundle's manifest.
pub fn read_manifest(bundle: &Path) -> Result<Manifest, TransferError> {
    let path = bundle.join(MANIFEST);
    let bad = |reason: String| TransferError::BadBundle {
        path: path.clone(),
        reason,
    };
    let text = fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "format '{}', this codexd reads '{FORMAT}'",
            manifest.format
        )));
    }
    for rollout in manifest.threads.iter().filter_map(|t| t.rollout.as_deref()) {
        if !stays_inside(rollout) {
            return Err(bad(format!("rollout path '{rollout}' leaves the bundle")));
        }
    }
    Ok(manifest)
}

/// Places `bundle` on this host as agent `nick`: its state in `<state_dir>/<nick>`, its
/// rollouts under `codex_home`. Nothing is written when a check fails.
pub fn import(
    bundle: &Path,
    state_dir: &Path,
    nick: &str,
    codex_home: &Path,
) -> Result<Manifest, TransferError> {
    let manifest = read_manifest(bundle)?;
    let state = bundle.join(STATE);
    if !state.is_dir() {
        return Err(TransferError::BadBundle {
            path: state,
            reason: "no state directory".to_owned(),
        });
    }
    let agent_dir = state_dir.join(nick);
    if fs::read_dir(&agent_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(TransferError::Exists {
            path: agent_dir,
            hint: ": the agent has state on this host already (import it under another nick with --as, or remove it)",
        });
    }
    let mut rollouts = Vec::new();
    for rollout in manifest.threads.iter().filter_map(|t| t.rollout.as_deref()) {
        let from = bundle.join(CODEX).join(rollout);
        let to = codex_home.join(rollout);
        let content = fs::read(&from).map_err(io_at(&from))?;
        match fs::read(&to) {
            Ok(existing) if existing == content => continue,
            Ok(_) => return Err(TransferError::RolloutClash { path: to }),
            Err(_) => rollouts.push((content, to)),
        }
    }
    private_dir(state_dir)?;
    copy_tree(&state, &agent_dir)?;
    for (content, to) in rollouts {
        if let Some(parent) = to.parent() {
            private_dir(parent)?;
        }
        write_private(&to, &content)?;
    }
    Ok(manifest)
}

/// The agent's threads: `threads.json`'s (key, thread id) pairs, and an old agent's
/// `thread-id`.
fn thread_ids(agent_dir: &Path) -> Result<Vec<(String, String)>, TransferError> {
    let mut ids = Vec::new();
    let book = agent_dir.join("threads.json");
    match fs::read_to_string(&book) {
        Ok(text) => {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| TransferError::BadBundle {
                    path: book.clone(),
                    reason: e.to_string(),
                })?;
            let threads = value["threads"].as_object().into_iter().flatten();
            for (key, record) in threads {
                if let Some(thread) = record["thread"].as_str() {
                    ids.push((key.clone(), thread.to_owned()));
                }
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_at(&book)(error)),
    }
    if let Ok(legacy) = fs::read_to_string(agent_dir.join("thread-id")) {
        let thread = legacy.trim();
        if !thread.is_empty() {
            ids.push(("thread-id".to_owned(), thread.to_owned()));
        }
    }
    Ok(ids)
}

/// The rollout of `thread` under `sessions` (`YYYY/MM/DD/rollout-<time>-<thread>.jsonl`).
fn find_rollout(sessions: &Path, thread: &str) -> Result<Option<PathBuf>, TransferError> {
    let suffix = format!("-{thread}.jsonl");
    let Ok(entries) = fs::read_dir(sessions) else {
        return Ok(None);
    };
    for entry in entries {
        let entry = entry.map_err(io_at(sessions))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_at(&path))?;
        if kind.is_dir() {
            if let Some(found) = find_rollout(&path, thread)? {
                return Ok(Some(found));
            }
        } else if kind.is_file() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("rollout-") && name.ends_with(&suffix) {
                return Ok(Some(path));
            }
        }
    }
    Ok(None)
}

/// Whether a relative path from a manifest stays inside the directory it is joined to.
///
/// | path                          | inside |
/// |-------------------------------|--------|
/// | `sessions/2026/11/21/r.jsonl` | yes    |
/// | `../etc/passwd`               | no     |
/// | `/etc/passwd`                 | no     |
/// | `` (empty)                    | no     |
pub fn stays_inside(path: &str) -> bool {
    let path = Path::new(path);
    path.components().next().is_some()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Copies the plain files and directories of `from` into `to` (created), leaving `*.tmp`.
fn copy_tree(from: &Path, to: &Path) -> Result<(), TransferError> {
    private_dir(to)?;
    for entry in fs::read_dir(from).map_err(io_at(from))? {
        let entry = entry.map_err(io_at(from))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_at(&path))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&path, &target)?;
        } else if kind.is_file() && path.extension().is_none_or(|e| e != "tmp") {
            copy_file(&path, &target)?;
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), TransferError> {
    let content = fs::read(from).map_err(io_at(from))?;
    if let Some(parent) = to.parent() {
        private_dir(parent)?;
    }
    write_private(to, &content)
}

/// `mkdir -p`, each directory it creates 0700 (and `dir` itself made 0700).
fn private_dir(dir: &Path) -> Result<(), TransferError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_at(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_at(dir))
}

/// Writes a new file 0600 and syncs it.
fn write_private(path: &Path, content: &[u8]) -> Result<(), TransferError> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_at(path))?;
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_at(path))?;
    file.write_all(content).map_err(io_at(path))?;
    file.sync_all().map_err(io_at(path))
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
