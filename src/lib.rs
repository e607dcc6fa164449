//! codexd: hosts OpenAI Codex agents on IRC, one supervised actor subtree per agent.
//!
//! [`run`] is the daemon: bind the control socket, start the Host with its agents, then
//! follow signal events (reload, shutdown) until a graceful, bounded shutdown, telling
//! systemd about each step when it asks ([`notify`]).
#![forbid(unsafe_code)]

pub mod agents;
pub mod cli;
pub mod config;
pub mod control;
pub mod env;
pub mod fdlimit;
pub mod notify;
pub mod preflight;
pub mod signal;
pub mod telemetry;
pub mod transfer;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::SystemTime;

use codexd_actors::agent::AgentSpec;
use codexd_actors::audit::{Audit, AuditService, AuditSettings, AuditWriter};
use codexd_actors::child::{ChildRole, ChildSpec};
use codexd_actors::codex::CodexPool;
use codexd_actors::host::{Host, HostSpec};
use codexd_actors::socket::{AgentSocket, SocketDirectory, StopRequest};
use codexd_actors::webhook::AlertRelay;
use tokio::sync::mpsc;

use crate::agents::ReloadPlan;
use crate::config::{AgentConfig, Config};
use crate::control::{ControlFactory, ControlSocket};
use crate::env::Env;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The control socket could not be bound (another daemon, permissions, …).
    #[error("control socket: {0}")]
    ControlSocket(#[from] control::SocketError),
    /// The Host stopped although nobody asked it to.
    #[error("the supervision tree stopped unexpectedly")]
    HostDied,
    /// Every configured agent failed to start (e.g. another daemon serves their sockets).
    #[error("no agent could start: {0}")]
    NoAgentStarted(String),
    /// The Host actor could not be spawned.
    #[error("cannot start the supervision tree: {0}")]
    Spawn(String),
    /// `telemetry.audit_enabled` is on but the audit log cannot be written.
    #[error("audit log {}: {source}", dir.display())]
    Audit {
        /// `telemetry.audit_dir`.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
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

/// Runs the daemon until `events` asks for shutdown (or closes), or until IPC `shutdown`
/// has stopped every agent. A reload moves OTLP export to the new collector through
/// `telemetry` (inert when telemetry is off); `gauges` (when metrics are exported) are fed
/// from the Host's status while it runs.
pub async fn run(
    config: Config,
    source: ConfigSource,
    mut events: mpsc::Receiver<signal::Event>,
    telemetry: telemetry::Reloader,
    gauges: Option<telemetry::Gauges>,
) -> Result<(), RunError> {
    let socket = ControlSocket::bind(&config.control_socket)?;
    tracing::info!(path = %socket.path().display(), "control socket listening");
    let grace = config.shutdown_grace;
    let (audit, audit_writer) = start_audit(&config)?;
    let (stop, mut stops) = mpsc::channel(STOP_REQUESTS);
    let mut daemon = Daemon {
        agents: BTreeMap::new(),
        stopped: BTreeSet::new(),
        stop,
        grace,
        pool: CodexPool::new(config.codex.agents_per_process, config.restart),
        audit,
        alerts: AlertRelay::default(),
        sockets: SocketDirectory::default(),
        telemetry,
    };
    let wanted: Vec<AgentConfig> = source.selected(&config).into_iter().cloned().collect();
    let mut specs = Vec::new();
    let mut refused = Vec::new();
    for agent in &wanted {
        match daemon.spec(&config, agent) {
            Ok(spec) => specs.push(spec),
            Err(error) => refused.push(error),
        }
    }
    if specs.is_empty() && !refused.is_empty() {
        return Err(RunError::NoAgentStarted(refused.join("; ")));
    }
    let spec = HostSpec {
        services: services(&config, &socket, &daemon),
        agents: specs,
        stop_timeout: grace,
        observer: Some(daemon.alerts.observer(config.restart.window)),
    };
    let (host, mut host_ended) = Host::spawn(spec)
        .await
        .map_err(|e| RunError::Spawn(e.to_string()))?;
    tracing::info!(agents = daemon.agents.len(), "codexd running");
    let refresh = gauges.map(|gauges| gauges.start(host.clone()));
    let settings = notify::Settings::from_env(&source.env, std::process::id());
    let mut service = notify::Service::start(settings, host.clone());
    let mut running = config;

    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(signal::Event::Reload) => {
                    service.reloading();
                    running = daemon.reload(&host, &source, running).await;
                    service.reloaded();
                }
                Some(signal::Event::Shutdown) | None => break,
            },
            Some(request) = stops.recv() => {
                if daemon.stop_agent(&host, &request).await {
                    tracing::info!("every agent was stopped over ipc; codexd exits");
                    break;
                }
            }
            // The Host only ends on shutdown; anything else is a bug worth a non-zero exit.
            _ = &mut host_ended => return Err(RunError::HostDied),
        }
    }
    tracing::info!(grace_s = grace.as_secs_f64(), "shutting down");
    service.stopping();
    drop(refresh); // the gauges keep their last values for the final export
    host.shutdown(grace).await;
    drop(daemon);
    if let Some(writer) = audit_writer {
        writer.finish(grace).await;
    }
    drop(socket);
    tracing::info!("codexd stopped");
    Ok(())
}

/// The audit log: its files and writer when `telemetry.audit_enabled` (fixed at start,
/// like the codex pool), else only the live tap `codexd watch` follows.
fn start_audit(config: &Config) -> Result<(Audit, Option<AuditWriter>), RunError> {
    let audit = &config.telemetry.audit;
    let clock = std::sync::Arc::new(SystemTime::now);
    if !audit.enabled {
        return Ok((codexd_actors::audit::live(&config.server.name, clock), None));
    }
    let settings = AuditSettings {
        dir: audit.dir.clone(),
        server: config.server.name.clone(),
        max_file_bytes: audit.max_file_bytes,
        rotate_utc_midnight: audit.rotate_utc_midnight,
        queue_depth: audit.queue_depth,
    };
    let (handle, writer) =
        codexd_actors::audit::start(settings, clock).map_err(|source| RunError::Audit {
            dir: audit.dir.clone(),
            source,
        })?;
    tracing::info!(dir = %audit.dir.display(), "audit log on");
    Ok((handle, Some(writer)))
}

/// The Host's services (control socket, codex pool, the audit log's status when it writes
/// files), under the daemon's `restart:` policy, so `restart: {health_interval: …}` paces
/// their health pings too.
fn services(config: &Config, socket: &ControlSocket, daemon: &Daemon) -> Vec<ChildSpec> {
    let service =
        |name: &str, factory: std::sync::Arc<dyn codexd_actors::child::ChildFactory>| ChildSpec {
            name: name.to_owned(),
            role: ChildRole::Service,
            policy: config.restart,
            factory,
        };
    vec![
        service(
            "control",
            std::sync::Arc::new(ControlFactory::new(
                socket.listener(),
                daemon.audit.clone(),
                daemon.sockets.clone(),
            )),
        ),
        daemon
            .pool
            .service(config.restart, config.shutdown_grace / 2),
    ]
    .into_iter()
    .chain(daemon.audit.writes_files().then(|| {
        service(
            "audit",
            std::sync::Arc::new(AuditService::new(daemon.audit.clone())),
        )
    }))
    .collect()
}

/// IPC stop requests waiting for the daemon (one per agent is plenty).
const STOP_REQUESTS: usize = 64;

/// What the daemon keeps per running agent beyond the Host: its bound IPC socket (reused
/// when a reload restarts the agent) and the agents stopped over IPC.
struct Daemon {
    /// Running agents and their sockets (`None` when `socket` is a test child).
    agents: BTreeMap<String, Option<AgentSocket>>,
    stopped: BTreeSet<String>,
    stop: mpsc::Sender<StopRequest>,
    grace: std::time::Duration,
    /// The codex processes (`codex.agents_per_process`, fixed at start).
    pool: CodexPool,
    /// The audit log (`telemetry.audit_*`, fixed at start) and its live tap.
    audit: Audit,
    /// Every agent's webhook: the Host's alerts about a whole agent go through another's.
    alerts: AlertRelay,
    /// Every agent's socket actor, for the operator's requests.
    sockets: SocketDirectory,
    /// OTLP export's collector settings, applied again on reload.
    telemetry: telemetry::Reloader,
}

impl Daemon {
    /// The agent's tree, binding its IPC socket unless it already holds it. `Err` names
    /// the agent and why it cannot start (its socket is served by another daemon, …).
    fn spec(&mut self, config: &Config, agent: &AgentConfig) -> Result<AgentSpec, String> {
        let socket = match self.agents.get(&agent.nick) {
            Some(Some(socket)) => Some(socket.clone()),
            _ => agents::bind_socket(config, agent).map_err(|error| {
                let message = format!("agent {} not started: ipc socket: {error}", agent.nick);
                tracing::error!(agent.nick = %agent.nick, error = %error, "agent not started: its ipc socket cannot be bound");
                message
            })?,
        };
        self.agents.insert(agent.nick.clone(), socket.clone());
        self.stopped.remove(&agent.nick);
        let wiring = agents::Wiring {
            socket,
            stop: self.stop.clone(),
            pool: self.pool.clone(),
            audit: Some(self.audit.clone()),
            alerts: self.alerts.clone(),
            sockets: self.sockets.clone(),
        };
        Ok(agents::spec(config, agent, self.grace / 2, wiring))
    }

    /// IPC `shutdown`: stops the agent for good (until a reload or restart brings it back).
    /// Returns true when no agent is left.
    async fn stop_agent(&mut self, host: &Host, request: &StopRequest) -> bool {
        let span = request
            .trace
            .follow(tracing::info_span!("codexd.agent.stop", agent.nick = %request.nick));
        let _entered = span.enter();
        match host.remove_agent(&request.nick).await {
            Ok(true) => tracing::info!(agent.nick = %request.nick, "agent stopped over ipc"),
            Ok(false) => return false, // already gone (a second request)
            Err(error) => {
                tracing::error!(agent.nick = %request.nick, error = %error, "could not stop agent");
                return false;
            }
        }
        self.agents.remove(&request.nick);
        self.pool.release(&request.nick);
        self.stopped.insert(request.nick.clone());
        self.agents.is_empty()
    }

    /// SIGHUP: re-read the config; if it is valid, move OTLP export to a changed collector,
    /// start added agents (and those stopped over IPC), stop removed ones and restart changed
    /// ones one by one, leaving the rest untouched; a daemon-level change every agent is
    /// built from (`server`, `webhooks`, …: [`agents::agent_wide_changes`]) restarts every
    /// agent, one by one. What only a daemon restart applies is named in the log. If the
    /// file is not valid, keep running as is. Returns the config now in force.
    async fn reload(&mut self, host: &Host, source: &ConfigSource, current: Config) -> Config {
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
        self.telemetry
            .reload(&loaded.config.telemetry, &source.env)
            .await;
        let running: Vec<AgentConfig> = source
            .selected(&current)
            .into_iter()
            .filter(|a| !self.stopped.contains(&a.nick))
            .cloned()
            .collect();
        let mut plan = ReloadPlan::between(&running, &wanted);
        let agent_wide = agents::agent_wide_changes(&current, &loaded.config);
        if !agent_wide.is_empty() {
            tracing::info!(keys = ?agent_wide, "daemon-level settings every agent is built from changed; restarting the agents one by one");
            for agent in &running {
                let kept = wanted.iter().any(|a| a.nick == agent.nick);
                if kept && !plan.changed.contains(&agent.nick) {
                    plan.changed.push(agent.nick.clone());
                }
            }
        }
        tracing::info!(added = ?plan.added, removed = ?plan.removed, changed = ?plan.changed, "config reloaded");
        for nick in &plan.removed {
            if let Err(error) = host.remove_agent(nick).await {
                tracing::error!(agent.nick = %nick, error = %error, "could not stop agent");
            }
            self.agents.remove(nick);
            self.pool.release(nick);
        }
        // One agent at a time: the others keep answering; each restarted agent's journal
        // keeps what it accepted, and its new runner replays it.
        for agent in wanted
            .iter()
            .filter(|a| plan.added.contains(&a.nick) || plan.changed.contains(&a.nick))
        {
            if plan.changed.contains(&agent.nick) {
                if let Err(error) = host.remove_agent(&agent.nick).await {
                    tracing::error!(agent.nick = %agent.nick, error = %error, "could not stop agent");
                }
            }
            let Ok(spec) = self.spec(&loaded.config, agent) else {
                continue; // logged
            };
            if let Err(error) = host.add_agent(spec).await {
                tracing::error!(agent.nick = %agent.nick, error = %error, "could not start agent");
            }
        }
        loaded.config
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn services_follow_the_daemons_restart_policy() {
        let env = Env::from_pairs([("HOME", "/home/t")]);
        let yaml = "server: {name: spark}\nrestart: {health_interval: 60s, max_restarts: 9}\n";
        let config = config::parse(yaml, &env).expect("valid").config;
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = ControlSocket::bind(&dir.path().join("codexd.sock")).expect("binds");
        let (stop, _) = mpsc::channel(1);
        let daemon = Daemon {
            agents: BTreeMap::new(),
            stopped: BTreeSet::new(),
            stop,
            grace: config.shutdown_grace,
            pool: CodexPool::new(1, config.restart),
            audit: codexd_actors::audit::live("spark", std::sync::Arc::new(SystemTime::now)),
            alerts: AlertRelay::default(),
            sockets: SocketDirectory::default(),
            telemetry: telemetry::Reloader::default(),
        };
        let services = services(&config, &socket, &daemon);
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["control", "codex"]);
        for service in &services {
            assert_eq!(service.policy.health_interval, Duration::from_secs(60));
            assert_eq!(service.policy.max_restarts, 9);
        }
    }
}
