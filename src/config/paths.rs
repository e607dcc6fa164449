//! Paths in the config: `~` expansion through the injected [`Env`], and the defaults of
//! `state_dir`, `control_socket`, `ipc_dir` and `pid_dir`.
//!
//! | key              | default                                                           |
//! |------------------|-------------------------------------------------------------------|
//! | `state_dir`      | `~/.culture/codexd`                                               |
//! | `control_socket` | `$XDG_RUNTIME_DIR/codexd.sock`, else `~/.culture/run/codexd.sock` |
//! | `ipc_dir`        | `$XDG_RUNTIME_DIR`, else `~/.culture/run` (Culture's clients look there) |
//! | `pid_dir`        | `~/.culture/pids` (Culture's `PID_DIR`, where its CLI looks)       |
//!
//! A leading `~` or `~/` is replaced by `$HOME`; when `$HOME` is unset that is an error naming
//! the key. Relative paths stay relative (to the daemon's working directory).

use std::path::PathBuf;

use super::names;
use super::reader::{Node, Report, quote};
use super::types::IpcDir;
use crate::env::Env;

/// codexd's own config file, under `$XDG_CONFIG_HOME` (else `~/.config`).
pub(super) const OWN_CONFIG: &str = "codexd/config.yaml";
/// Culture 14's manifest (its CLI's default `--config`).
pub(super) const MANIFEST_CONFIG: &str = "~/.culture/server.yaml";
/// Culture's legacy config file (migrated in place by Culture's CLI).
pub(super) const LEGACY_CONFIG: &str = "~/.culture/agents.yaml";
/// Where journals and thread ids live unless `state_dir` says otherwise.
pub(super) const DEFAULT_STATE_DIR: &str = "~/.culture/codexd";
/// Where each agent's `agent-<nick>.pid` goes unless `pid_dir` says otherwise.
pub(super) const DEFAULT_PID_DIR: &str = "~/.culture/pids";
/// The control socket's file name.
pub(super) const CONTROL_SOCKET_NAME: &str = "codexd.sock";
/// The control socket's directory when `$XDG_RUNTIME_DIR` is unset.
pub(super) const FALLBACK_RUNTIME_DIR: &str = "~/.culture/run";

/// The path at `node`, `~` expanded; `None` when absent, null or wrong (reported).
pub(super) fn path(node: &Node<'_>, env: &Env, report: &mut Report) -> Option<PathBuf> {
    let text = node.string(report)?;
    let problem = match text.is_empty() {
        true => Some("must not be empty".to_owned()),
        false => names::nul(text),
    };
    if let Some(problem) = problem {
        report.error(node.at(), problem);
        return None;
    }
    expand(node, text, env, report)
}

/// `text` with `~` expanded, or an error at `node` when it needs an unset `$HOME`.
pub(super) fn expand(
    node: &Node<'_>,
    text: &str,
    env: &Env,
    report: &mut Report,
) -> Option<PathBuf> {
    let expanded = env.expand_tilde(text);
    if expanded.is_none() {
        report.error(
            node.at(),
            format!("{} starts with \"~\" but HOME is unset", quote(text)),
        );
    }
    expanded
}

/// `state_dir`: the configured path, else `~/.culture/codexd`.
pub(super) fn state_dir(node: &Node<'_>, env: &Env, report: &mut Report) -> PathBuf {
    if node.given().is_some() {
        return path(node, env, report).unwrap_or_default();
    }
    under_home(node, DEFAULT_STATE_DIR, env, report)
}

/// `pid_dir`: the configured directory, else `~/.culture/pids`.
pub(super) fn pid_dir(node: &Node<'_>, env: &Env, report: &mut Report) -> PathBuf {
    if node.given().is_some() {
        return path(node, env, report).unwrap_or_default();
    }
    under_home(node, DEFAULT_PID_DIR, env, report)
}

/// `control_socket`: the configured path, else `$XDG_RUNTIME_DIR/codexd.sock`, else
/// `~/.culture/run/codexd.sock`.
pub(super) fn control_socket(node: &Node<'_>, env: &Env, report: &mut Report) -> PathBuf {
    if node.given().is_some() {
        return path(node, env, report).unwrap_or_default();
    }
    match env.var("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join(CONTROL_SOCKET_NAME),
        None => under_home(
            node,
            &format!("{FALLBACK_RUNTIME_DIR}/{CONTROL_SOCKET_NAME}"),
            env,
            report,
        ),
    }
}

/// `ipc_dir`: the configured directory, else `$XDG_RUNTIME_DIR`, else `~/.culture/run`
/// (Culture's rule; only that fallback is forced to 0700 when it exists).
pub(super) fn ipc_dir(node: &Node<'_>, env: &Env, report: &mut Report) -> IpcDir {
    if node.given().is_some() {
        let path = path(node, env, report).unwrap_or_default();
        return IpcDir {
            path,
            private: false,
        };
    }
    match env.var("XDG_RUNTIME_DIR") {
        Some(dir) => IpcDir {
            path: PathBuf::from(dir),
            private: false,
        },
        None => IpcDir {
            path: under_home(node, FALLBACK_RUNTIME_DIR, env, report),
            private: true,
        },
    }
}

/// A `~/...` default, or an error at `node` (whose key would have avoided it) without HOME.
fn under_home(node: &Node<'_>, default: &str, env: &Env, report: &mut Report) -> PathBuf {
    env.expand_tilde(default).unwrap_or_else(|| {
        let message = format!(
            "the default {} needs HOME, which is unset; set HOME or this key",
            quote(default)
        );
        report.error(node.at(), message);
        PathBuf::new()
    })
}
