//! Culture 14's manifest (`server.yaml` + each agent's `culture.yaml`), codexd's own file
//! pointing at it (`culture:`), archived agents, and the default config path.

use std::path::{Path, PathBuf};

use super::tests::env;
use super::*;

/// The manifest Culture's CLI writes when it migrates a legacy file (`save_server_config`),
/// with `agents:` pointing at `dirs`.
fn manifest(agents: &[(&str, &Path)]) -> String {
    let mut text = String::from(
        "\
server: {name: spark, host: 127.0.0.1, port: 6999, archived: false, archived_at: '', archived_reason: ''}
supervisor: {model: claude-sonnet-4-6, thinking: medium, window_size: 20, eval_interval: 5, escalation_threshold: 3, prompt_override: ''}
webhooks: {url: null, irc_channel: '#alerts', events: [agent_spiraling, agent_error, agent_question, agent_timeout, agent_complete]}
telemetry:
  enabled: false
  service_name: culture.agentirc
  otlp_endpoint: http://localhost:4317
  otlp_protocol: grpc
  otlp_timeout_ms: 5000
  otlp_compression: gzip
  traces_enabled: true
  traces_sampler: parentbased_always_on
  metrics_enabled: true
  metrics_export_interval_ms: 10000
  audit_enabled: true
  audit_dir: ~/.culture/audit
  audit_max_file_bytes: 268435456
  audit_rotate_utc_midnight: true
  audit_queue_depth: 10000
presence: {heartbeat_interval_seconds: 30, stale_after_seconds: 90}
buffer_size: 500
poll_interval: 60
sleep_start: '23:00'
sleep_end: 08:00
agents:
",
    );
    for (suffix, dir) in agents {
        text.push_str(&format!("  {suffix}: {}\n", dir.display()));
    }
    text
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn strings(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics.iter().map(ToString::to_string).collect()
}

#[test]
fn a_migrated_manifest_loads_with_its_codex_agents_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    write(
        &one,
        "culture.yaml",
        "suffix: codex\nbackend: codex\nmodel: fake-model\nturn_timeout_seconds: 30\nchannels: ['#dev']\n",
    );
    write(
        &two,
        "culture.yaml",
        "agents:\n- {suffix: old, backend: codex, archived: true, archived_at: '2025-01-01', archived_reason: retired}\n- {suffix: claude, backend: claude}\n- {suffix: second, backend: codex, archived: false}\n",
    );
    let text = manifest(&[
        ("codex", &one),
        ("old", &two),
        ("claude", &two),
        ("second", &two),
        ("gone", &dir.path().join("gone")),
    ]);
    let loaded = parse(&text, &env()).unwrap_or_else(|e| panic!("{e}"));
    let config = &loaded.config;
    let nicks: Vec<&str> = config.agents.iter().map(|a| a.nick.as_str()).collect();
    assert_eq!(nicks, ["spark-codex", "spark-second"]);
    let codex = config.agent("spark-codex").expect("hosted");
    assert_eq!(codex.directory, one);
    assert_eq!(codex.model, "fake-model");
    assert_eq!(codex.channels, ["#dev"]);
    assert_eq!(config.server.port, 6999);
    assert!(
        !config.overseer.enabled,
        "culture's supervisor block is not an opt-in"
    );
    assert_eq!(config.telemetry.service_name, None);
    let two_yaml = two.join("culture.yaml").display().to_string();
    let gone = dir.path().join("gone/culture.yaml").display().to_string();
    assert_eq!(
        strings(&loaded.warnings),
        [
            "agents.old: spark-old archived since 2025-01-01 (retired); not hosted".to_owned(),
            format!(
                "agents.claude: spark-claude: backend \"claude\" in {two_yaml}; codexd hosts backend codex only; not hosted"
            ),
            format!("agents.gone: spark-gone: {gone} is missing; not hosted"),
        ]
    );
}

#[test]
fn errors_in_a_culture_yaml_name_that_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = dir.path().join("one");
    let file = write(
        &one,
        "culture.yaml",
        "suffix: codex\nbackend: codex\nchanels: ['#dev']\n",
    );
    let broken = dir.path().join("broken");
    let broken_file = write(&broken, "culture.yaml", "suffix: [\n");
    let text = manifest(&[("codex", &one), ("broken", &broken)]);
    let Err(ConfigError::Invalid { errors }) = parse(&text, &env()) else {
        panic!("expected errors");
    };
    let errors = strings(&errors);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("agents.broken: {}: ", broken_file.display())),
        "{errors:?}"
    );
    assert_eq!(
        errors[1],
        format!(
            "{}: chanels: unknown key; did you mean \"channels\"?",
            file.display()
        )
    );
}

#[test]
fn codexds_own_file_points_at_cultures_and_adds_its_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = dir.path().join("one");
    write(&one, "culture.yaml", "suffix: codex\nbackend: codex\n");
    let culture = write(dir.path(), "server.yaml", &manifest(&[("codex", &one)]));
    let own = format!(
        "culture: {}\ncodex: {{binary: /opt/codex}}\nsupervisor: {{enabled: true, model: gpt-5.4}}\nserver: {{flood_rate: 0}}\nsleep_start: '0:00'\nsleep_end: '0:00'\n",
        culture.display()
    );
    let config = parse(&own, &env()).expect("valid").config;
    assert_eq!(config.agents.len(), 1);
    assert_eq!(config.codex.binary, PathBuf::from("/opt/codex"));
    assert!(config.overseer.enabled);
    assert_eq!(config.overseer.model, "gpt-5.4");
    assert_eq!(config.overseer.window_size, 20, "culture's keys stay");
    assert_eq!(
        config.server.port, 6999,
        "a section is laid over key by key"
    );
    assert_eq!(config.sleep, None);

    // The legacy file works the same way, and `~` is expanded.
    let home = Env::from_pairs([("HOME", dir.path().to_str().unwrap())]);
    write(
        dir.path(),
        "agents.yaml",
        "server: {name: spark}\nagents:\n  - {nick: spark-a, agent: codex}\n  - {nick: spark-b, archived: true}\n",
    );
    let loaded = parse("culture: ~/agents.yaml\n", &home).expect("valid");
    assert_eq!(loaded.config.agents.len(), 1);
    assert_eq!(
        strings(&loaded.warnings),
        ["agents[1]: archived; not hosted"]
    );
}

#[test]
fn codexds_own_file_does_not_list_agents_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let culture = write(dir.path(), "agents.yaml", "agents: []\n");
    let own = format!("culture: {}\nagents: []\nbogus: 1\n", culture.display());
    let Err(ConfigError::Invalid { errors }) = parse(&own, &env()) else {
        panic!("expected errors");
    };
    assert_eq!(errors[0].path, "agents");
    assert_eq!(errors[1].to_string(), "bogus: unknown key");
    let missing = parse("culture: /nonexistent/server.yaml\n", &env());
    assert!(
        matches!(missing, Err(ConfigError::Read { .. })),
        "{missing:?}"
    );
    let wrong = parse("culture: 3\n", &env()).expect_err("not a path");
    assert!(
        wrong.to_string().contains("culture: expected the path"),
        "{wrong}"
    );
}

#[test]
fn archived_legacy_agents_are_not_hosted() {
    let yaml = "server: {name: spark}\nagents:\n  - {nick: spark-a, archived: false}\n  - {nick: spark-b, archived: true, archived_at: '2026-01-02', archived_reason: done}\n";
    let loaded = parse(yaml, &env()).expect("valid");
    let nicks: Vec<&str> = loaded
        .config
        .agents
        .iter()
        .map(|a| a.nick.as_str())
        .collect();
    assert_eq!(nicks, ["spark-a"]);
    assert_eq!(
        strings(&loaded.warnings),
        ["agents[1]: archived since 2026-01-02 (done); not hosted"]
    );
    let after_archived = "server: {name: spark}\nagents:\n  - {nick: spark-a, archived: true}\n  - {nick: spark-b, chanels: []}\n";
    assert_eq!(
        super::tests::errors(after_archived),
        ["agents[1].chanels: unknown key; did you mean \"channels\"?"],
        "key paths count the file's entries"
    );
}

#[test]
fn default_path_prefers_codexds_file_then_cultures() {
    let home = Env::from_pairs([("HOME", "/h")]);
    let xdg = Env::from_pairs([("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")]);
    let only = |existing: &'static [&'static str]| {
        move |path: &Path| existing.iter().any(|e| Path::new(e) == path)
    };
    let cases: [(&Env, &'static [&'static str], &str); 6] = [
        (&home, &[], "/h/.culture/agents.yaml"),
        (
            &home,
            &["/h/.culture/server.yaml"],
            "/h/.culture/server.yaml",
        ),
        (
            &home,
            &["/h/.culture/server.yaml", "/h/.config/codexd/config.yaml"],
            "/h/.config/codexd/config.yaml",
        ),
        (
            &xdg,
            &["/h/.config/codexd/config.yaml"],
            "/h/.culture/agents.yaml",
        ),
        (&xdg, &["/x/codexd/config.yaml"], "/x/codexd/config.yaml"),
        (
            &Env::from_pairs([("HOME", "/h"), ("CODEXD_CONFIG", "/c.yaml")]),
            &["/x/codexd/config.yaml", "/h/.culture/server.yaml"],
            "/c.yaml",
        ),
    ];
    for (env, existing, want) in cases {
        let got = default_path(env, &only(existing)).expect("resolves");
        assert_eq!(got, PathBuf::from(want), "{env:?} {existing:?}");
    }
}
