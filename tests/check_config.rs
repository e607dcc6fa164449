//! `codexd check-config` and the plain CLI contracts: every example config passes, a
//! broken one lists every error with its key path, bad paths get a `hint:`.

mod support;

use support::Scratch;

fn examples() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("config/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no example configs in {}", dir.display());
    files
}

#[test]
fn every_example_config_checks_clean() {
    let scratch = Scratch::new();
    for file in examples() {
        let out = scratch
            .codexd()
            .arg("check-config")
            .arg("--config")
            .arg(&file)
            .output()
            .expect("run");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{}: {stderr}", file.display());
        assert!(stdout.contains("valid"), "{}: {stdout}", file.display());
        assert!(!stderr.contains("error:"), "{}: {stderr}", file.display());
    }
}

#[test]
fn a_broken_config_reports_every_error_with_its_key_path() {
    let scratch = Scratch::new();
    let broken = "server:\n  name: spark\n  port: 99999\nbuffer_size: -3\nrestart:\n  window: 300\n  jitter: 4\nagents:\n  - nick: spark-a\n    chanels: ['#x']\n  - nick: codex-b\n  - nick: spark-a\n    test_children: [irc, warp]\n";
    std::fs::write(scratch.config(), broken).expect("write");
    let out = scratch
        .codexd()
        .arg("check-config")
        .arg("--config")
        .arg(scratch.config())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    for path in [
        "server.port",
        "buffer_size",
        "restart.window",
        "restart.jitter",
        "agents[0].chanels",
        "agents[1].nick",
        "agents[2].nick",
        "agents[2].test_children",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("error: {path}"))),
            "missing {path} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("did you mean \"channels\""), "{stderr}");
    assert!(stderr.contains("must start with \"spark-\""), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn a_missing_config_is_a_hint_and_exit_78() {
    let scratch = Scratch::new();
    let out = scratch
        .codexd()
        .args(["check-config", "--config", "/nonexistent/agents.yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("hint: failed to load config '/nonexistent/agents.yaml'")
    );
}

#[test]
fn the_default_config_path_expands_tilde_and_honours_codexd_config() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path(".culture")).expect("mkdir");
    std::fs::write(scratch.path(".culture/agents.yaml"), "agents: []\n").expect("write");
    let out = scratch.codexd().arg("check-config").output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(".culture/agents.yaml"));

    std::fs::write(scratch.path("other.yaml"), "agents: []\n").expect("write");
    let out = scratch
        .codexd()
        .arg("check-config")
        .env("CODEXD_CONFIG", scratch.path("other.yaml"))
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("other.yaml"));
}

#[test]
fn version_and_help() {
    let scratch = Scratch::new();
    let out = scratch.codexd().arg("--version").output().expect("run");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("codexd {}", env!("CARGO_PKG_VERSION"))
    );
    let out = scratch.codexd().output().expect("run");
    assert!(out.status.success(), "no arguments prints help and exits 0");
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["run", "check-config", "status", "reset", "fault"] {
        assert!(help.contains(word), "{help}");
    }
}
