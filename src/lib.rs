//! codexd: hosts OpenAI Codex agents on IRC, one supervised actor subtree per agent.
//!
//! [`run`] is the daemon: bind the control socket, start the Host with its agents, then
//! follow signal events (reload, shutdown) until a graceful, bounded shutdown.
#![forbid(unsafe_code)]

pub mod agents;
pub mod cli;
pub mod config;
pub mod control;
pub mod env;
pub mod signal;
pub mod telemetry;

use std::path::PathBuf;

use codexd_actors::child::{ChildRole, ChildSpec};
use codexd_actors::host::{Host, HostSpec};
use codexd_actors::restart::RestartPolicy;
use tokio::sync::mpsc;

use crate::agents::ReloadPlan;
use crate::config::{AgentConfig, Config};
use crate::control::{ControlFactory, ControlSocket};
use crate::env::Env;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The control socket could not be bound (another daemon, permissions, …).
    #[error(transparent)]
    ControlSocket(#[from] control::SocketError),
    /// The Host stopped although nobody asked it to.
    #[error("the supervision tree stopped unexpectedly")]
    HostDied,
    /// The Host actor could not be spawned.
    #[error("cannot start the supervision tree: {0}")]
    Spawn(String),
}

/// Where the configuration came from, so SIGHUP can read it again.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The config file.
    pub path: PathBuf,
    /// The environment it was resolved in.
    pub env: Env,
    /// `--agent` selection; empty means every agent.
    pub only: Vec<String>,
}

impl ConfigSource {
    /// The agents of `config` this daemon runs.
    pub fn selected<'a>(&self, config: &'a Config) -> Vec<&'a AgentConfig> {
        config
            .agents
            .iter()
            .filter(|a| self.only.is_empty() || self.only.contains(&a.nick))
            .collect()
    }
}

/// Runs the daemon until `events` asks for shutdown (or closes).
pub async fn run(
    config: Config,
    source: ConfigSource,
    mut events: mpsc::Receiver<signal::Event>,
) -> Result<(), RunError> {
    let socket = ControlSocket::bind(&config.control_socket)?;
    tracing::info!(path = %socket.path().display(), "control socket listening");
    let agents: Vec<AgentConfig> = source.selected(&config).into_iter().cloned().collect();
    let grace = config.shutdown_grace;
    let control = ChildSpec {
        name: "control".to_owned(),
        role: ChildRole::Service,
        policy: RestartPolicy::default(),
        factory: std::sync::Arc::new(ControlFactory::new(socket.listener())),
    };
    let spec = HostSpec {
        services: vec![control],
        agents: agents
            .iter()
            .map(|a| agents::spec(&config, a, grace / 2))
            .collect(),
        stop_timeout: grace,
    };
    let (host, mut host_ended) = Host::spawn(spec)
        .await
        .map_err(|e| RunError::Spawn(e.to_string()))?;
    tracing::info!(agents = agents.len(), "codexd running");
    let mut running = config;

    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(signal::Event::Reload) => running = reload(&host, &source, running, grace).await,
                Some(signal::Event::Shutdown) | None => break,
            },
            // The Host only ends on shutdown; anything else is a bug worth a non-zero exit.
            _ = &mut host_ended => return Err(RunError::HostDied),
        }
    }
    tracing::info!(grace_s = grace.as_secs_f64(), "shutting down");
    host.shutdown(grace).await;
    drop(socket);
    tracing::info!("codexd stopped");
    Ok(())
}

/// SIGHUP: re-read the config; if it is valid, start added agents, stop removed ones and
/// restart changed ones, leaving the rest untouched. If it is not, keep running as is.
/// Returns the config now in force.
async fn reload(
    host: &Host,
    source: &ConfigSource,
    current: Config,
    grace: std::time::Duration,
) -> Config {
    let loaded = match config::load(&source.path, &source.env) {
        Ok(loaded) => loaded,
        Err(error) => {
            tracing::error!(path = %source.path.display(), "config reload rejected; keeping the running config");
            for line in error.to_string().lines() {
                tracing::error!(path = %source.path.display(), "{line}");
            }
            return current;
        }
    };
    for warning in &loaded.warnings {
        tracing::warn!(key = %warning.path, "{}", warning.message);
    }
    let wanted: Vec<AgentConfig> = source
        .selected(&loaded.config)
        .into_iter()
        .cloned()
        .collect();
    let needs_restart = agents::restart_only_changes(&current, &loaded.config);
    if !needs_restart.is_empty() {
        tracing::warn!(keys = ?needs_restart, "these settings changed but take effect only when codexd restarts");
    }
    let running: Vec<AgentConfig> = source.selected(&current).into_iter().cloned().collect();
    let plan = ReloadPlan::between(&running, &wanted);
    tracing::info!(added = ?plan.added, removed = ?plan.removed, changed = ?plan.changed, "config reloaded");
    for nick in plan.removed.iter().chain(&plan.changed) {
        if let Err(error) = host.remove_agent(nick).await {
            tracing::error!(agent.nick = %nick, error = %error, "could not stop agent");
        }
    }
    for agent in wanted
        .iter()
        .filter(|a| plan.added.contains(&a.nick) || plan.changed.contains(&a.nick))
    {
        if let Err(error) = host
            .add_agent(agents::spec(&current, agent, grace / 2))
            .await
        {
            tracing::error!(agent.nick = %agent.nick, error = %error, "could not start agent");
        }
    }
    loaded.config
}
