//! contrib/systemd/codexd.service: the settings docs/deploy.md relies on are there, and
//! `systemd-analyze verify` accepts the unit (with ExecStart pointing at the binary just
//! built, since verify checks that it exists). Without systemd-analyze the check is skipped
//! loudly, and fails under CI=true (scripts/install-peers installs it).

use std::path::Path;
use std::process::Command;

const UNIT: &str = include_str!("../contrib/systemd/codexd.service");

#[test]
fn the_unit_asks_for_what_the_daemon_does() {
    let settings: Vec<&str> = UNIT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for wanted in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30s",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillMode=mixed",
        "StateDirectory=codexd",
        "RuntimeDirectory=codexd",
        "Environment=XDG_RUNTIME_DIR=%t/codexd",
        "Environment=CODEXD_CONFIG=%E/codexd/agents.yaml",
    ] {
        assert!(settings.contains(&wanted), "missing {wanted}");
    }
    // Each of these would stop codex's sandbox (user namespaces, its own seccomp filter) or
    // the JIT of commands agents run.
    for absent in [
        "RestrictNamespaces",
        "PrivateUsers",
        "SystemCallFilter",
        "MemoryDenyWriteExecute",
    ] {
        assert!(
            !settings.iter().any(|l| l.starts_with(absent)),
            "{absent} is set"
        );
    }
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("systemd-analyze missing under CI=true (scripts/install-peers systemd)");
        }
        eprintln!("SKIP: systemd-analyze not installed (run scripts/install-peers systemd)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("codexd.service");
    let text = UNIT.replace("/usr/local/bin/codexd", env!("CARGO_BIN_EXE_codexd"));
    std::fs::write(&unit, text).expect("write unit");
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("codexd.service:"),
        "warnings about the unit: {stderr}"
    );
}
