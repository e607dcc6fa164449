//! Whole-file tests of the agent entries and of codexd's own sections.

use std::path::PathBuf;
use std::time::Duration;

use super::tests::{errors, errors_with, ok, secs, warnings};
use super::*;
use crate::env::Env;

fn agent_errors(lines: &str) -> Vec<String> {
    errors(&format!(
        "server: {{name: spark}}\nagents:\n  - nick: spark-a\n{lines}"
    ))
}

#[test]
fn nick_rules() {
    let cases = [
        ("codex", "must start with \"spark-\""),
        ("spark-", "must have a name after \"spark-\""),
        ("\"\"", "must not be empty"),
        (
            "\"spark-a b\"",
            "must not contain a space (allowed: letters, digits and -[]\\`^{}|_)",
        ),
        (
            "\"spark-a\\r\\nQUIT\"",
            "must not contain CR (allowed: letters, digits and -[]\\`^{}|_)",
        ),
        (
            "spark-a/b",
            "must not contain '/' (allowed: letters, digits and -[]\\`^{}|_)",
        ),
        (
            "spark-abcdefghijklmnopqrstuvwxyz01",
            "must be at most 32 characters long",
        ),
        ("42", "expected a string, got 42"),
    ];
    for (nick, want) in cases {
        let yaml = format!("server: {{name: spark}}\nagents:\n  - nick: {nick}\n");
        assert_eq!(errors(&yaml), [format!("agents[0].nick: {want}")], "{nick}");
    }
    let duplicate = "server: {name: spark}\nagents:\n  - nick: spark-A\n  - nick: spark-a\n";
    assert_eq!(
        errors(duplicate),
        ["agents[1].nick: duplicate nick: \"spark-A\" is already used by agents[0].nick"]
    );
}

#[test]
fn irc_bound_strings_reject_line_breaks() {
    let cases = [
        (
            "    channels: ['#a b']\n",
            "agents[0].channels[0]: must not contain a space",
        ),
        (
            "    channels: [\"#a\\u0007\"]\n",
            "agents[0].channels[0]: must not contain BEL",
        ),
        (
            "    channels: '#a'\n",
            "agents[0].channels: expected a list, got \"#a\"",
        ),
        (
            "    tags: [\"a,b\"]\n",
            "agents[0].tags[0]: must not contain a comma",
        ),
        (
            "    tags: [\"a\\nb\"]\n",
            "agents[0].tags[0]: must not contain LF",
        ),
        (
            "    icon: \"x\\ry\"\n",
            "agents[0].icon: must not contain CR",
        ),
        ("    model: \"\"\n", "agents[0].model: must not be empty"),
        (
            "    system_prompt: \"a\\0b\"\n",
            "agents[0].system_prompt: must not contain NUL",
        ),
        (
            "    agent: \"co\\ndex\"\n",
            "agents[0].agent: must not contain LF",
        ),
    ];
    for (lines, want) in cases {
        assert_eq!(agent_errors(lines), [want], "{lines}");
    }
    let prompt =
        ok("agents:\n  - nick: culture-a\n    system_prompt: |\n      line one\n      line two\n")
            .config;
    assert_eq!(prompt.agents[0].system_prompt, "line one\nline two\n");
}

#[test]
fn agent_fields() {
    let yaml = "\
agents:
  - nick: culture-a
    agent: codex
    directory: ~/src/a
    channels: ['#a', '#b', '#A']
    model: gpt-5-codex
    tags: [rust, review]
    icon: \"🤖\"
    test_children: [irc, runner]
";
    let loaded = ok(yaml);
    let agent = &loaded.config.agents[0];
    assert_eq!(agent.directory, PathBuf::from("/home/op/src/a"));
    assert_eq!(agent.channels, ["#a", "#b"]);
    assert_eq!(agent.tags, ["rust", "review"]);
    assert_eq!(agent.icon.as_deref(), Some("🤖"));
    assert_eq!(agent.test_children, ["irc", "runner"]);
    assert_eq!(
        warnings(yaml),
        ["agents[0].channels[2]: \"#A\" is listed twice"]
    );
}

#[test]
fn test_children_are_known_children_listed_once() {
    assert_eq!(
        agent_errors("    test_children: [irc, runer, irc]\n"),
        [
            "agents[0].test_children[1]: unknown child \"runer\"; expected one of webhook, runner, attention, socket, irc, overseer, repo (did you mean \"runner\"?)",
            "agents[0].test_children[2]: \"irc\" is listed twice",
        ]
    );
}

#[test]
fn ignored_culture_keys_are_warnings() {
    let yaml = "\
server: {name: spark, archived: false, archived_at: '', archived_reason: ''}
supervisor: {thinking: high, agent: claude}
webhooks: {events: [agent_eror]}
agents:
  - nick: spark-a
    agent: claude
    archived: 'no'
    archived_at: '2026-01-01'
    archived_reason: quiet
    suffix: a
    backend: codex
    thinking: medium
    acp_command: [acp]
    token_budget: 1000
    token_budget_daily: 5
";
    let archive = "ignored: Culture archive metadata";
    let want = [
        "server.archived: ignored: Culture's archive flag; codexd hosts every listed agent".to_owned(),
        format!("server.archived_at: {archive}"),
        format!("server.archived_reason: {archive}"),
        "supervisor.thinking: ignored: a claude-backend key".to_owned(),
        "supervisor.agent: ignored: another backend's key; codexd's overseer always uses codex".to_owned(),
        "webhooks.events[0]: \"agent_eror\" is not an event codexd emits, so it never fires; did you mean \"agent_error\"?".to_owned(),
        "agents[0].agent: \"claude\" is not \"codex\"; codexd runs this agent with codex anyway".to_owned(),
        "agents[0].archived: ignored: not true or false; only \"archived: true\" takes an agent out (not hosted)".to_owned(),
        format!("agents[0].archived_at: {archive}"),
        format!("agents[0].archived_reason: {archive}"),
        "agents[0].suffix: ignored: Culture manifest key; codexd names agents by nick".to_owned(),
        "agents[0].backend: ignored: Culture manifest key; codexd runs every agent with codex".to_owned(),
        "agents[0].thinking: ignored: a claude-backend key".to_owned(),
        "agents[0].acp_command: ignored: an ACP-backend key".to_owned(),
        "agents[0].token_budget: ignored: token budgets are not implemented by codexd".to_owned(),
        "agents[0].token_budget_daily: ignored: token budgets are not implemented by codexd".to_owned(),
    ];
    assert_eq!(warnings(yaml), want);
}

#[test]
fn restart_section_and_agent_overrides() {
    let yaml = "\
restart:
  backoff_base: 2s
  backoff_factor: 1.5
  backoff_cap: 1m 30s
  jitter: 0
  max_restarts: 5
  window: 10m
  cooldown: 30s
  cooldown_cap: 1h
  stable_after: 45s
  health_interval: 3s
  health_timeout: 500ms
agents:
  - nick: culture-a
    restart: {max_restarts: 1, window: 1m}
";
    let config = ok(yaml).config;
    let want = RestartConfig {
        backoff_base: secs(2),
        backoff_factor: 1.5,
        backoff_cap: secs(90),
        jitter: 0.0,
        max_restarts: 5,
        window: secs(600),
        cooldown: secs(30),
        cooldown_cap: secs(3600),
        stable_after: secs(45),
        health_interval: secs(3),
        health_timeout: Duration::from_millis(500),
    };
    assert_eq!(config.restart, want);
    assert_eq!(
        config.agents[0].restart,
        RestartConfig {
            max_restarts: 1,
            window: secs(60),
            ..want
        }
    );
}

#[test]
fn restart_validation() {
    let cases = [
        (
            "restart: {window: 300}",
            "restart.window: expected a duration such as \"300s\" or \"5m\", got 300 (add a unit: \"300s\")",
        ),
        (
            "restart: {cooldown: 0s}",
            "restart.cooldown: must be greater than 0",
        ),
        (
            "restart: {cooldown_cap: 2M}",
            "restart.cooldown_cap: must be at most 30 days (\"M\" means months; use \"m\" for minutes), got \"2M\"",
        ),
        (
            "restart: {backoff_factor: 0.5}",
            "restart.backoff_factor: expected a number >= 1, got 0.5",
        ),
        (
            "restart: {jitter: -0.1}",
            "restart.jitter: expected a number from 0 to 1, got -0.1",
        ),
        (
            "restart: {max_restarts: 0}",
            "restart.max_restarts: expected an integer >= 1, got 0",
        ),
        (
            "restart: {backoff_cap: 1s}",
            "restart.backoff_cap: must be >= backoff_base (5s), got 1s",
        ),
        (
            "restart: {backoff_base: 2m}",
            "restart.backoff_base: must be <= backoff_cap (1m), got 2m",
        ),
        (
            "restart: {cooldown: 1h}",
            "restart.cooldown: must be <= cooldown_cap (30m), got 1h",
        ),
        (
            "restart: {backoff_cap: 10s}\nagents:\n  - nick: culture-a\n    restart: {backoff_base: 20s}\n",
            "agents[0].restart.backoff_base: must be <= backoff_cap (10s), got 20s",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(errors(yaml), [want], "{yaml}");
    }
}

#[test]
fn codex_section_and_agent_overrides() {
    let yaml = "\
codex:
  binary: ~/bin/codex
  args: [--config, model_reasoning_effort=low]
  env: {RUST_LOG: info, OPENAI_BASE_URL: 'http://127.0.0.1:9999/v1'}
agents:
  - nick: culture-a
    codex: {env: {RUST_LOG: debug, EXTRA: '1'}}
  - nick: culture-b
    codex: {binary: /opt/codex, args: []}
";
    let config = ok(yaml).config;
    assert_eq!(config.codex.binary, PathBuf::from("/home/op/bin/codex"));
    assert_eq!(
        config.codex.args,
        ["--config", "model_reasoning_effort=low"]
    );
    let a = &config.agents[0].codex;
    assert_eq!(
        (a.binary.clone(), a.args.clone()),
        (config.codex.binary.clone(), config.codex.args.clone())
    );
    let env: Vec<(&str, &str)> = a
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("EXTRA", "1"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1"),
            ("RUST_LOG", "debug")
        ]
    );
    let b = &config.agents[1].codex;
    assert_eq!(
        (b.binary.clone(), b.args.len(), b.env.len()),
        (PathBuf::from("/opt/codex"), 0, 2)
    );

    let failures = [
        (
            "codex: {env: {1BAD: x}}",
            "codex.env.1BAD: is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
        ),
        (
            "codex: {env: {PORT: 8080}}",
            "codex.env.PORT: expected a string, got 8080",
        ),
        (
            "codex: {env: {EMPTY: }}",
            "codex.env.EMPTY: expected a string, got null",
        ),
        ("codex: {binary: \"\"}", "codex.binary: must not be empty"),
        (
            "codex: {args: [\"a\\0b\"]}",
            "codex.args[0]: must not contain NUL",
        ),
    ];
    for (yaml, want) in failures {
        assert_eq!(errors(yaml), [want], "{yaml}");
    }
}

#[test]
fn tilde_expansion_with_and_without_home() {
    let yaml = "state_dir: ~/state\ncontrol_socket: ~/run/c.sock\ncodex: {binary: ~/bin/codex}\nagents:\n  - {nick: culture-a, directory: '~'}\n  - {nick: culture-b, directory: rel/dir}\n";
    let config = ok(yaml).config;
    assert_eq!(config.state_dir, PathBuf::from("/home/op/state"));
    assert_eq!(config.control_socket, PathBuf::from("/home/op/run/c.sock"));
    assert_eq!(config.agents[0].directory, PathBuf::from("/home/op"));
    assert_eq!(config.agents[1].directory, PathBuf::from("rel/dir"));

    let no_home = Env::from_pairs([("XDG_RUNTIME_DIR", "/run/user/1")]);
    assert_eq!(
        errors_with(yaml, &no_home),
        [
            "state_dir: \"~/state\" starts with \"~\" but HOME is unset",
            "control_socket: \"~/run/c.sock\" starts with \"~\" but HOME is unset",
            "codex.binary: \"~/bin/codex\" starts with \"~\" but HOME is unset",
            "agents[0].directory: \"~\" starts with \"~\" but HOME is unset",
            "pid_dir: the default \"~/.culture/pids\" needs HOME, which is unset; set HOME or this key",
        ]
    );
    assert_eq!(
        errors_with("", &no_home),
        [
            "state_dir: the default \"~/.culture/codexd\" needs HOME, which is unset; set HOME or this key",
            "pid_dir: the default \"~/.culture/pids\" needs HOME, which is unset; set HOME or this key",
        ]
    );
    assert_eq!(
        errors_with("", &Env::default()),
        [
            "state_dir: the default \"~/.culture/codexd\" needs HOME, which is unset; set HOME or this key",
            "control_socket: the default \"~/.culture/run/codexd.sock\" needs HOME, which is unset; set HOME or this key",
            "ipc_dir: the default \"~/.culture/run\" needs HOME, which is unset; set HOME or this key",
            "pid_dir: the default \"~/.culture/pids\" needs HOME, which is unset; set HOME or this key",
        ]
    );
    let absolute = "state_dir: /var/lib/codexd\ncontrol_socket: /run/codexd.sock\nipc_dir: /run\npid_dir: /run/pids\n";
    assert_eq!(
        parse(absolute, &Env::default())
            .expect("no HOME needed")
            .config
            .state_dir,
        PathBuf::from("/var/lib/codexd")
    );
}

#[test]
fn default_path_expands_the_tilde() {
    let cases = [
        (
            vec![("HOME", "/home/op")],
            Ok("/home/op/.culture/agents.yaml"),
        ),
        (
            vec![("HOME", "/home/op"), ("CODEXD_CONFIG", "~/c.yaml")],
            Ok("/home/op/c.yaml"),
        ),
        (
            vec![("CODEXD_CONFIG", "conf/agents.yaml")],
            Ok("conf/agents.yaml"),
        ),
        (
            vec![("CODEXD_CONFIG", "~/c.yaml")],
            Err("CODEXD_CONFIG: \"~/c.yaml\" starts with \"~\" but HOME is unset"),
        ),
        (
            vec![],
            Err(
                "HOME: unset, so the default config path \"~/.culture/agents.yaml\" cannot be resolved; set HOME or CODEXD_CONFIG",
            ),
        ),
    ];
    for (vars, want) in cases {
        let got = default_path(&Env::from_pairs(vars.clone()), &|_| false);
        match (got, want) {
            (Ok(path), Ok(want)) => assert_eq!(path, PathBuf::from(want), "{vars:?}"),
            (Err(ConfigError::Invalid { errors }), Err(want)) => {
                assert_eq!(errors[0].to_string(), want, "{vars:?}")
            }
            (got, want) => panic!("{vars:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn telemetry_section() {
    let yaml = "telemetry: {enabled: true, otlp_protocol: http/protobuf, otlp_compression: none, otlp_timeout_ms: 2500, traces_sampler: 'parentbased_traceidratio:0.5', metrics_export_interval_ms: 1000, traces_enabled: false}";
    let telemetry = ok(yaml).config.telemetry;
    assert_eq!(telemetry.otlp_protocol, Some(OtlpProtocol::HttpProtobuf));
    assert_eq!(telemetry.otlp_compression, Some(OtlpCompression::None));
    assert_eq!(telemetry.otlp_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(
        telemetry.traces_sampler,
        Some(Sampler::ParentBasedTraceIdRatio(0.5))
    );
    assert_eq!(telemetry.metrics_export_interval, Some(secs(1)));
    assert!(telemetry.enabled && !telemetry.traces_enabled && telemetry.metrics_enabled);
    for unset in [
        "telemetry: {otlp_compression: ''}",
        "telemetry: {otlp_compression: null}",
    ] {
        assert_eq!(ok(unset).config.telemetry.otlp_compression, None, "{unset}");
    }
    let failures = [
        (
            "telemetry: {otlp_protocol: http/json}",
            "telemetry.otlp_protocol: \"http/json\" is not supported; use \"grpc\" or \"http/protobuf\"",
        ),
        (
            "telemetry: {otlp_compression: zstd}",
            "telemetry.otlp_compression: expected \"gzip\", \"none\" or empty, got \"zstd\"",
        ),
        (
            "telemetry: {traces_sampler: sometimes}",
            "telemetry.traces_sampler: expected one of parentbased_always_on, parentbased_traceidratio:<0.0-1.0>, always_off, always_on, got \"sometimes\"",
        ),
        (
            "telemetry: {otlp_timeout_ms: 0}",
            "telemetry.otlp_timeout_ms: expected a positive integer number of milliseconds, got 0",
        ),
        (
            "telemetry: {metrics_export_interval_ms: 1.5}",
            "telemetry.metrics_export_interval_ms: expected a positive integer number of milliseconds, got 1.5",
        ),
        (
            "telemetry: {otlp_endpoint: 'localhost:4317'}",
            "telemetry.otlp_endpoint: must be an http:// or https:// URL, got \"localhost:4317\"",
        ),
    ];
    for (yaml, want) in failures {
        assert_eq!(errors(yaml), [want], "{yaml}");
    }
}

#[test]
fn webhook_delivery_keys() {
    let config = ok(
        "server: {name: spark}\nwebhooks:\n  url: http://127.0.0.1:9/hook\n  format: slack\n  timeout: 3s\n  max_attempts: 2\n  queue_size: 5\n  dedup_window: 0\n  join_channel: false\n  events: [circuit_open, agent_restarted]\n",
    );
    let hooks = &config.config.webhooks;
    assert_eq!(hooks.format, codexd_actors::webhook::Format::Slack);
    assert_eq!(hooks.timeout, secs(3));
    assert_eq!(hooks.max_attempts, 2);
    assert_eq!(hooks.queue_size, 5);
    assert_eq!(hooks.dedup_window, Duration::ZERO);
    assert!(
        !hooks.join_channel,
        "false is Culture's behaviour, kept on request"
    );
    assert_eq!(hooks.events, ["circuit_open", "agent_restarted"]);
    let defaults = ok("server: {name: spark}\n").config.webhooks;
    assert_eq!(defaults.dedup_window, secs(60));
    assert!(!defaults.events.iter().any(|e| e == "agent_restarted"));
    assert!(defaults.events.iter().any(|e| e == "circuit_closed"));
    assert!(
        defaults.join_channel,
        "agents join the alerts channel by default"
    );
}

#[test]
fn the_overseer_runs_when_the_file_has_a_supervisor_block_unless_told() {
    let table = [
        ("", false),
        ("supervisor:\n", true),
        ("supervisor: {}\n", true),
        ("supervisor: {eval_interval: 2}\n", true),
        ("supervisor: {enabled: false, eval_interval: 2}\n", false),
        ("supervisor: {enabled: true}\n", true),
    ];
    for (yaml, enabled) in table {
        let config = ok(&format!("server: {{name: spark}}\n{yaml}")).config;
        assert_eq!(config.overseer.enabled, enabled, "{yaml:?}");
    }
}

#[test]
fn overseer_codexd_keys() {
    let yaml = "supervisor: {timeout: 90s, prompt_override: '{{ {transcript} }}'}\n";
    let config = ok(yaml).config;
    assert_eq!(config.overseer.timeout, Duration::from_secs(90));
    assert_eq!(config.overseer.prompt_override, "{{ {transcript} }}");
    assert_eq!(OverseerConfig::default().timeout, Duration::from_secs(60));
}

#[test]
fn admission_overlays_per_agent_and_names_bad_keys() {
    let loaded = ok(
        "server: {name: spark}\nadmission: {per_sender: 3, window: 2m}\nagents:\n  - nick: spark-a\n  - nick: spark-b\n    admission: {max_pending: 0, per_sender: 0}\n",
    );
    let limits: Vec<_> = loaded
        .config
        .agents
        .iter()
        .map(|a| {
            (
                a.admission.per_sender,
                a.admission.window,
                a.admission.max_pending,
            )
        })
        .collect();
    assert_eq!(limits, [(3, secs(120), 100), (0, secs(120), 0)]);
    assert_eq!(loaded.config.admission.per_sender, 3);
    let defaults = ok("server: {name: spark}\n").config.admission;
    assert_eq!(
        (defaults.per_sender, defaults.window, defaults.max_pending),
        (20, secs(60), 100)
    );
    let cases = [
        (
            "admission: {per_sender: -1}",
            "admission.per_sender: expected an integer from 0 (no limit) to 100000, got -1",
        ),
        (
            "admission: {window: 0s}",
            "admission.window: must be greater than 0",
        ),
        (
            "admission: {max_pending: lots}",
            "admission.max_pending: expected an integer from 0 (no limit) to 100000, got \"lots\"",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(
            errors(&format!("server: {{name: spark}}\n{yaml}\n")),
            [want],
            "{yaml}"
        );
    }
    assert_eq!(
        agent_errors("    admission: {per_sendr: 3}\n"),
        ["agents[0].admission.per_sendr: unknown key; did you mean \"per_sender\"?"]
    );
}
