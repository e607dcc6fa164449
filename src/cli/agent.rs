//! `codexd agent export | import`: move an agent between hosts ([`crate::transfer`]).
//!
//! | command                                          | refused (exit 1) when                    |
//! |--------------------------------------------------|------------------------------------------|
//! | `agent export <nick> --out DIR [--config P]`     | the nick is not in the config; the daemon answers with the agent running; no state; DIR exists |
//! | `agent import DIR [--as NICK] [--config P]`      | the nick (the bundle's, or NICK) is not in this host's config; the daemon answers with it running; a bad bundle; state already there |
//!
//! The agent must not run while it moves: stop the daemon, or run it without the agent
//! (`codexd run --agent <others>`). A config that cannot be loaded exits 78, a file that
//! cannot be read or written 70.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{REQUEST_TIMEOUT, config_path, exit, fail, load_config, load_config_error};
use crate::config::{AgentConfig, Config};
use crate::control::{self, Request, Response};
use crate::env::Env;
use crate::transfer::{self, TransferError};

/// `codexd agent …`.
#[derive(Debug, clap::Subcommand)]
pub enum AgentAction {
    /// Write a stopped agent's state (journal, threads, channels) and the codex rollouts of
    /// its threads into a new directory, to import on another host.
    Export {
        /// The agent's nick.
        nick: String,
        /// The bundle directory to create (must not exist).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Config file [default: as for `run`].
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Place an exported agent on this host (its state under state_dir, its rollouts in
    /// its CODEX_HOME), under its nick or a new one in this host's config.
    Import {
        /// The bundle directory written by `codexd agent export`.
        bundle: PathBuf,
        /// The agent's nick on this host (another server's prefix, e.g. `other-a`).
        #[arg(long = "as", value_name = "NICK")]
        as_nick: Option<String>,
        /// Config file [default: as for `run`].
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Runs `codexd agent …`.
pub async fn run(action: AgentAction, env: &Env) -> ExitCode {
    match action {
        AgentAction::Export { nick, out, config } => {
            let Some((config, agent)) = agent_of(config.as_deref(), &nick, env) else {
                return ExitCode::from(exit::INPUT);
            };
            if let Err(code) = refuse_running(&config, &nick).await {
                return code;
            }
            let home = codex_home(&agent, env);
            match transfer::export(&config.state_dir, &nick, &config.server.name, &home, &out) {
                Ok(manifest) => {
                    println!(
                        "exported {nick} ({} thread(s), {} rollout(s)) to {}",
                        manifest.threads.len(),
                        manifest
                            .threads
                            .iter()
                            .filter(|t| t.rollout.is_some())
                            .count(),
                        out.display()
                    );
                    ExitCode::from(exit::OK)
                }
                Err(error) => transfer_failed(&error),
            }
        }
        AgentAction::Import {
            bundle,
            as_nick,
            config,
        } => {
            let manifest = match transfer::read_manifest(&bundle) {
                Ok(manifest) => manifest,
                Err(error) => return transfer_failed(&error),
            };
            let nick = as_nick.unwrap_or_else(|| manifest.nick.clone());
            let Some((config, agent)) = agent_of(config.as_deref(), &nick, env) else {
                return ExitCode::from(exit::INPUT);
            };
            if let Err(code) = refuse_running(&config, &nick).await {
                return code;
            }
            let home = codex_home(&agent, env);
            match transfer::import(&bundle, &config.state_dir, &nick, &home) {
                Ok(manifest) => {
                    println!(
                        "imported {} (server {}) as {nick} (server {}): {} thread(s)",
                        manifest.nick,
                        manifest.server,
                        config.server.name,
                        manifest.threads.len()
                    );
                    ExitCode::from(exit::OK)
                }
                Err(error) => transfer_failed(&error),
            }
        }
    }
}

/// The config and the agent `nick` in it; `None` after printing why not (the exit code is
/// then [`exit::INPUT`] for an unknown nick; a config error has printed its own hints).
fn agent_of(flag: Option<&Path>, nick: &str, env: &Env) -> Option<(Config, AgentConfig)> {
    let path = match config_path(flag, env) {
        Ok(path) => path,
        Err(error) => {
            load_config_error(error);
            return None;
        }
    };
    let loaded = load_config(&path, env).ok()?;
    let Some(agent) = loaded.config.agent(nick).cloned() else {
        fail(
            exit::INPUT,
            &[format!(
                "agent '{nick}' was not found in '{}' (add it to this host's config first)",
                path.display()
            )],
        );
        return None;
    };
    Some((loaded.config, agent))
}

/// Refuses while the daemon on `config.control_socket` runs agent `nick`.
async fn refuse_running(config: &Config, nick: &str) -> Result<(), ExitCode> {
    let request = Request::Status {
        nick: Some(nick.to_owned()),
    };
    match control::request(&config.control_socket, &request, REQUEST_TIMEOUT).await {
        Ok(Response { ok: true, .. }) => Err(fail(
            exit::INPUT,
            &[
                format!(
                    "agent '{nick}' is running in the daemon on {}",
                    config.control_socket.display()
                ),
                "stop the daemon, or run it without this agent (codexd run --agent <others>)"
                    .to_owned(),
            ],
        )),
        Ok(_) | Err(_) => Ok(()),
    }
}

/// The agent's `CODEX_HOME`: its `codex.env`, else the environment's, else `~/.codex`.
fn codex_home(agent: &AgentConfig, env: &Env) -> PathBuf {
    if let Some(home) = agent.codex.env.get("CODEX_HOME") {
        return PathBuf::from(home);
    }
    if let Some(home) = env.var("CODEX_HOME") {
        return PathBuf::from(home);
    }
    env.home().unwrap_or_default().join(".codex")
}

/// Prints why; what the operator can fix exits 1, a file error 70.
fn transfer_failed(error: &TransferError) -> ExitCode {
    let code = match error {
        TransferError::Io { .. } => exit::SOFTWARE,
        TransferError::NoState { .. }
        | TransferError::Exists { .. }
        | TransferError::BadBundle { .. }
        | TransferError::RolloutClash { .. } => exit::INPUT,
    };
    fail(code, &[error.to_string()])
}
