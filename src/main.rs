//! `codexd`: parse the command line, load and validate the config, start telemetry, run
//! the daemon (or talk to it), exit with a documented code.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use codexd::cli::{self, Cli, Command, exit};
use codexd::env::Env;
use codexd::{ConfigSource, signal, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    codexd_actors::grid::anchor();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hint: cannot start the async runtime: {error}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    let code = runtime.block_on(dispatch(cli, env));
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn dispatch(cli: Cli, env: Env) -> ExitCode {
    let Some(command) = cli.command else {
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::from(exit::OK);
    };
    match command {
        Command::Run { config, agents } => run(config, agents, cli.log_format, env).await,
        Command::CheckConfig {
            config,
            no_preflight,
        } => match cli::config_path(config.as_deref(), &env) {
            Ok(path) => cli::check_config(&path, &env, !no_preflight).await,
            Err(error) => cli::load_config_error(error),
        },
        Command::Completions { shell } => {
            cli::docs::completions(shell, &mut std::io::stdout());
            ExitCode::from(exit::OK)
        }
        Command::Agent { action } => cli::agent::run(action, &env).await,
        Command::Repo { command } => cli::repo::run(command, cli.log_format, &env).await,
        Command::Man => match cli::docs::man_page(&mut std::io::stdout()) {
            Ok(()) => ExitCode::from(exit::OK),
            Err(error) => cli::fail(
                exit::SOFTWARE,
                &[format!("cannot write the man page: {error}")],
            ),
        },
        client => match cli::client::run(client, &env).await {
            Some(code) => code,
            None => cli::fail(exit::SOFTWARE, &["not a client command".to_owned()]),
        },
    }
}

async fn run(
    config: Option<std::path::PathBuf>,
    only: Vec<String>,
    log_format: telemetry::LogFormat,
    env: Env,
) -> ExitCode {
    let path = match cli::config_path(config.as_deref(), &env) {
        Ok(path) => path,
        Err(error) => return cli::load_config_error(error),
    };
    let loaded = match cli::load_config(&path, &env) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Err(code) = cli::check_selection(&loaded.config, &only, &path) {
        return code;
    }
    let (telemetry, flush) = match cli::start_telemetry(&loaded.config, log_format, &env) {
        Ok(telemetry) => telemetry,
        Err(code) => return code,
    };
    let source = ConfigSource { path, env, only };
    let agents = source.selected(&loaded.config).len();
    codexd::fdlimit::raise_for(agents, loaded.config.codex.agents_per_process);
    let code = match signal::listen() {
        Ok(events) => {
            let reloader = telemetry.reloader();
            match codexd::run(loaded.config, source, events, reloader, telemetry.gauges()).await {
                Ok(()) => ExitCode::from(exit::OK),
                Err(error) => cli::fail(cli::run_error_code(&error), &[error.to_string()]),
            }
        }
        Err(error) => cli::fail(
            exit::SOFTWARE,
            &[format!("cannot install signal handlers: {error}")],
        ),
    };
    // Flushing blocks (bounded by `flush`); let the runtime know.
    tokio::task::block_in_place(|| telemetry.shutdown(flush));
    code
}
