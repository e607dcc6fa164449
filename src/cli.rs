//! The command line: `codexd run | check-config | status | reset | fault`. Every failure
//! prints at least one `hint:` line on stderr and exits with a documented code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use codexd_actors::host::HostStatus;

use crate::config::{self, Config, ConfigError, Loaded};
use crate::control::{self, ErrorCode, Request, Response};
use crate::env::Env;
use crate::telemetry::LogFormat;

/// Exit codes (also in README.md).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// User input error: unknown agent, child or fault kind.
    pub const INPUT: u8 = 1;
    /// Configuration or environment error (bad or unreadable config, control socket in use,
    /// every IPC socket served elsewhere, bad OTEL_* value): sysexits' `EX_CONFIG`, so a
    /// service manager can tell it from a crash (`RestartPreventExitStatus=78`).
    pub const CONFIG: u8 = 78;
    /// Internal failure (the async runtime or signal handlers cannot start, the supervision
    /// tree died): sysexits' `EX_SOFTWARE`; worth a restart.
    pub const SOFTWARE: u8 = 70;
    /// The daemon could not be reached (not running, not answering).
    pub const UNREACHABLE: u8 = 3;
}

/// How long the CLI waits for the daemon's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// codexd — hosts OpenAI Codex agents on IRC.
#[derive(Debug, Parser)]
#[command(name = "codexd", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "human")]
    pub log_format: LogFormat,
    /// What to do (none: print help).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (all agents, or the ones named with --agent).
    Run {
        /// Config file [default: $CODEXD_CONFIG, else ~/.config/codexd/config.yaml, ~/.culture/server.yaml, ~/.culture/agents.yaml: the first that exists].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run only this agent (repeatable).
        #[arg(long = "agent", value_name = "NICK")]
        agents: Vec<String>,
    },
    /// Validate a config file, check that this machine can run it (agent directories, the
    /// codex binary and its version, the server's host, writable state and socket
    /// directories) and print a summary of its agents.
    CheckConfig {
        /// Config file [default: $CODEXD_CONFIG, else ~/.config/codexd/config.yaml, ~/.culture/server.yaml, ~/.culture/agents.yaml: the first that exists].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Validate the file only: no file system, codex or DNS checks (CI, other machines).
        #[arg(long)]
        no_preflight: bool,
    },
    /// Show the running daemon's supervision tree.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Close the circuit of an agent's child (or of the agent and all its children), or of a
    /// codex process (`codexd reset codex process-<n>`).
    Reset {
        /// The agent's nick, or `codex` for the codex service.
        nick: String,
        /// The child (irc, socket, runner, …, or process-<n>); omit to reset them all.
        child: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Break a child on purpose: panic, error, hang, hang:<seconds>, or a child's own fault
    /// (irc disconnect, runner kill, webhook blackhole, codex process-<n> kill).
    Fault {
        /// The agent's nick, or `codex` for the codex service.
        nick: String,
        /// The child (irc, socket, runner, …, or process-<n>).
        child: String,
        /// panic | error | hang | hang:<seconds> | disconnect | kill | blackhole
        kind: String,
        #[command(flatten)]
        target: Target,
    },
}

/// How the client commands find the daemon.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Control socket [default: control_socket from the config].
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Config file whose control_socket to use.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Prints `hint:` lines and returns `code`.
pub fn fail(code: u8, lines: &[String]) -> ExitCode {
    for line in lines {
        eprintln!("hint: {line}");
    }
    ExitCode::from(code)
}

/// The exit code of a daemon that could not run: what the operator must fix (the control
/// socket or every agent's IPC socket is another process's, the audit log cannot be
/// written) is [`exit::CONFIG`], so systemd
/// does not restart into the same wall; a tree that died is [`exit::SOFTWARE`], worth a restart.
pub fn run_error_code(error: &crate::RunError) -> u8 {
    match error {
        crate::RunError::ControlSocket(_)
        | crate::RunError::NoAgentStarted(_)
        | crate::RunError::Audit { .. } => exit::CONFIG,
        crate::RunError::HostDied | crate::RunError::Spawn(_) => exit::SOFTWARE,
    }
}

/// Resolves `--config`, `$CODEXD_CONFIG` or the default path.
pub fn config_path(flag: Option<&Path>, env: &Env) -> Result<PathBuf, ConfigError> {
    let Some(path) = flag else {
        return config::default_path(env, &|path| path.exists());
    };
    // A quoted `--config '~/x'` reaches us unexpanded; expand it like the config's own paths.
    match path.to_str().map(|p| env.expand_tilde(p)) {
        Some(Some(expanded)) => Ok(expanded),
        _ => Ok(path.to_owned()),
    }
}

/// Loads a config, printing its warnings; on failure prints every error and returns the exit code.
pub fn load_config(path: &Path, env: &Env) -> Result<Loaded, ExitCode> {
    match config::load(path, env) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            Ok(loaded)
        }
        Err(ConfigError::Invalid { errors }) => {
            for error in &errors {
                eprintln!("error: {error}");
            }
            Err(fail(
                exit::CONFIG,
                &[format!(
                    "{} has {} error(s); nothing was started",
                    path.display(),
                    errors.len()
                )],
            ))
        }
        Err(error) => Err(fail(
            exit::CONFIG,
            &[format!(
                "failed to load config '{}': {error}",
                path.display()
            )],
        )),
    }
}

/// `codexd check-config`: the file, then (unless `preflight` is false) the machine.
/// Preflight errors exit like config errors; warnings do not change the exit code.
pub async fn check_config(path: &Path, env: &Env, preflight: bool) -> ExitCode {
    let loaded = match load_config(path, env) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if !preflight {
        print!("{}", summary(path, &loaded.config));
        return ExitCode::from(exit::OK);
    }
    let found = crate::preflight::check(&loaded.config, env).await;
    for warning in &found.warnings {
        eprintln!("warning: {warning}");
    }
    for error in &found.errors {
        eprintln!("error: {error}");
    }
    if !found.errors.is_empty() {
        return fail(
            exit::CONFIG,
            &[format!(
                "{} is valid, but preflight found {} problem(s) on this machine \
                 (--no-preflight checks the file only)",
                path.display(),
                found.errors.len()
            )],
        );
    }
    print!("{}", summary(path, &loaded.config));
    for (key, binary, version) in &found.codex_versions {
        println!("{key} {}: codex {version}", binary.display());
    }
    ExitCode::from(exit::OK)
}

/// The human summary `check-config` prints.
pub fn summary(path: &Path, config: &Config) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let agents = config.agents.len();
    let _ = writeln!(out, "{}: valid, {agents} agent(s)", path.display());
    let _ = writeln!(
        out,
        "server {}:{} (name {})",
        config.server.host, config.server.port, config.server.name
    );
    let _ = writeln!(out, "control socket {}", config.control_socket.display());
    let telemetry = if config.telemetry.enabled {
        "on"
    } else {
        "off"
    };
    let _ = writeln!(out, "telemetry {telemetry}");
    for agent in &config.agents {
        let children = if agent.test_children.is_empty() {
            "-".to_owned()
        } else {
            format!("{} (test)", agent.test_children.join(","))
        };
        let _ = writeln!(
            out,
            "agent {}  model {}  channels {}  directory {}  children {children}",
            agent.nick,
            agent.model,
            agent.channels.join(","),
            agent.directory.display()
        );
    }
    out
}

/// The socket a client command talks to: `--socket`, else the config's `control_socket`,
/// else the default (what an empty config resolves to).
pub fn socket_path(target: &Target, env: &Env) -> Result<PathBuf, ExitCode> {
    if let Some(socket) = &target.socket {
        return Ok(socket.clone());
    }
    let path = config_path(target.config.as_deref(), env)
        .map_err(|e| fail(exit::CONFIG, &[e.to_string()]))?;
    let loaded = if path.exists() || target.config.is_some() {
        config::load(&path, env)
    } else {
        config::parse("", env)
    };
    match loaded {
        Ok(loaded) => Ok(loaded.config.control_socket),
        Err(error) => Err(fail(
            exit::CONFIG,
            &[
                format!(
                    "cannot find the control socket: config '{}': {error}",
                    path.display()
                ),
                "pass --socket PATH".to_owned(),
            ],
        )),
    }
}

/// Sends one request and maps the answer to an exit code; `on_ok` prints a success.
pub async fn ask(
    socket: &Path,
    request: Request,
    on_ok: impl FnOnce(Option<serde_json::Value>),
) -> ExitCode {
    match control::request(socket, &request, REQUEST_TIMEOUT).await {
        Ok(Response { ok: true, data, .. }) => {
            on_ok(data);
            ExitCode::from(exit::OK)
        }
        Ok(Response { code, error, .. }) => {
            let code = match code {
                Some(
                    ErrorCode::NoSuchChild
                    | ErrorCode::NotRunning
                    | ErrorCode::UnknownFault
                    | ErrorCode::BadRequest,
                ) => exit::INPUT,
                Some(ErrorCode::Unresponsive) | None => exit::UNREACHABLE,
            };
            fail(
                code,
                &[error.unwrap_or_else(|| "the daemon refused the request".to_owned())],
            )
        }
        Err(error) => fail(
            exit::UNREACHABLE,
            &[
                error.to_string(),
                "is `codexd run` running with the same control_socket?".to_owned(),
            ],
        ),
    }
}

/// Renders the status tree as a table.
pub fn status_table(status: &HostStatus) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<24} {:<13} {:<9} {:>8}  {}\n",
        "AGENT/CHILD", "STATE", "CIRCUIT", "RESTARTS", "LAST ERROR / DETAIL"
    );
    let row = |out: &mut String, name: String, s: &codexd_actors::child::ChildStatus| {
        let state = serde_json::to_value(s.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        // A running child's own summary (irc: "connected host:port as nick in #a,#b").
        let summary = s
            .detail
            .as_ref()
            .and_then(|d| d.get("summary"))
            .and_then(|v| v.as_str());
        let error = match (s.last_error.as_deref(), summary) {
            (Some(error), Some(summary)) => format!("{error}; now {summary}"),
            (Some(error), None) => error.to_owned(),
            (None, Some(summary)) => summary.to_owned(),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "{name:<24} {state:<13} {:<9} {:>8}  {error}",
            s.circuit, s.restarts
        );
    };
    for agent in &status.agents {
        row(&mut out, agent.nick.clone(), &agent.supervision);
        for child in &agent.supervision.children {
            row(&mut out, format!("  {}", child.name), child);
        }
    }
    if status.agents.is_empty() {
        out.push_str("(no agents)\n");
    }
    let codex = status.services.iter().find(|s| s.name == "codex");
    for process in codex.map(|c| c.children.as_slice()).unwrap_or_default() {
        row(&mut out, format!("codex {}", process.name), process);
        if process.state == codexd_actors::child::ChildState::CircuitOpen {
            let _ = writeln!(
                out,
                "{:<24} `codexd reset codex {}` starts it now",
                "", process.name
            );
        }
    }
    // The audit log's file and counts (when `telemetry.audit_enabled`).
    for audit in status.services.iter().filter(|s| s.name == "audit") {
        row(&mut out, "audit".to_owned(), audit);
    }
    out
}

/// A config path that could not even be worked out (e.g. `~` with HOME unset).
pub fn load_config_error(error: ConfigError) -> ExitCode {
    fail(exit::CONFIG, &[error.to_string()])
}

/// Refuses `--agent` nicks that the config does not have.
pub fn check_selection(config: &Config, only: &[String], path: &Path) -> Result<(), ExitCode> {
    let missing: Vec<String> = only
        .iter()
        .filter(|nick| config.agent(nick).is_none())
        .map(|nick| format!("agent '{nick}' was not found in '{}'", path.display()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(fail(exit::INPUT, &missing))
    }
}

/// Resolves telemetry settings (config + OTEL_* environment, a fresh `service.instance.id`,
/// the machine's `host.name`) and starts logging/export.
/// Also returns how long the final flush may take: the export timeout plus a second, so
/// an export already under way can finish.
pub fn start_telemetry(
    config: &Config,
    format: LogFormat,
    env: &Env,
) -> Result<(crate::telemetry::Telemetry, Duration), ExitCode> {
    use crate::telemetry::identity;
    let mut settings =
        crate::telemetry::Settings::resolve(&config.telemetry, &identity::instance_id(), env)
            .map_err(|e| fail(exit::CONFIG, &[e.to_string()]))?;
    identity::add_host_name(&mut settings, identity::host_name());
    let exporters = settings
        .otlp
        .iter()
        .flat_map(|o| o.traces.iter().chain(o.metrics.iter()));
    let flush = exporters.map(|e| e.timeout).max().unwrap_or_default() + Duration::from_secs(1);
    let telemetry = crate::telemetry::init(&settings, format)
        .map_err(|e| fail(exit::CONFIG, &[format!("cannot start telemetry: {e}")]))?;
    Ok((telemetry, flush))
}

/// Prints `status` data as JSON or as a table.
pub fn print_status(data: Option<serde_json::Value>, json: bool) {
    let data = data.unwrap_or_default();
    if json {
        println!("{data}");
        return;
    }
    match serde_json::from_value::<HostStatus>(data.clone()) {
        Ok(status) => print!("{}", status_table(&status)),
        Err(_) => println!("{data}"),
    }
}
