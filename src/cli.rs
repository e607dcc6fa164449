//! The command line: `codexd run | check-config` run or check the daemon; the client
//! commands (`status | reset | fault | pause | resume | say | whisper | watch`, [`client`])
//! talk to a running one over its control socket; `completions | man` print what is
//! generated from the definition ([`args`]). Every failure prints at least one `hint:` line
//! on stderr and exits with a documented code ([`exit`]).
//!
//! | module      | holds                                                    |
//! |-------------|----------------------------------------------------------|
//! | [`args`]    | the clap definition                                      |
//! | [`agent`]   | `agent export | import`: moving an agent between hosts   |
//! | [`client`]  | each client command: request, answer, output             |
//! | [`status`]  | the status table and the `--check` health findings       |
//! | [`watch`]   | `codexd watch`: the stream, as JSON lines or a live view |
//! | [`docs`]    | shell completions and the man page                       |
//! | [`repo`]    | `codexd repo run \| push \| clean`: repository work in-process |

pub mod agent;
pub mod args;
pub mod client;
pub mod docs;
pub mod repo;
pub mod status;
pub mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub use args::{Cli, Command, RepoCommand, Target};
pub use status::{print_status, status_table};

use crate::config::{self, Config, ConfigError, Loaded};
use crate::control::{self, ErrorCode, Request, Response};
use crate::env::Env;

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
    /// `status --check`: something is unhealthy (an open circuit, an agent down or paused
    /// for failures); one `hint:` line per finding says what.
    pub const UNHEALTHY: u8 = 4;
}

/// How long the CLI waits for the daemon's answer (a `say` may wait 15 s for the `irc`
/// actor; the daemon gives up at 20 s and says so).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(25);

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

/// Sends one request and maps the answer to an exit code; `on_ok` prints a success and
/// returns the exit code (`status --check` may find the daemon unhealthy).
pub async fn ask(
    socket: &Path,
    request: Request,
    on_ok: impl FnOnce(Option<serde_json::Value>) -> ExitCode,
) -> ExitCode {
    match control::request(socket, &request, REQUEST_TIMEOUT).await {
        Ok(Response { ok: true, data, .. }) => on_ok(data),
        Ok(refused) => refusal(refused),
        Err(error) => unreachable(error),
    }
}

/// A refused request: its error as a hint, exit 1 for what the operator can fix.
///
/// | code                                                      | exit                 |
/// |-----------------------------------------------------------|----------------------|
/// | `no_such_child`, `not_running`, `unknown_fault`, `refused`, `bad_request` | 1 ([`exit::INPUT`]) |
/// | `unresponsive`, none                                      | 3 ([`exit::UNREACHABLE`]) |
pub(crate) fn refusal(answer: Response) -> ExitCode {
    let code = match answer.code {
        Some(
            ErrorCode::NoSuchChild
            | ErrorCode::NotRunning
            | ErrorCode::UnknownFault
            | ErrorCode::Refused
            | ErrorCode::BadRequest,
        ) => exit::INPUT,
        Some(ErrorCode::Unresponsive) | None => exit::UNREACHABLE,
    };
    let error = answer
        .error
        .unwrap_or_else(|| "the daemon refused the request".to_owned());
    fail(code, &[error])
}

/// The daemon could not be asked: exit 3.
pub(crate) fn unreachable(error: control::ClientError) -> ExitCode {
    fail(
        exit::UNREACHABLE,
        &[
            error.to_string(),
            "is `codexd run` running with the same control_socket?".to_owned(),
        ],
    )
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
    format: crate::telemetry::LogFormat,
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
