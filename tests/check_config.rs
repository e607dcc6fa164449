//! `codexd check-config` and the plain CLI contracts: every example config passes (the file
//! alone: `--no-preflight`, since its directories and codex are not on this machine), a
//! broken one lists every error with its key path, bad paths get a `hint:`, and preflight
//! names every missing directory or binary by its key.

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
            .args(["check-config", "--no-preflight", "--config"])
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

/// A fake codex that prints `version` for `--version`.
fn fake_codex(scratch: &Scratch, version: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = scratch.path("bin/codex");
    std::fs::create_dir_all(scratch.path("bin")).expect("mkdir");
    std::fs::write(&path, format!("#!/bin/sh\necho '{version}'\n")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// One agent in `directory`, codex at `binary`, state and sockets in the scratch dir.
fn machine_config(scratch: &Scratch, directory: &str, binary: &str) {
    scratch.write_config(&format!(
        "server:\n  name: spark\n  host: 127.0.0.1\ncontrol_socket: {{socket}}\nstate_dir: {{home}}/state\n\
         codex:\n  binary: {binary}\nagents:\n  - nick: spark-a\n    directory: {directory}\n"
    ));
}

fn check(scratch: &Scratch) -> (Option<i32>, String, String) {
    let out = scratch
        .codexd()
        .args(["check-config", "--config"])
        .arg(scratch.config())
        .output()
        .expect("run");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn preflight_names_a_missing_directory_and_codex_binary_by_key() {
    let scratch = Scratch::new();
    let missing_dir = scratch.path("nowhere");
    let missing_codex = scratch.path("bin/no-codex");
    machine_config(
        &scratch,
        missing_dir.to_str().expect("utf-8"),
        missing_codex.to_str().expect("utf-8"),
    );
    let (code, stdout, stderr) = check(&scratch);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(!stdout.contains("valid"), "{stdout}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors[0].starts_with(&format!(
            "error: agents[0].directory: {}: ",
            missing_dir.display()
        )),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with(&format!(
            "error: codex.binary: {}: ",
            missing_codex.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--no-preflight"), "{stderr}");

    // The same file passes with --no-preflight: it is valid, the machine is not ready.
    let out = scratch
        .codexd()
        .args(["check-config", "--no-preflight", "--config"])
        .arg(scratch.config())
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");

    // A codex name without a slash is looked up in PATH, like run does.
    machine_config(
        &scratch,
        scratch.path("").to_str().expect("utf-8"),
        "codex-nowhere-42",
    );
    let (code, _, stderr) = check(&scratch);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("error: codex.binary: codex-nowhere-42 was not found in PATH"),
        "{stderr}"
    );
}

#[test]
fn preflight_passes_on_a_ready_machine_and_reports_the_codex_version() {
    let scratch = Scratch::new();
    let codex = fake_codex(&scratch, "codex-cli 0.169.0");
    std::fs::create_dir_all(scratch.path("work")).expect("mkdir");
    machine_config(
        &scratch,
        scratch.path("work").to_str().expect("utf-8"),
        codex.to_str().expect("utf-8"),
    );
    let (code, stdout, stderr) = check(&scratch);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stderr.contains("error:") && !stderr.contains("warning:"),
        "{stderr}"
    );
    assert!(stdout.contains("valid, 1 agent(s)"), "{stdout}");
    assert!(
        stdout.contains(&format!("codex.binary {}: codex 0.169.0", codex.display())),
        "{stdout}"
    );
}

#[test]
fn preflight_warns_about_an_untested_codex_and_fails_a_silent_one() {
    let scratch = Scratch::new();
    let codex = fake_codex(&scratch, "codex-cli 0.170.2");
    machine_config(
        &scratch,
        scratch.path("").to_str().expect("utf-8"),
        codex.to_str().expect("utf-8"),
    );
    let (code, stdout, stderr) = check(&scratch);
    assert_eq!(code, Some(0), "a version mismatch is a warning: {stderr}");
    assert!(
        stderr.contains("warning: codex.binary: ") && stderr.contains("is codex 0.170.2"),
        "{stderr}"
    );
    assert!(stdout.contains("codex 0.170.2"), "{stdout}");

    fake_codex(&scratch, "");
    let (code, _, stderr) = check(&scratch);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("--version` printed no version"), "{stderr}");
}
