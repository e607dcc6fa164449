//! `codexd repo run | push | clean`: repository work in this process, no daemon needed
//! (codexd-spec §18; the workflow is `codexd_actors::repo`). Progress goes to stderr, the
//! result line to stdout. `codexd repo cancel <nick> <job>` stops an agent's job in the
//! running daemon (a client command, with the client commands' exit codes).
//!
//! | command | stdout on success                                                        |
//! |---------|--------------------------------------------------------------------------|
//! | `run`   | `pushed: workspace=<checkout> branch=<b> commit=<sha> target=origin/<b>`, or `no changes: workspace=<checkout> branch=<b>` |
//! | `push`  | `pushed: workspace=<checkout> target=origin/<b>`                          |
//! | `clean` | `cleaned: workspace=<root>`                                              |
//!
//! | exit | when                                                                       |
//! |------|----------------------------------------------------------------------------|
//! | 0    | done (`no changes` included)                                               |
//! | 1    | bad input: remote, branch, base ref, task, workspace; `push` without `--branch` |
//! | 2    | the environment: git failed or timed out, the codex turn failed, timed out or was cancelled (Ctrl-C), a workspace codexd did not make; clap's usage errors too |
//! | 78   | the config file is invalid or unreadable                                   |

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use codexd_actors::codex::CodexPool;
use codexd_actors::host::{Host, HostSpec};
use codexd_actors::repo::turn::TurnSettings;
use codexd_actors::repo::validate;
use codexd_actors::repo::workflow::{self, RunSpec, Workflow};
use codexd_actors::repo::workspace;
use codexd_actors::repo::{Cancel, Git, Progress, ProgressSink, RepoError, Report};
use codexd_actors::runner::session::ThreadConfig;

use super::args::RepoCommand;
use super::{fail, load_config};
use crate::config::{self, Config};
use crate::env::Env;
use crate::telemetry::LogFormat;

/// Exit code of a bad input (upstream's `ValueError`).
const INPUT: u8 = 1;
/// Exit code of an environment failure (upstream's `GitError`, `OSError`, `RuntimeError`).
const ENVIRONMENT: u8 = 2;
/// How long the codex process may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the codex process may take to stop at the end.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// `harness.nick` of the turn's spans.
const NICK: &str = "codexd-repo";

/// Runs `codexd repo <command>`; `None` prints the help.
pub async fn run(command: Option<RepoCommand>, log_format: LogFormat, env: &Env) -> ExitCode {
    let Some(command) = command else {
        let mut cli = <super::Cli as clap::CommandFactory>::command();
        cli.build(); // so the usage line reads `codexd repo`
        let _ = cli
            .find_subcommand_mut("repo")
            .map(|repo| repo.print_help());
        return ExitCode::SUCCESS;
    };
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(error) => {
            return fail(
                ENVIRONMENT,
                &[format!("cannot read the current directory: {error}")],
            );
        }
    };
    let home = env.var("HOME").map(PathBuf::from);
    match command {
        RepoCommand::Run { .. } => {
            run_command(command, &cwd, home.as_deref(), log_format, env).await
        }
        RepoCommand::Push {
            workspace,
            branch,
            git_timeout,
        } => {
            push(
                &cwd,
                home.as_deref(),
                &workspace,
                branch.as_deref(),
                git_timeout,
            )
            .await
        }
        RepoCommand::Clean { workspace } => clean(&cwd, home.as_deref(), &workspace),
        RepoCommand::Cancel { nick, job, target } => cancel(nick, job, &target, env).await,
    }
}

/// The checked input of `repo run`, or the first problem (exit 1).
fn checked(command: &RepoCommand, cwd: &Path, home: Option<&Path>) -> Result<RunSpec, String> {
    let RepoCommand::Run {
        remote,
        branch,
        task,
        base,
        workspace,
        ..
    } = command
    else {
        return Err("not repo run".to_owned());
    };
    let remote = validate::remote(remote)?;
    let branch = validate::branch(branch)?;
    let root = workspace::managed_root(cwd, home, Some(workspace))?;
    let base = base.as_deref().map(validate::base_ref).transpose()?;
    let task = validate::task(task)?;
    validate::checkout_name(&remote)?;
    Ok(RunSpec {
        remote,
        branch,
        base,
        task,
        root,
        job: None,
    })
}

async fn run_command(
    command: RepoCommand,
    cwd: &Path,
    home: Option<&Path>,
    log_format: LogFormat,
    env: &Env,
) -> ExitCode {
    let spec = match checked(&command, cwd, home) {
        Ok(spec) => spec,
        Err(problem) => return fail(INPUT, &[problem]),
    };
    let RepoCommand::Run {
        model,
        sandbox,
        turn_timeout,
        git_timeout,
        config,
        ..
    } = command
    else {
        return fail(ENVIRONMENT, &["not repo run".to_owned()]);
    };
    let config = match load(config.as_deref(), env) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let telemetry = match start_telemetry(&config, log_format, env) {
        Ok(telemetry) => telemetry,
        Err(code) => return code,
    };
    let (host, pool) = match start_codex(&config).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let slot = {
        let dir = config.state_dir.join("repo-codex");
        let (key, command) = crate::agents::pool_command(&config.codex, &dir);
        pool.place(NICK, &key, command)
    };
    let codex = &config.codex;
    let thread = ThreadConfig {
        cwd: spec.root.clone(),
        model: model.unwrap_or_else(|| codex.model.clone()),
        approval_policy: codex.approval_policy.clone(),
        sandbox: Some(sandbox),
        instructions: String::new(),
        shell_env: Default::default(),
    };
    let workflow = Workflow {
        git: Git::new(git_timeout),
        turn: TurnSettings {
            slot,
            thread,
            approvals: codex.approvals,
            turn_timeout,
            request_timeout: codex.request_timeout,
            interrupt_timeout: codex.interrupt_timeout,
            start_timeout: START_TIMEOUT,
            nick: NICK.to_owned(),
        },
        progress: ProgressSink::new(|report| eprintln!("{}", progress_line(&report))),
    };
    let cancel = Cancel::default();
    let interrupt = cancel.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: cancelling (nothing is pushed after this)");
            interrupt.cancel();
        }
    });
    let result = workflow.run(&spec, &cancel).await;
    ctrl_c.abort();
    let code = match result {
        Ok((outcome, timings)) => {
            eprintln!(
                "timings: clone {:.2}s, turn {:.2}s, commit+push {:.2}s",
                timings.clone.as_secs_f64(),
                timings.turn.as_secs_f64(),
                timings.commit_push.as_secs_f64()
            );
            println!("{}", outcome.line());
            ExitCode::SUCCESS
        }
        Err(error) => failed(&error),
    };
    // The codex process is stopped and reaped before the exit.
    host.shutdown(STOP_GRACE * 2).await;
    tokio::task::block_in_place(|| telemetry.0.shutdown(telemetry.1));
    code
}

/// A codex pool whose processes live under a Host of their own (the `codex` service
/// only): [`Host::shutdown`] stops and reaps them.
async fn start_codex(config: &Config) -> Result<(Host, CodexPool), ExitCode> {
    let pool = CodexPool::new(1, config.restart);
    let spec = HostSpec {
        services: vec![pool.service(config.restart, STOP_GRACE)],
        agents: Vec::new(),
        stop_timeout: STOP_GRACE,
        observer: None,
    };
    match Host::spawn(spec).await {
        Ok((host, _)) => Ok((host, pool)),
        Err(error) => Err(fail(
            ENVIRONMENT,
            &[format!("cannot start codex's supervisor: {error}")],
        )),
    }
}

async fn push(
    cwd: &Path,
    home: Option<&Path>,
    workspace: &Path,
    branch: Option<&str>,
    git_timeout: Duration,
) -> ExitCode {
    let root = match workspace::managed_root(cwd, home, Some(workspace)) {
        Ok(root) => root,
        Err(problem) => return fail(INPUT, &[problem]),
    };
    let Some(branch) = branch else {
        return fail(INPUT, &["--branch is required for repo push".to_owned()]);
    };
    let branch = match validate::branch(branch) {
        Ok(branch) => branch,
        Err(problem) => return fail(INPUT, &[problem]),
    };
    let git = Git::new(git_timeout);
    match workflow::push(&git, &root, &branch, &Cancel::default()).await {
        Ok(checkout) => {
            println!(
                "pushed: workspace={} target=origin/{branch}",
                checkout.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => failed(&error),
    }
}

fn clean(cwd: &Path, home: Option<&Path>, workspace: &Path) -> ExitCode {
    let root = match workspace::managed_root(cwd, home, Some(workspace)) {
        Ok(root) => root,
        Err(problem) => return fail(INPUT, &[problem]),
    };
    match workflow::clean(&root) {
        Ok(()) => {
            println!("cleaned: workspace={}", root.display());
            ExitCode::SUCCESS
        }
        Err(error) => failed(&error),
    }
}

/// `codexd repo cancel <nick> <job>`: a client command (its exit codes are the client
/// commands': 1 refused, e.g. no such job; 3 the daemon is not there).
async fn cancel(nick: String, job: u64, target: &super::Target, env: &Env) -> ExitCode {
    let socket = match super::socket_path(target, env) {
        Ok(socket) => socket,
        Err(code) => return code,
    };
    let request = crate::control::Request::RepoCancel {
        nick: nick.clone(),
        job,
    };
    super::ask(&socket, request, |data| {
        let result = data
            .as_ref()
            .and_then(|data| data.get("result"))
            .and_then(|result| result.as_str())
            .map_or_else(|| format!("cancelled job {job}"), str::to_owned);
        println!("{nick}: {result}");
        ExitCode::SUCCESS
    })
    .await
}

/// `hint: <why>`, exit 1 for bad input, else 2.
fn failed(error: &RepoError) -> ExitCode {
    let code = if error.is_input() { INPUT } else { ENVIRONMENT };
    fail(code, &[error.to_string()])
}

/// The config: `--config`, else the default path if a file is there, else the defaults.
fn load(flag: Option<&Path>, env: &Env) -> Result<Config, ExitCode> {
    let path = super::config_path(flag, env).map_err(super::load_config_error)?;
    if flag.is_none() && !path.exists() {
        return config::parse("", env)
            .map(|loaded| loaded.config)
            .map_err(|error| fail(super::exit::CONFIG, &[error.to_string()]));
    }
    load_config(&path, env).map(|loaded| loaded.config)
}

/// Telemetry as `codexd run` has it, with logs at `warn` unless `RUST_LOG` says otherwise
/// (progress lines are the terminal's news).
fn start_telemetry(
    config: &Config,
    format: LogFormat,
    env: &Env,
) -> Result<(crate::telemetry::Telemetry, Duration), ExitCode> {
    use crate::telemetry::identity;
    let mut settings =
        crate::telemetry::Settings::resolve(&config.telemetry, &identity::instance_id(), env)
            .map_err(|e| fail(super::exit::CONFIG, &[e.to_string()]))?;
    if env.var("RUST_LOG").is_none() {
        settings.log_filter = "warn".to_owned();
    }
    identity::add_host_name(&mut settings, identity::host_name());
    let exporters = settings
        .otlp
        .iter()
        .flat_map(|o| o.traces.iter().chain(o.metrics.iter()));
    let flush = exporters.map(|e| e.timeout).max().unwrap_or_default() + Duration::from_secs(1);
    let telemetry = crate::telemetry::init(&settings, format).map_err(|e| {
        fail(
            super::exit::CONFIG,
            &[format!("cannot start telemetry: {e}")],
        )
    })?;
    Ok((telemetry, flush))
}

/// One progress line for the terminal:
///
/// | progress                  | line                                      |
/// |---------------------------|-------------------------------------------|
/// | a step                    | `[  0.4s] cloning: https://host/a.git`    |
/// | a tool call               | `[  2.1s] tool fileChange: README.md`     |
/// | still running             | `[ 12.0s] codex is still working`         |
/// | the turn done             | `[  3.0s] codex done: 2 tool call(s)`     |
pub fn progress_line(report: &Report) -> String {
    let at = format!("[{:>6.1}s]", report.elapsed.as_secs_f64());
    let what = match &report.progress {
        Progress::Step { step, detail } => format!("{}: {detail}", step.name()),
        Progress::Tool { kind, detail } if detail.is_empty() => format!("tool {kind}"),
        Progress::Tool { kind, detail } => format!("tool {kind}: {detail}"),
        Progress::Working => "codex is still working".to_owned(),
        Progress::TurnDone { tools, .. } => format!("codex done: {tools} tool call(s)"),
    };
    let clean: String = what
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{at} {}", clean.trim_end())
}
