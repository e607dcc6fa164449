//! From configuration to typed settings: each configured agent becomes the [`AgentParts`]
//! that [`AgentSpec::assemble`] wires into its tree (the wiring belongs to the actors crate).

use std::sync::Arc;
use std::time::Duration;

use codexd_actors::agent::{AgentParts, AgentSpec, AgentWiring};
use codexd_actors::attention::policy::{BandSpec, Policy};
use codexd_actors::attention::sleep::LocalClock;
use codexd_actors::attention::{AttentionSettings, Mode};
use codexd_actors::audit::Audit;
use codexd_actors::codex::{CodexCommand, CodexPool, Slot};
use codexd_actors::irc::{FloodSettings, IrcSettings, TlsSettings, TraceTagMode};
use codexd_actors::overseer::OverseerSettings;
use codexd_actors::overseer::prompt::Template;
use codexd_actors::repo::jobs::JobSettings;
use codexd_actors::repo::{Git, TurnSettings};
use codexd_actors::runner::session::ThreadConfig;
use codexd_actors::runner::{RunnerSettings, prompt};
use codexd_actors::socket::{AgentSocket, BindError, PidFile, SocketDirectory, StopRequest};
use codexd_actors::webhook::{AlertEvent, AlertRelay, Endpoint, WebhookSettings};
use tokio::sync::mpsc;

use crate::config::{AgentConfig, Config};

/// What an agent is wired to beyond its config: its bound IPC socket (kept by the daemon
/// across reloads, so a restarted agent serves the same socket) and where an IPC
/// `shutdown` asks the daemon to stop it.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// The agent's socket; `None` only when `socket` is a test child.
    pub socket: Option<AgentSocket>,
    /// The daemon's stop requests.
    pub stop: mpsc::Sender<StopRequest>,
    /// The daemon's codex processes (the `codex` service places the agent on one).
    pub pool: CodexPool,
    /// The daemon's audit log (its files when `telemetry.audit_enabled`; always the live
    /// tap `codexd watch` follows).
    pub audit: Option<Audit>,
    /// Every agent's webhook, for alerts about a whole agent.
    pub alerts: AlertRelay,
    /// Where the operator's requests find the agent's `socket` actor.
    pub sockets: SocketDirectory,
}

/// Binds the agent's Culture IPC socket, `<ipc_dir>/culture-<nick>.sock`, unless `socket`
/// runs as a test child, and writes `<pid_dir>/agent-<nick>.pid` beside it so Culture's CLI
/// sees the agent running (a PID file that cannot be written is logged, not fatal). A live
/// socket (another daemon serves this nick) is an error.
pub fn bind_socket(config: &Config, agent: &AgentConfig) -> Result<Option<AgentSocket>, BindError> {
    if agent.test_children.iter().any(|t| t == "socket") {
        return Ok(None);
    }
    let dir = &config.ipc_dir;
    let socket = AgentSocket::bind(&dir.path, &agent.nick, dir.private)?;
    match PidFile::write(&config.pid_dir, &agent.nick, std::process::id()) {
        Ok(pid_file) => Ok(Some(socket.with_pid_file(pid_file))),
        Err(error) => {
            let path = PidFile::path_for(&config.pid_dir, &agent.nick);
            tracing::warn!(agent.nick = %agent.nick, path = %path.display(), error = %error, "pid file not written; culture's cli will list this agent as stopped");
            Ok(Some(socket))
        }
    }
}

/// The tree for one agent: each part's settings from the config (the runner placed on a
/// codex process unless it is a test child; the overseer when `supervisor.enabled`), wired
/// by [`AgentSpec::assemble`].
pub fn spec(
    config: &Config,
    agent: &AgentConfig,
    stop_timeout: Duration,
    wiring: Wiring,
) -> AgentSpec {
    let testing = |name: &str| agent.test_children.iter().any(|t| t == name);
    let audit = wiring.audit.map(|audit| audit.agent(&agent.nick));
    let runner = (!testing("runner")).then(|| RunnerSettings {
        audit: audit.clone(),
        ..runner_settings(config, agent, place(&wiring.pool, config, agent))
    });
    let repo = runner
        .as_ref()
        .and_then(|runner| job_settings(config, agent, runner));
    let parts = AgentParts {
        nick: agent.nick.clone(),
        policy: agent.restart,
        stop_timeout,
        webhook: webhook_settings(config, agent),
        runner,
        attention: attention_settings(config, agent),
        clock: local_clock(),
        irc: IrcSettings {
            audit,
            ..irc_settings(config, agent)
        },
        socket: wiring.socket,
        overseer: config
            .overseer
            .enabled
            .then(|| overseer_settings(config, agent)),
        test_children: agent.test_children.clone(),
        repo,
    };
    let outside = AgentWiring {
        stop: wiring.stop,
        codex: wiring.pool,
        alerts: wiring.alerts,
        sockets: wiring.sockets,
    };
    AgentSpec::assemble(parts, outside)
}

/// The webhook's settings: `webhooks:` for this agent. Unknown event names were warned
/// about by the config and are skipped here.
pub fn webhook_settings(config: &Config, agent: &AgentConfig) -> WebhookSettings {
    let hooks = &config.webhooks;
    let mut settings = WebhookSettings::new(&agent.nick);
    settings.url = hooks
        .url
        .as_deref()
        .and_then(|url| Endpoint::parse(url).ok());
    settings.irc_channel = Some(hooks.irc_channel.clone());
    settings.format = hooks.format;
    settings.events = hooks
        .events
        .iter()
        .filter_map(|name| AlertEvent::from_name(name))
        .collect();
    settings.timeout = hooks.timeout;
    settings.attempts = hooks.max_attempts;
    settings.queue = hooks.queue_size;
    settings.dedup_window = hooks.dedup_window;
    settings
}

/// How the agent's own codex commands start (the overseer's `codex exec`): `codex:`
/// (binary, args, env) in the agent's directory, its XDG data and state in
/// `<state_dir>/<nick>/xdg`.
pub fn codex_command(config: &Config, agent: &AgentConfig) -> CodexCommand {
    let codex = &agent.codex;
    let xdg = config.state_dir.join(&agent.nick).join("xdg");
    let mut command = CodexCommand::new(&codex.binary, &agent.nick);
    command.args.extend(codex.args.iter().map(Into::into));
    command.cwd = Some(agent.directory.clone());
    command.env = vec![
        ("XDG_DATA_HOME".into(), xdg.join("data").into()),
        ("XDG_STATE_HOME".into(), xdg.join("state").into()),
    ];
    command
        .env
        .extend(codex.env.iter().map(|(k, v)| (k.into(), v.into())));
    command
}

/// The runner's settings on its codex `slot`: the agent's directory, model, approvals,
/// sandbox, system prompt and turn timeout for its threads; state in `<state_dir>/<nick>`.
pub fn runner_settings(config: &Config, agent: &AgentConfig, slot: Slot) -> RunnerSettings {
    let codex = &agent.codex;
    let state_dir = config.state_dir.join(&agent.nick);
    let instructions = match agent.system_prompt.is_empty() {
        true => prompt::system_prompt(&agent.nick, &agent.directory, &agent.tools.names()),
        false => agent.system_prompt.clone(),
    };
    let thread = ThreadConfig {
        cwd: agent.directory.clone(),
        model: agent.model.clone(),
        approval_policy: codex.approval_policy.clone(),
        // codexd's default: the agent may write its own directory (its IRC tools work in
        // every sandbox); Culture left codex's own default.
        sandbox: Some(
            codex
                .sandbox
                .clone()
                .unwrap_or_else(|| DEFAULT_SANDBOX.to_owned()),
        ),
        instructions,
        shell_env: shell_env(config, agent),
    };
    let mut settings = RunnerSettings::new(&agent.nick, slot, thread, state_dir);
    settings.approvals = codex.approvals;
    settings.turn_timeout = agent.turn_timeout;
    settings.request_timeout = codex.request_timeout;
    settings.interrupt_timeout = codex.interrupt_timeout;
    settings.admission = agent.admission;
    settings.conversations = agent.conversations;
    settings.home = agent.channels.first().cloned();
    settings.tags = agent.tags.clone();
    settings.tools = agent.tools.clone();
    settings.repo_jobs = agent.repo.is_some();
    settings.tool_timeout = codex.tool_timeout;
    settings
}

/// The `repo` child's settings when the agent has `repo:`: its jobs run on the runner's
/// codex slot with the agent's model and approvals, in `workspace-write` scoped to each
/// job's checkout, in `<state_dir>/<nick>/repo`.
pub fn job_settings(
    config: &Config,
    agent: &AgentConfig,
    runner: &RunnerSettings,
) -> Option<JobSettings> {
    let repo = agent.repo.as_ref()?;
    let thread = ThreadConfig {
        sandbox: Some(DEFAULT_SANDBOX.to_owned()),
        // codex's own system prompt: it is a coding task, not a conversation on IRC.
        instructions: String::new(),
        ..runner.thread.clone()
    };
    let turn_timeout = repo
        .turn_timeout
        .or(runner.turn_timeout)
        .unwrap_or(JOB_TURN_TIMEOUT);
    let turn = TurnSettings {
        slot: runner.codex.clone(),
        thread,
        approvals: runner.approvals,
        turn_timeout,
        request_timeout: runner.request_timeout,
        interrupt_timeout: runner.interrupt_timeout,
        start_timeout: JOB_START_TIMEOUT,
        nick: agent.nick.clone(),
    };
    Some(JobSettings {
        nick: agent.nick.clone(),
        dir: config.state_dir.join(&agent.nick).join("repo"),
        remotes: repo.remotes.clone(),
        max_jobs: repo.max_jobs,
        git: Git::new(repo.git_timeout),
        turn,
    })
}

/// A job's turn budget when neither `repo.turn_timeout` nor the agent's has one.
const JOB_TURN_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a job waits for its agent's codex process (it may be restarting).
const JOB_START_TIMEOUT: Duration = Duration::from_secs(120);

/// The sandbox an agent's threads get when `codex.sandbox` is unset.
const DEFAULT_SANDBOX: &str = "workspace-write";

/// The overseer's settings: `supervisor:` and the runner's codex binary, directory and
/// environment (so `CODEX_HOME`, `HOME` and API keys reach `codex exec` as they reach
/// `codex app-server`).
pub fn overseer_settings(config: &Config, agent: &AgentConfig) -> OverseerSettings {
    let overseer = &config.overseer;
    let command = codex_command(config, agent);
    let mut settings = OverseerSettings::new(&agent.nick, command, &overseer.model);
    settings.template = Template::for_override(&overseer.prompt_override).unwrap_or_else(|error| {
        tracing::warn!(agent.nick = %agent.nick, error = %error, "Invalid prompt_override template, falling back to default");
        Template::default_prompt()
    });
    settings.window_size = overseer.window_size as usize;
    settings.eval_interval = u64::from(overseer.eval_interval);
    settings.escalation_threshold = overseer.escalation_threshold;
    settings.timeout = overseer.timeout;
    settings
}

/// The agent's slot on a codex process (`codex.agents_per_process` to a process). Agents
/// share a process only when their codex identity is the same: binary, arguments and
/// environment (`CODEX_HOME` included); the daemon's `restart:` governs every process.
/// The process runs in `<state_dir>/codex-pool` with its XDG data and state there; each
/// agent's cwd, model, instructions, policies and shell environment are per thread.
fn place(pool: &CodexPool, config: &Config, agent: &AgentConfig) -> Slot {
    let (key, command) = pool_command(&agent.codex, &config.state_dir.join("codex-pool"));
    pool.place(&agent.nick, &key, command)
}

/// How a pooled `codex app-server` starts for `codex:` (binary, args, env), in `dir` (made
/// 0700) with its XDG data and state there; and the key of its codex identity (who may
/// share the process).
pub fn pool_command(
    codex: &crate::config::CodexConfig,
    dir: &std::path::Path,
) -> (String, CodexCommand) {
    let key = format!("{:?}", (&codex.binary, &codex.args, &codex.env));
    let mut command = CodexCommand::new(&codex.binary, "");
    command.args.extend(codex.args.iter().map(Into::into));
    command.cwd = Some(dir.to_path_buf());
    command.env = vec![
        ("XDG_DATA_HOME".into(), dir.join("xdg/data").into()),
        ("XDG_STATE_HOME".into(), dir.join("xdg/state").into()),
    ];
    command
        .env
        .extend(codex.env.iter().map(|(k, v)| (k.into(), v.into())));
    if let Err(error) = create_private_dir(dir) {
        tracing::warn!(dir = %dir.display(), error = %error, "codex pool directory not created");
    }
    (key, command)
}

/// `mkdir -p` with mode 0700 for every directory it creates, whatever the umask lets through
/// beyond that (the codex processes' home for their XDG data and state).
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The agent's shell environment beyond codex's `core` variables: `CULTURE_NICK` and, unless
/// the IPC sockets live in Culture's `~/.culture/run` fallback, `XDG_RUNTIME_DIR` set to
/// their directory (so Culture's skill client finds the agent's socket), and `codex.shell_env`
/// (which cannot change `CULTURE_NICK`).
fn shell_env(config: &Config, agent: &AgentConfig) -> std::collections::BTreeMap<String, String> {
    let mut vars = std::collections::BTreeMap::new();
    if !config.ipc_dir.private {
        let dir = config.ipc_dir.path.display().to_string();
        vars.insert("XDG_RUNTIME_DIR".to_owned(), dir);
    }
    vars.extend(agent.codex.shell_env.clone());
    // Always the agent's own: its tools reach its socket by it.
    vars.insert("CULTURE_NICK".to_owned(), agent.nick.clone());
    vars
}

/// The `attention` actor's settings: the agent's resolved `attention:` (bands, thread
/// window), or with `enabled: false` Culture's legacy `poll_interval` loop; and the
/// daemon's sleep window.
pub fn attention_settings(config: &Config, agent: &AgentConfig) -> AttentionSettings {
    let attention = &agent.attention;
    let spec = |band: crate::config::Band| BandSpec {
        interval: band.interval,
        hold: band.hold,
    };
    let bands = &attention.bands;
    let mode = match (attention.enabled, config.poll_interval) {
        (true, _) => Mode::Bands(Policy {
            bands: [
                spec(bands.hot),
                spec(bands.warm),
                spec(bands.cool),
                spec(bands.idle),
            ],
        }),
        (false, Some(interval)) => Mode::Legacy(interval),
        (false, None) => Mode::Off,
    };
    AttentionSettings {
        nick: agent.nick.clone(),
        channels: agent.channels.clone(),
        mode,
        thread_window: attention.thread_window,
        sleep: config.sleep,
        // Other agents' alerts are not conversation, joined or listed in `channels`.
        quiet: vec![config.webhooks.irc_channel.clone()],
        retry: attention.tick,
    }
}

/// Seconds since local midnight from the system clock and time zone (`TZ`, else
/// `/etc/localtime`).
fn local_clock() -> LocalClock {
    Arc::new(|| {
        let now = jiff::Zoned::now();
        let (h, m, s) = (now.hour(), now.minute(), now.second());
        u32::try_from(i32::from(h) * 3600 + i32::from(m) * 60 + i32::from(s)).unwrap_or(0)
    })
}

/// The `irc` actor's settings: `server:` plus the agent's nick, channels, tags and icon.
pub fn irc_settings(config: &Config, agent: &AgentConfig) -> IrcSettings {
    let server = &config.server;
    let mut settings = IrcSettings::new(&server.host, server.port, &server.name, &agent.nick);
    settings.tls = server.tls.then(|| TlsSettings {
        ca_file: server.tls_ca_file.clone(),
    });
    settings.sasl = server.sasl.clone();
    settings.channels = agent.channels.clone();
    settings.joined_file = Some(config.state_dir.join(&agent.nick).join("channels"));
    let alerts = &config.webhooks.irc_channel;
    if config.webhooks.join_channel
        && !settings
            .channels
            .iter()
            .any(|c| c.eq_ignore_ascii_case(alerts))
    {
        settings.channels.push(alerts.clone());
    }
    settings.tags = agent.tags.clone();
    settings.icon = agent.icon.clone();
    settings.trace_tags = server
        .trace_tag
        .clone()
        .map_or(TraceTagMode::Auto, TraceTagMode::Named);
    settings.keepalive = server.keepalive;
    settings.keepalive_timeout = server.keepalive_timeout;
    settings.registration_timeout = server.registration_timeout;
    settings.reconnect_max = server.reconnect_max;
    settings.flood = FloodSettings {
        burst: server.flood_burst,
        per_second: server.flood_rate,
    };
    settings.send_queue = server.send_queue;
    settings.buffer_size = config.buffer_size;
    settings
}

/// What a reload changes: agents to start, to stop, and to restart with a new config.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// In the new config only.
    pub added: Vec<String>,
    /// In the old config only.
    pub removed: Vec<String>,
    /// In both, with a different entry.
    pub changed: Vec<String>,
}

impl ReloadPlan {
    /// Compares two agent lists by nick (each list in its own config order).
    pub fn between(old: &[AgentConfig], new: &[AgentConfig]) -> Self {
        let find = |list: &[AgentConfig], nick: &str| list.iter().position(|a| a.nick == nick);
        let mut plan = ReloadPlan::default();
        for agent in new {
            match find(old, &agent.nick) {
                None => plan.added.push(agent.nick.clone()),
                Some(i) if old[i] != *agent => plan.changed.push(agent.nick.clone()),
                Some(_) => {}
            }
        }
        plan.removed = old
            .iter()
            .filter(|a| find(new, &a.nick).is_none())
            .map(|a| a.nick.clone())
            .collect();
        plan
    }

    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Daemon-level settings that differ between `old` and `new` and that every agent is built
/// from (its `irc`, `webhook`, `attention` and `overseer` children): a reload applies them
/// by restarting the agents one by one (their journals keep what was accepted).
pub fn agent_wide_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 6] = [
        ("server", old.server != new.server),
        ("supervisor", old.overseer != new.overseer),
        ("webhooks", old.webhooks != new.webhooks),
        ("buffer_size", old.buffer_size != new.buffer_size),
        ("poll_interval", old.poll_interval != new.poll_interval),
        ("sleep_start/sleep_end", old.sleep != new.sleep),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| key)
        .collect()
}

/// Daemon-level settings that differ between `old` and `new` and that a reload does not
/// apply (agents' own entries, including their resolved restart, codex and attention
/// settings, are applied by restarting the changed agents; see also
/// [`agent_wide_changes`]).
pub fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 6] = [
        ("state_dir", old.state_dir != new.state_dir),
        ("control_socket", old.control_socket != new.control_socket),
        ("ipc_dir", old.ipc_dir != new.ipc_dir),
        ("pid_dir", old.pid_dir != new.pid_dir),
        ("shutdown_grace", old.shutdown_grace != new.shutdown_grace),
        (
            "codex.agents_per_process",
            old.codex.agents_per_process != new.codex.agents_per_process,
        ),
    ];
    let changed = checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| key);
    let mut keys = old.telemetry.restart_only_changes(&new.telemetry);
    keys.extend(changed);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Env;

    fn agents(yaml: &str) -> Vec<AgentConfig> {
        let env = Env::from_pairs([("HOME", "/home/t")]);
        crate::config::parse(&format!("server: {{name: spark}}\nagents:\n{yaml}"), &env)
            .expect("valid")
            .config
            .agents
    }

    #[test]
    fn daemon_level_changes_are_named() {
        let env = Env::from_pairs([("HOME", "/home/t")]);
        let parse = |text: &str| crate::config::parse(text, &env).expect("valid").config;
        let old = parse("server: {name: spark}\nbuffer_size: 10\n");
        let new = parse(
            "server: {name: spark, port: 7000}\nbuffer_size: 10\nipc_dir: /run/x\nshutdown_grace: 1m\n\
             telemetry: {service_name: x, otlp_endpoint: 'https://collector:4317'}\n",
        );
        assert_eq!(
            restart_only_changes(&old, &new),
            ["telemetry.service_name", "ipc_dir", "shutdown_grace"]
        );
        assert_eq!(agent_wide_changes(&old, &new), ["server"]);
        assert!(restart_only_changes(&old, &old).is_empty());
        assert!(agent_wide_changes(&old, &old).is_empty());
    }

    #[test]
    fn the_runner_gets_its_conversations_home_channel_and_tags() {
        use codexd_actors::runner::conversation::ThreadMode;
        let env = Env::from_pairs([("HOME", "/home/t")]);
        let yaml = "server: {name: spark}\nconversations: {max_turns: 2, steer: false}\nagents:\n  - nick: spark-a\n    channels: ['#dev', '#ops']\n    tags: [rust, review]\n    conversations: {threads: shared}\n";
        let config = crate::config::parse(yaml, &env).expect("valid").config;
        let slot = Slot::new("process-0".to_owned());
        let settings = runner_settings(&config, &config.agents[0], slot);
        let conversations = settings.conversations;
        assert_eq!(
            (
                conversations.threads,
                conversations.max_turns,
                conversations.steer
            ),
            (ThreadMode::Shared, 2, false)
        );
        assert_eq!(settings.home.as_deref(), Some("#dev"));
        assert_eq!(settings.tags, ["rust", "review"]);
    }

    #[test]
    fn reload_plan_by_nick() {
        let old =
            agents("  - nick: spark-a\n  - nick: spark-b\n  - nick: spark-c\n    model: m1\n");
        let new =
            agents("  - nick: spark-c\n    model: m2\n  - nick: spark-a\n  - nick: spark-d\n");
        let plan = ReloadPlan::between(&old, &new);
        assert_eq!(
            plan,
            ReloadPlan {
                added: vec!["spark-d".into()],
                removed: vec!["spark-b".into()],
                changed: vec!["spark-c".into()]
            }
        );
        assert!(ReloadPlan::between(&new, &new).is_empty());
    }

    #[test]
    fn the_codex_pool_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = tempfile::tempdir().expect("tempdir");
        let dir = scratch.path().join("state/codex-pool");
        create_private_dir(&dir).expect("created");
        for made in [dir.parent().expect("state"), dir.as_path()] {
            let mode = std::fs::metadata(made)
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", made.display());
        }
    }

    #[test]
    fn test_children_become_supervised_children_with_the_agents_policy() {
        let list = agents(
            "  - nick: spark-a\n    test_children: [irc, runner, socket]\n    restart: {max_restarts: 7}\n",
        );
        let env = Env::from_pairs([("HOME", "/home/t")]);
        let config = crate::config::parse("server: {name: spark}\n", &env)
            .expect("valid")
            .config;
        let (stop, _) = mpsc::channel(1);
        let wiring = Wiring {
            socket: None,
            stop,
            pool: CodexPool::new(1, Default::default()),
            audit: None,
            alerts: Default::default(),
            sockets: SocketDirectory::default(),
        };
        let spec = spec(&config, &list[0], Duration::from_secs(1), wiring);
        let names: Vec<&str> = spec.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["webhook", "runner", "attention", "socket", "irc"],
            "start order"
        );
        assert!(spec.children.iter().all(|c| c.policy.max_restarts == 7));
        assert_eq!(spec.policy.max_restarts, 7);
    }

    #[test]
    fn the_overseer_child_runs_with_a_supervisor_block_and_the_runners_codex() {
        let env = Env::from_pairs([("HOME", "/home/t")]);
        let yaml = "server: {name: spark}\nsupervisor: {model: judge, timeout: 5s}\ncodex: {binary: /opt/codex, env: {CODEX_HOME: /c}}\nagents:\n  - nick: spark-a\n    directory: /w\n    test_children: [runner]\n";
        let config = crate::config::parse(yaml, &env).expect("valid").config;
        let agent = &config.agents[0];
        let (stop, _) = mpsc::channel(1);
        let wiring = Wiring {
            socket: None,
            stop,
            pool: CodexPool::new(1, Default::default()),
            audit: None,
            alerts: Default::default(),
            sockets: SocketDirectory::default(),
        };
        let on = spec(&config, agent, Duration::from_secs(1), wiring);
        assert!(on.children.iter().any(|c| c.name == "overseer"));
        let settings = overseer_settings(&config, agent);
        let runner = codex_command(&config, agent);
        assert_eq!(settings.command.program, runner.program);
        assert_eq!(
            settings.command.cwd.as_deref(),
            Some(std::path::Path::new("/w"))
        );
        assert_eq!(settings.command.env, runner.env);
        assert!(
            settings
                .command
                .env
                .iter()
                .any(|(k, v)| k == "CODEX_HOME" && v == "/c")
        );
        let args: Vec<_> = settings
            .command
            .args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect();
        assert_eq!(
            args.join(" "),
            "exec --sandbox read-only --skip-git-repo-check --ephemeral --color never -m judge"
        );
        assert_eq!(settings.timeout, Duration::from_secs(5));

        let off = "server: {name: spark}\nsupervisor: {enabled: false}\nagents:\n  - nick: spark-a\n    test_children: [runner]\n";
        let config = crate::config::parse(off, &env).expect("valid").config;
        let (stop, _) = mpsc::channel(1);
        let wiring = Wiring {
            socket: None,
            stop,
            pool: CodexPool::new(1, Default::default()),
            audit: None,
            alerts: Default::default(),
            sockets: SocketDirectory::default(),
        };
        let off = spec(&config, &config.agents[0], Duration::from_secs(1), wiring);
        assert!(off.children.iter().all(|c| c.name != "overseer"));
    }
}
