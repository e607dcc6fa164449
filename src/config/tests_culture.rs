//! Culture compatibility: the spec §21.2 config vectors (9, 10, 13, 14) adapted to this API,
//! the fixed config defects (§2.9), and the file shape Culture's `save_config` writes.

use std::time::Duration;

use super::tests::{errors, ok, secs, warnings};
use super::*;

fn band(interval: u64, hold: Option<u64>) -> Band {
    Band {
        interval: secs(interval),
        hold: hold.map(secs),
    }
}

fn intervals(bands: &Bands) -> [Duration; 4] {
    [
        bands.hot.interval,
        bands.warm.interval,
        bands.cool.interval,
        bands.idle.interval,
    ]
}

const VECTOR_9: &str = "\
server:
  name: codex
  host: 127.0.0.1
  port: 6668
  archived: true
supervisor:
  model: gpt-5
  thinking: high
telemetry:
  enabled: true
  service_name: codexd
webhooks:
  url: https://example.test/hook
  irc_channel: \"#alerts\"
  events:
    - agent_error
buffer_size: 300
poll_interval: 45
agents:
  - nick: codex-main
    directory: /tmp/codex-main
    channels: [\"#general\", \"#dev\"]
    model: gpt-5-codex
    acp_command: ignored
    attention:
      enabled: false
";

/// Vector 9: Culture keys other backends write are dropped (here: warned); the rest loads.
#[test]
fn vector_9_loads_and_warns_about_other_backends_keys() {
    let loaded = ok(VECTOR_9);
    let config = &loaded.config;
    assert_eq!(
        config.server,
        ServerConfig {
            name: "codex".into(),
            host: "127.0.0.1".into(),
            port: 6668,
            ..ServerConfig::default()
        }
    );
    assert_eq!(config.overseer.model, "gpt-5");
    assert!(config.telemetry.enabled);
    assert_eq!(config.telemetry.service_name.as_deref(), Some("codexd"));
    assert_eq!(
        config.webhooks.url.as_deref(),
        Some("https://example.test/hook")
    );
    assert_eq!(config.webhooks.events, ["agent_error"]);
    assert_eq!(config.buffer_size, 300);
    assert_eq!(config.poll_interval, Some(secs(45)));
    let agent = config.agent("codex-main").expect("agent");
    assert_eq!(agent.channels, ["#general", "#dev"]);
    assert!(!agent.attention.enabled);
    assert_eq!(agent.attention.bands, config.attention.bands);
    let warned: Vec<&str> = loaded.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        warned,
        [
            "server.archived",
            "supervisor.thinking",
            "agents[0].acp_command"
        ]
    );
}

/// Vector 9 also carries `telemetry.backend_only`, a key no Culture backend defines: codexd
/// rejects unknown keys instead of dropping them.
#[test]
fn vector_9_with_an_invented_key_is_rejected() {
    let yaml = VECTOR_9.replace(
        "  service_name: codexd\n",
        "  service_name: codexd\n  backend_only: ignored\n",
    );
    assert_eq!(errors(&yaml), ["telemetry.backend_only: unknown key"]);
}

/// Vector 10: defaults (the nick follows codexd's `<server.name>-` rule).
#[test]
fn vector_10_defaults() {
    let config = ok("agents:\n  - nick: culture-main\n    directory: /tmp/codex-main\n").config;
    assert_eq!(config.server.name, "culture");
    assert_eq!(config.buffer_size, 500);
    assert_eq!(config.agents[0].model, "gpt-5.4");
    assert_eq!(config.overseer.model, "gpt-5.4");
    assert_eq!(config.agents[0].backend, "codex");
    // `culture.harness.codex` is the telemetry module's default; the file left it unset.
    assert_eq!(config.telemetry.service_name, None);
    assert_eq!(ok("").config, ok("{}").config);
}

/// Vector 13: the attention block and the legacy migration.
#[test]
fn vector_13_attention() {
    let config = ok("poll_interval: 90\n").config;
    assert_eq!(
        intervals(&config.attention.bands),
        [secs(30), secs(90), secs(90), secs(90)]
    );
    let config = ok("").config;
    assert_eq!(
        intervals(&config.attention.bands),
        [secs(30), secs(60), secs(60), secs(60)]
    );
    let config = ok("attention:\n  enabled: false\npoll_interval: 45\n").config;
    assert!(!config.attention.enabled);
    assert_eq!(config.poll_interval, Some(secs(45)));
    assert_eq!(
        config.attention.bands,
        Bands::default(),
        "an attention block stops the migration"
    );
    let explicit = "attention:\n  bands:\n    hot: {interval_s: 10, hold_s: 60}\n    warm: {interval_s: 20, hold_s: 90}\n    cool: {interval_s: 40, hold_s: 100}\n    idle: {interval_s: 80}\n";
    let bands = ok(explicit).config.attention.bands;
    assert_eq!(
        bands,
        Bands {
            hot: band(10, Some(60)),
            warm: band(20, Some(90)),
            cool: band(40, Some(100)),
            idle: band(80, None)
        }
    );
    let bands = ok("attention:\n  bands:\n    hot: {interval_s: 10, hold_s: 60}\n")
        .config
        .attention
        .bands;
    assert_eq!(
        (bands.warm, bands.cool),
        (band(120, Some(300)), band(300, Some(600)))
    );

    let failures = [
        (
            "attention:\n  bands:\n    hot: {interval_s: 200, hold_s: 60}\n",
            "attention.bands: must be monotonic (hot <= warm <= cool <= idle); got intervals [200, 120, 300, 600]",
        ),
        (
            "attention:\n  bands:\n    hot: {interval_s: 0, hold_s: 60}\n",
            "attention.bands.hot.interval_s: expected a number of seconds greater than 0, got 0",
        ),
        (
            "attention:\n  bands:\n    warm: {interval_s: 60, hold_s: 0}\n",
            "attention.bands.warm.hold_s: expected a number of seconds greater than 0, got 0",
        ),
        (
            "attention:\n  bands:\n    hot: {interval_s: 10}\n",
            "attention.bands.hot.hold_s: required for the hot band (a number of seconds greater than 0)",
        ),
        (
            "attention:\n  tick_s: 60\n  bands:\n    hot: {interval_s: 30, hold_s: 120}\n",
            "attention.tick_s: must be <= the smallest band interval (30 s), got 60",
        ),
        (
            "attention:\n  tick_s: 0\n",
            "attention.tick_s: expected a number of seconds greater than 0, got 0",
        ),
        (
            "attention:\n  bands:\n    hot: 30\n",
            "attention.bands.hot: expected a mapping with interval_s and hold_s, got 30",
        ),
    ];
    for (yaml, want) in failures {
        assert_eq!(errors(yaml), [want], "{yaml}");
    }
}

/// Vector 14: per-agent overrides resolve against the daemon's attention, at load time.
#[test]
fn vector_14_per_agent_attention() {
    let yaml = "\
attention:
  tick_s: 10
  bands:
    idle:
      interval_s: 600
agents:
  - nick: culture-main
    attention:
      enabled: false
      bands:
        hot:
          interval_s: 15
          hold_s: 60
  - nick: culture-other
";
    let config = ok(yaml).config;
    let resolved = config.agents[0].attention;
    assert!(!resolved.enabled);
    assert_eq!(resolved.tick, secs(10));
    assert_eq!(resolved.bands.hot, band(15, Some(60)));
    assert_eq!(resolved.bands.warm, band(120, Some(300)));
    assert_eq!(resolved.bands.idle, band(600, None));
    assert_eq!(config.agents[1].attention, config.attention);

    let overrides = "attention: {tick_s: 10}\nagents:\n  - nick: culture-a\n    attention_overrides:\n      bands: {hot: {interval_s: 5, hold_s: 60}}\n";
    assert_eq!(
        errors(overrides),
        [
            "agents[0].attention_overrides.tick_s: must be <= the smallest band interval (5 s), got 10"
        ]
    );
    let both = "agents:\n  - nick: culture-a\n    attention: {enabled: false}\n    attention_overrides: {enabled: true}\n";
    let loaded = ok(both);
    assert!(!loaded.config.agents[0].attention.enabled);
    assert_eq!(
        warnings(both),
        ["agents[0].attention_overrides: ignored: \"attention\" is also set and wins"]
    );
}

/// DEFECT 2.4-a: `poll_interval: 0` disables legacy polling and leaves the bands alone.
#[test]
fn poll_interval_zero_disables_polling_without_breaking_attention() {
    for yaml in [
        "poll_interval: 0\n",
        "poll_interval: -5\n",
        "poll_interval: 0\nattention: {}\n",
    ] {
        let config = ok(yaml).config;
        assert_eq!(config.poll_interval, None, "{yaml}");
        assert_eq!(config.attention, AttentionConfig::default(), "{yaml}");
    }
    assert_eq!(
        ok("poll_interval: 2.5\nattention: {tick_s: 1}\n")
            .config
            .poll_interval,
        Some(Duration::from_millis(2500))
    );
    assert_eq!(
        errors("poll_interval: 3\n"),
        [
            "poll_interval: 3 s is shorter than the default attention tick_s (5 s); use at least 5 (0 disables legacy polling) or add an attention: block"
        ]
    );
}

/// DEFECT 2.9-e: `turn_timeout_seconds` is honoured.
#[test]
fn turn_timeout_seconds() {
    let cases = [
        ("", Some(secs(600))),
        ("turn_timeout_seconds: 30", Some(secs(30))),
        (
            "turn_timeout_seconds: 1.5",
            Some(Duration::from_millis(1500)),
        ),
        ("turn_timeout_seconds: 0", None),
        ("turn_timeout_seconds: -1", None),
    ];
    for (line, want) in cases {
        let yaml = format!("agents:\n  - nick: culture-a\n    {line}\n");
        assert_eq!(ok(&yaml).config.agents[0].turn_timeout, want, "{line}");
    }
    let yaml = "agents:\n  - nick: culture-a\n    turn_timeout_seconds: soon\n";
    assert_eq!(
        errors(yaml),
        ["agents[0].turn_timeout_seconds: expected a number, got \"soon\""]
    );
}

/// The shape Culture's `save_config` writes: every field, nulls included, `sleep_end`
/// unquoted, `attention_overrides` per agent, idle `hold_s: null`.
#[test]
fn culture_round_trip_shape_loads_cleanly() {
    let yaml = "\
agents:
- agent: codex
  attention_overrides: null
  channels:
  - '#general'
  directory: /home/op/src/app
  icon: null
  model: gpt-5.4
  nick: culture-app
  system_prompt: ''
  tags: []
attention:
  bands:
    cool: {hold_s: 600, interval_s: 300}
    hot: {hold_s: 120, interval_s: 30}
    idle: {hold_s: null, interval_s: 600}
    warm: {hold_s: 300, interval_s: 120}
  enabled: true
  thread_window_s: 1800
  tick_s: 5
buffer_size: 500
poll_interval: 60
server: {host: localhost, name: culture, port: 6667}
sleep_end: 08:00
sleep_start: '23:00'
supervisor: {escalation_threshold: 3, eval_interval: 5, model: gpt-5.4, prompt_override: '', window_size: 20}
telemetry: {enabled: false, metrics_enabled: true, metrics_export_interval_ms: 10000, otlp_compression: gzip, otlp_endpoint: 'http://localhost:4317', otlp_protocol: grpc, otlp_timeout_ms: 5000, service_name: culture.harness.codex, traces_enabled: true, traces_sampler: parentbased_always_on}
webhooks:
  events: [agent_spiraling, agent_error, agent_question, agent_timeout, agent_complete]
  irc_channel: '#alerts'
  url: null
";
    let loaded = ok(yaml);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.attention, AttentionConfig::default());
    assert_eq!(loaded.config.telemetry.otlp_timeout, Some(secs(5)));
    assert_eq!(
        loaded.config.telemetry.otlp_compression,
        Some(OtlpCompression::Gzip)
    );
}
