//! Every example in `config/` parses and validates; a broken config reports all its errors.

use std::path::{Path, PathBuf};

use codexd::config::{self, ConfigError, Loaded};
use codexd::env::Env;

fn env() -> Env {
    Env::from_pairs([("HOME", "/home/op"), ("XDG_RUNTIME_DIR", "/run/user/1000")])
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    paths.sort();
    paths
}

fn load(name: &str) -> Loaded {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name);
    config::load(&path, &env()).unwrap_or_else(|error| panic!("{name}: {error}"))
}

#[test]
fn every_example_config_is_valid() {
    let paths = examples();
    assert!(
        paths.len() >= 4,
        "expected the example configs, found {paths:?}"
    );
    for path in paths {
        if let Err(error) = config::load(&path, &env()) {
            panic!("{}: {error}", path.display());
        }
    }
}

#[test]
fn minimal_full_and_drill_have_no_warnings() {
    for name in ["minimal.yaml", "full.yaml", "drill.yaml"] {
        assert_eq!(load(name).warnings, [], "{name}");
    }
    assert_eq!(load("minimal.yaml").config.agents.len(), 1);
}

#[test]
fn the_culture_file_passes_with_warnings_only() {
    let loaded = load("culture-agents.yaml");
    let nicks: Vec<&str> = loaded
        .config
        .agents
        .iter()
        .map(|agent| agent.nick.as_str())
        .collect();
    assert_eq!(
        nicks,
        ["spark-codex", "spark-ops"],
        "spark-docs is archived"
    );
    let warned: Vec<&str> = loaded
        .warnings
        .iter()
        .map(|warning| warning.path.as_str())
        .collect();
    for path in [
        "server.archived",
        "supervisor.thinking",
        "agents[1]",
        "agents[2].acp_command",
    ] {
        assert!(warned.contains(&path), "no warning for {path}: {warned:?}");
    }
}

#[test]
fn the_drill_runs_three_agents_on_test_children() {
    let config = load("drill.yaml").config;
    assert_eq!(config.agents.len(), 3);
    for agent in &config.agents {
        assert_eq!(
            agent.test_children,
            ["irc", "socket", "runner"],
            "{}",
            agent.nick
        );
    }
    assert_eq!(config.sleep, None);
    assert_eq!(config.agents[2].restart.max_restarts, 1);
}

#[test]
fn a_broken_config_reports_every_error_with_its_key_path() {
    let broken = "\
server:
  name: spark
  port: \"abc\"
poll_interval: 0
sleep_start: \"24:00\"
telemetry:
  otlp_compression: brotli
restart:
  window: 300
agents:
  - nick: spark-a
    chanels: ['#general']
  - nick: codex-b
    channels: [general]
    tags: [\"a b\"]
  - nick: spark-a
    test_children: [irc, sockett]
";
    let Err(ConfigError::Invalid { errors }) = config::parse(broken, &env()) else {
        panic!("the broken config was accepted");
    };
    let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "server.port",
            "sleep_start",
            "telemetry.otlp_compression",
            "restart.window",
            "agents[0].chanels",
            "agents[1].nick",
            "agents[1].channels[0]",
            "agents[1].tags[0]",
            "agents[2].nick",
            "agents[2].test_children[1]",
        ]
    );
    let text = ConfigError::Invalid { errors }.to_string();
    assert!(
        text.contains("agents[1].nick: must start with \"spark-\""),
        "{text}"
    );
    assert!(
        text.contains("agents[0].chanels: unknown key; did you mean \"channels\"?"),
        "{text}"
    );
}
