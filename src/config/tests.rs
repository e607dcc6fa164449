//! Whole-file tests: text in, typed config or every error with its key path out.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::env::Env;

pub(super) fn env() -> Env {
    Env::from_pairs([("HOME", "/home/op"), ("XDG_RUNTIME_DIR", "/run/user/1000")])
}

pub(super) fn ok(yaml: &str) -> Loaded {
    parse(yaml, &env()).unwrap_or_else(|error| panic!("{yaml}\n=> {error}"))
}

pub(super) fn errors_with(yaml: &str, env: &Env) -> Vec<String> {
    match parse(yaml, env) {
        Err(ConfigError::Invalid { errors }) => errors.iter().map(ToString::to_string).collect(),
        other => panic!("{yaml}\n=> expected validation errors, got {other:?}"),
    }
}

pub(super) fn errors(yaml: &str) -> Vec<String> {
    errors_with(yaml, &env())
}

pub(super) fn warnings(yaml: &str) -> Vec<String> {
    ok(yaml).warnings.iter().map(ToString::to_string).collect()
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn empty_documents_are_valid_with_no_agents() {
    for yaml in ["", "# only a comment\n", "{}", "server:\n", "agents: []\n"] {
        let loaded = ok(yaml);
        assert!(loaded.config.agents.is_empty(), "{yaml:?}");
        assert!(loaded.warnings.is_empty(), "{yaml:?}");
    }
}

#[test]
fn defaults() {
    let config = ok("agents:\n  - nick: culture-main\n").config;
    assert_eq!(
        config.server,
        ServerConfig {
            name: "culture".into(),
            host: "localhost".into(),
            port: 6667,
            ..ServerConfig::default()
        }
    );
    assert_eq!(config.overseer.model, "gpt-5.4");
    assert_eq!(
        (
            config.overseer.window_size,
            config.overseer.eval_interval,
            config.overseer.escalation_threshold
        ),
        (20, 5, 3)
    );
    assert_eq!(config.webhooks.url, None);
    assert_eq!(config.webhooks.irc_channel, "#alerts");
    assert_eq!(
        config.webhooks.events.len(),
        10,
        "every event but agent_restarted"
    );
    assert_eq!(
        config.webhooks.format,
        codexd_actors::webhook::Format::Discord
    );
    assert_eq!(config.webhooks.timeout, Duration::from_secs(10));
    assert_eq!(config.telemetry, TelemetryConfig::default());
    assert_eq!(config.buffer_size, 500);
    assert_eq!(config.poll_interval, Some(secs(60)));
    assert_eq!(config.sleep, None, "codexd's agents never sleep by default");
    assert_eq!(config.restart, RestartConfig::default());
    assert_eq!(config.restart.cooldown_cap, secs(1800));
    assert_eq!(
        config.codex,
        CodexConfig {
            binary: "codex".into(),
            args: vec![],
            env: Default::default(),
            shell_env: Default::default(),
            approval_policy: "never".into(),
            approvals: codexd_actors::runner::session::Approvals::Decline,
            sandbox: None,
            model: String::new(),
            agents_per_process: 10,
            request_timeout: secs(30),
            interrupt_timeout: secs(10),
            tool_timeout: secs(30),
        }
    );
    assert_eq!(config.state_dir, PathBuf::from("/home/op/.culture/codexd"));
    assert_eq!(
        config.control_socket,
        PathBuf::from("/run/user/1000/codexd.sock")
    );
    assert_eq!(
        config.ipc_dir,
        IpcDir {
            path: "/run/user/1000".into(),
            private: false
        }
    );
    assert_eq!(config.shutdown_grace, secs(10));
    let agent = &config.agents[0];
    assert_eq!(agent.backend, "codex");
    assert_eq!(agent.directory, PathBuf::from("."));
    assert_eq!(agent.channels, ["#general"]);
    assert_eq!(agent.model, "gpt-5.4");
    assert_eq!(
        (agent.system_prompt.as_str(), agent.icon.as_deref()),
        ("", None)
    );
    assert!(agent.tags.is_empty() && agent.test_children.is_empty());
    assert_eq!(agent.turn_timeout, Some(secs(600)));
    assert_eq!(agent.attention, config.attention);
    assert_eq!(agent.restart, config.restart);
    assert_eq!(agent.codex, config.codex);
}

#[test]
fn control_socket_falls_back_to_the_culture_run_dir() {
    let env = Env::from_pairs([("HOME", "/home/op")]);
    let config = parse("", &env).expect("valid").config;
    assert_eq!(
        config.control_socket,
        PathBuf::from("/home/op/.culture/run/codexd.sock")
    );
    assert_eq!(
        config.ipc_dir,
        IpcDir {
            path: "/home/op/.culture/run".into(),
            private: true
        }
    );
    let set = parse("ipc_dir: ~/sockets\n", &env).expect("valid").config;
    assert_eq!(set.ipc_dir.path, PathBuf::from("/home/op/sockets"));
    assert!(!set.ipc_dir.private);
}

#[test]
fn agents_must_be_a_list() {
    let cases = [
        (
            "agents:\n",
            "agents: expected a list of agent mappings (\"- nick: ...\"), got null; remove the key or write \"agents: []\" for no agents",
        ),
        (
            "agents: null\n",
            "agents: expected a list of agent mappings (\"- nick: ...\"), got null; remove the key or write \"agents: []\" for no agents",
        ),
        (
            "agents: culture-main\n",
            "agents: expected a list, got \"culture-main\"",
        ),
        (
            "agents: [culture-main]\n",
            "agents[0]: expected an agent mapping (nick:, channels:, ...), got \"culture-main\"",
        ),
        ("agents:\n  - {}\n", "agents[0].nick: required"),
    ];
    for (yaml, want) in cases {
        assert_eq!(errors(yaml), [want], "{yaml}");
    }
}

#[test]
fn the_top_level_must_be_a_mapping() {
    assert_eq!(
        errors("- a\n- b\n"),
        ["expected a mapping of top-level keys (server:, agents:, ...), got a list"]
    );
    assert_eq!(
        errors("just text\n"),
        ["expected a mapping of top-level keys (server:, agents:, ...), got \"just text\""]
    );
}

#[test]
fn type_and_range_errors_name_the_key_and_the_expectation() {
    let cases = [
        (
            "server: {port: abc}",
            "server.port: expected an integer from 1 to 65535, got \"abc\"",
        ),
        (
            "server: {port: 0}",
            "server.port: expected an integer from 1 to 65535, got 0",
        ),
        (
            "server: {port: 70000}",
            "server.port: expected an integer from 1 to 65535, got 70000",
        ),
        (
            "server: {port: 6667.5}",
            "server.port: expected an integer from 1 to 65535, got 6667.5",
        ),
        (
            "server: {name: \"my server\"}",
            "server.name: must not contain a space (allowed: letters, digits and -[]\\`^{}|_)",
        ),
        ("server: {host: \"\"}", "server.host: must not be empty"),
        ("server: [a]", "server: expected a mapping, got a list"),
        (
            "supervisor: {eval_interval: 0}",
            "supervisor.eval_interval: expected an integer >= 1, got 0",
        ),
        (
            "supervisor: {window_size: -1}",
            "supervisor.window_size: expected an integer >= 1, got -1",
        ),
        (
            "supervisor: {escalation_threshold: 0}",
            "supervisor.escalation_threshold: expected an integer >= 1, got 0",
        ),
        (
            "supervisor: {model: -x}",
            "supervisor.model: must not start with \"-\"",
        ),
        (
            "supervisor: {prompt_override: 'Look: {name}'}",
            "supervisor.prompt_override: not a valid prompt template: unknown field {name} at byte 6: the only field is {transcript}",
        ),
        (
            "supervisor: {prompt_override: '{transcript} }'}",
            "supervisor.prompt_override: not a valid prompt template: single '}' at byte 13 (write '}}' for a literal brace)",
        ),
        (
            "supervisor: {enabled: sometimes}",
            "supervisor.enabled: expected true or false, got \"sometimes\"",
        ),
        (
            "supervisor: {timeout: 0s}",
            "supervisor.timeout: must be greater than 0",
        ),
        (
            "webhooks: {url: example.test}",
            "webhooks.url: must be an http:// or https:// URL, got \"example.test\"",
        ),
        (
            "webhooks: {url: 'discord.com/api/webhooks/1/t0ken?wait=true'}",
            "webhooks.url: must be an http:// or https:// URL, got \"discord.com…\"",
        ),
        (
            "webhooks: {irc_channel: alerts}",
            "webhooks.irc_channel: must start with \"#\"",
        ),
        (
            "webhooks: {events: agent_error}",
            "webhooks.events: expected a list, got \"agent_error\"",
        ),
        (
            "webhooks: {format: teams}",
            "webhooks.format: expected one of \"discord\", \"slack\", \"generic\", got \"teams\"",
        ),
        (
            "webhooks: {timeout: 10}",
            "webhooks.timeout: expected a duration such as \"300s\" or \"5m\", got 10 (add a unit: \"10s\")",
        ),
        (
            "webhooks: {max_attempts: 0}",
            "webhooks.max_attempts: expected an integer from 1 to 20, got 0",
        ),
        (
            "webhooks: {url: 'https://u:p@example.test/x'}",
            "webhooks.url: credentials in the URL are not supported",
        ),
        (
            "buffer_size: -1",
            "buffer_size: expected an integer from 0 to 1000000, got -1",
        ),
        (
            "buffer_size: lots",
            "buffer_size: expected an integer from 0 to 1000000, got \"lots\"",
        ),
        (
            "poll_interval: soon",
            "poll_interval: expected a number, got \"soon\"",
        ),
        (
            "sleep_start: \"25:00\"",
            "sleep_start: expected a time of day \"HH:MM\" (hour 0-23, minute 0-59), got \"25:00\"",
        ),
        (
            "sleep_end: 2300",
            "sleep_end: expected a time of day \"HH:MM\" (hour 0-23, minute 0-59), got 2300",
        ),
        (
            "sleep_end: \"7:60\"",
            "sleep_end: expected a time of day \"HH:MM\" (hour 0-23, minute 0-59), got \"7:60\"",
        ),
        (
            "shutdown_grace: 10",
            "shutdown_grace: expected a duration such as \"300s\" or \"5m\", got 10 (add a unit: \"10s\")",
        ),
        (
            "telemetry: {enabled: yes}",
            "telemetry.enabled: expected true or false, got \"yes\"",
        ),
        ("state_dir: \"\"", "state_dir: must not be empty"),
        (
            "codex: {args: [1]}",
            "codex.args[0]: expected a string, got 1",
        ),
        (
            "codex: {approvals: yes}",
            "codex.approvals: expected one of \"accept\", \"decline\", \"accept_for_session\", got \"yes\"",
        ),
        (
            "codex: {sandbox: workspaceWrite}",
            "codex.sandbox: expected one of \"read-only\", \"workspace-write\", \"danger-full-access\", got \"workspaceWrite\"",
        ),
        (
            "codex: {approval_policy: on-failure}",
            "codex.approval_policy: expected one of \"never\", \"on-request\", \"untrusted\", got \"on-failure\"",
        ),
        (
            "codex: {agents_per_process: 0}",
            "codex.agents_per_process: expected an integer from 1 to 1000, got 0",
        ),
        (
            "codex: {request_timeout: 0s}",
            "codex.request_timeout: must be greater than 0",
        ),
        (
            "codex: {interrupt_timeout: 5}",
            "codex.interrupt_timeout: expected a duration such as \"300s\" or \"5m\", got 5 (add a unit: \"5s\")",
        ),
        (
            "codex: {shell_env: {\"1X\": y}}",
            "codex.shell_env.1X: is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(errors(yaml), [want], "{yaml}");
    }
}

#[test]
fn unknown_keys_are_errors_with_a_did_you_mean() {
    let cases = [
        ("sever: {}", "sever: unknown key; did you mean \"server\"?"),
        ("colour: blue", "colour: unknown key"),
        (
            "server: {prot: 1}",
            "server.prot: unknown key; did you mean \"port\"?",
        ),
        (
            "supervisor: {eval_intervall: 3}",
            "supervisor.eval_intervall: unknown key; did you mean \"eval_interval\"?",
        ),
        (
            "webhooks: {event: []}",
            "webhooks.event: unknown key; did you mean \"events\"?",
        ),
        (
            "telemetry: {sampler: always_on}",
            "telemetry.sampler: unknown key",
        ),
        (
            "attention: {tick: 5}",
            "attention.tick: unknown key; did you mean \"tick_s\"?",
        ),
        (
            "attention: {bands: {hott: {interval_s: 1, hold_s: 1}}}",
            "attention.bands.hott: unknown key; did you mean \"hot\"?",
        ),
        (
            "restart: {max_restart: 3}",
            "restart.max_restart: unknown key; did you mean \"max_restarts\"?",
        ),
        (
            "codex: {binry: x}",
            "codex.binry: unknown key; did you mean \"binary\"?",
        ),
        (
            "agents:\n  - nick: culture-a\n    chanels: []\n",
            "agents[0].chanels: unknown key; did you mean \"channels\"?",
        ),
        (
            "agents:\n  - nick: culture-a\n    restart: {windw: 5m}\n",
            "agents[0].restart.windw: unknown key; did you mean \"window\"?",
        ),
        (
            "agents:\n  - nick: culture-a\n    attention: {enabld: false}\n",
            "agents[0].attention.enabld: unknown key; did you mean \"enabled\"?",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(errors(yaml), [want], "{yaml}");
    }
    assert_eq!(
        errors("attention: {bands: {hot: {interval: 30, hold_s: 120}}}"),
        [
            "attention.bands.hot.interval: unknown key; did you mean \"interval_s\"?",
            "attention.bands.hot.interval_s: required for the hot band (a number of seconds greater than 0)",
        ]
    );
}

#[test]
fn several_errors_are_reported_in_one_run_in_file_order() {
    let yaml = "\
server:
  name: spark
  port: 99999
supervisor:
  eval_interval: 0
agents:
  - nick: spark-a
    chanels: ['#x']
  - nick: codex
    channels: [general]
  - nick: spark-a
    restart:
      backoff_base: 10
restart:
  jitter: 2
";
    assert_eq!(
        errors(yaml),
        [
            "server.port: expected an integer from 1 to 65535, got 99999",
            "supervisor.eval_interval: expected an integer >= 1, got 0",
            "agents[0].chanels: unknown key; did you mean \"channels\"?",
            "agents[1].nick: must start with \"spark-\"",
            "agents[1].channels[0]: must start with \"#\"",
            "agents[2].nick: duplicate nick: \"spark-a\" is already used by agents[0].nick",
            "agents[2].restart.backoff_base: expected a duration such as \"300s\" or \"5m\", got 10 (add a unit: \"10s\")",
            "restart.jitter: expected a number from 0 to 1, got 2",
        ]
    );
}

#[test]
fn syntax_errors_carry_the_position() {
    let Err(ConfigError::Syntax { message }) = parse("agents: [\n", &env()) else {
        panic!("expected a syntax error")
    };
    assert!(message.contains("line 2 column 1"), "{message}");
    assert!(matches!(
        parse("a: 1\na: 2\n", &env()),
        Err(ConfigError::Syntax { .. })
    ));
}

#[test]
fn load_reads_the_file_or_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("agents.yaml");
    std::fs::write(&path, "agents:\n  - nick: culture-main\n").expect("write");
    assert_eq!(
        load(&path, &env()).expect("loads").config.agents[0].nick,
        "culture-main"
    );
    let missing = dir.path().join("missing.yaml");
    let error = load(&missing, &env()).expect_err("missing file");
    assert!(matches!(error, ConfigError::Read { .. }));
    let text = error.to_string();
    assert!(
        text.starts_with("failed to load config '") && text.contains("missing.yaml"),
        "{text}"
    );
}

#[test]
fn invalid_errors_display_one_per_line() {
    let error = parse("buffer_size: -1\nserver: {port: 0}\n", &env()).expect_err("invalid");
    let text = error.to_string();
    assert_eq!(
        text,
        "invalid config (2 errors):\n  buffer_size: expected an integer from 0 to 1000000, got -1\n  server.port: expected an integer from 1 to 65535, got 0"
    );
}

#[test]
fn agent_lookup_is_exact() {
    let config =
        ok("agents:\n  - nick: culture-a\n  - nick: culture-b\n    directory: /tmp/b\n").config;
    assert_eq!(
        config.agent("culture-b").map(|a| a.directory.clone()),
        Some(PathBuf::from("/tmp/b"))
    );
    assert!(config.agent("culture-B").is_none());
    assert!(config.agent("missing").is_none());
}

#[test]
fn yaml_merge_keys_are_applied() {
    let yaml = "agents:\n  - &base {nick: culture-a, model: gpt-5, channels: ['#a']}\n  - <<: *base\n    nick: culture-b\n";
    let config = ok(yaml).config;
    assert_eq!(config.agents[1].model, "gpt-5");
    assert_eq!(config.agents[1].channels, ["#a"]);
}

#[test]
fn sleep_window() {
    let cases = [
        ("sleep_start: 23:00\nsleep_end: 08:00\n", Some((1380, 480))),
        (
            "sleep_start: \"22:30\"\nsleep_end: \"6:15\"\n",
            Some((1350, 375)),
        ),
        ("sleep_start: \"00:00\"\nsleep_end: \"00:00\"\n", None),
        ("sleep_start: 08:00\n", None),
        ("sleep_start: \"22:00\"\n", Some((1320, 480))),
        ("sleep_end: \"07:00\"\n", Some((1380, 420))),
        ("buffer_size: 10\n", None),
    ];
    for (yaml, want) in cases {
        let got = ok(yaml)
            .config
            .sleep
            .map(|w| (w.start_minute, w.end_minute));
        assert_eq!(got, want, "{yaml}");
    }
}

#[test]
fn null_values_mean_the_default() {
    let config = ok("server: {name: null, port: ~}\nbuffer_size:\nagents:\n  - {nick: culture-a, icon: null, model: ~, attention_overrides: null}\n").config;
    assert_eq!(
        (
            config.server.name.as_str(),
            config.server.port,
            config.buffer_size
        ),
        ("culture", 6667, 500)
    );
    assert_eq!(
        (
            config.agents[0].model.as_str(),
            config.agents[0].icon.as_ref()
        ),
        ("gpt-5.4", None)
    );
}

#[test]
fn agents_per_process_is_daemon_wide() {
    let loaded = ok(
        "server: {name: spark}\ncodex: {agents_per_process: 8}\nagents:\n  - nick: spark-a\n    codex: {agents_per_process: 2}\n",
    );
    assert_eq!(loaded.config.codex.agents_per_process, 8);
    assert_eq!(loaded.config.agents[0].codex.agents_per_process, 8);
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "agents[0].codex.agents_per_process: ignored: placement is daemon-wide; set codex.agents_per_process at the top level"
        ]
    );
}

#[test]
fn codex_timeouts_overlay_per_agent() {
    let loaded = ok(
        "server: {name: spark}\ncodex: {request_timeout: 3s}\nagents:\n  - nick: spark-a\n    codex: {interrupt_timeout: 2s}\n  - nick: spark-b\n    codex: {request_timeout: 1m}\n",
    );
    let timeouts: Vec<_> = loaded
        .config
        .agents
        .iter()
        .map(|agent| (agent.codex.request_timeout, agent.codex.interrupt_timeout))
        .collect();
    assert_eq!(timeouts, [(secs(3), secs(2)), (secs(60), secs(10))]);
    let wrong =
        "server: {name: spark}\nagents:\n  - nick: spark-a\n    codex: {request_timeout: soon}\n";
    assert_eq!(
        errors(wrong),
        [
            "agents[0].codex.request_timeout: expected a duration such as \"300s\" or \"5m\", got \"soon\""
        ]
    );
}
