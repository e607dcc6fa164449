//! `codexd repo run` when things go wrong, end to end: a remote asking for credentials, a
//! turn that fails, times out or is cancelled with Ctrl-C, a codex that goes silent; every
//! one exits 2 and commits nothing; approvals are answered by policy on the way. The real
//! codex offline against the fake model, or the scripted fake app-server.
//!
//! Peers: codex from `scripts/install-peers` (a missing one is a loud SKIP, a failure under
//! `CI=true`); git; python3 for the fake app-server.

#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/git_remote.rs"]
mod git_remote;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
#[path = "support/repo_project.rs"]
mod repo_project;
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fake_model::{Gate, Reply};
use git_remote::branches;
use repo_project::{Project, exited, fake_events, run_args, with_fake_codex};
use support::eventually;

#[test]
fn a_remote_asking_for_credentials_fails_within_the_timeout() {
    let project = Project::bare("");
    let ssh = project.scratch.path("ssh-waits-for-a-password");
    let pid_file = project.scratch.path("ssh.pid");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 300\n",
            pid_file.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let started = Instant::now();
    let out = project.repo_env(
        &[
            "run",
            "git@127.0.0.1:widget.git",
            "--branch",
            "b",
            "--task",
            "t",
            "--git-timeout",
            "2s",
        ],
        &[("GIT_SSH_COMMAND", ssh.to_str().expect("utf-8"))],
    );
    let (_, stderr) = exited(&out, 2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded by --git-timeout"
    );
    assert!(
        stderr.contains(
            "hint: git clone did not finish within 2s and was killed (is it waiting for credentials, or is the network stalled?)"
        ),
        "{stderr}"
    );
    let pid = std::fs::read_to_string(&pid_file).expect("ssh ran");
    let stat = PathBuf::from(format!("/proc/{}/stat", pid.trim()));
    eventually("the ssh stand-in is killed with git", || {
        let state = std::fs::read_to_string(&stat).unwrap_or_default();
        (state.is_empty() || state.split(' ').nth(2) == Some("Z")).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_turn_exits_2_and_commits_nothing() {
    let script = vec![Reply::patch("half.txt", "half done\n"), Reply::Status(500)];
    let Some(project) = Project::with_codex(script).await else {
        return;
    };
    let out = project.repo(&run_args(project.remote(), "broken", "Try and fail"));
    let (stdout, stderr) = exited(&out, 2);
    assert_eq!(stdout, "");
    assert!(stderr.contains("hint: the codex turn failed: "), "{stderr}");
    assert!(stderr.contains("; nothing was committed"), "{stderr}");
    assert_eq!(branches(&project.remote), ["main"], "nothing pushed");
    let checkout = project.checkout();
    assert!(
        checkout.join("half.txt").is_file(),
        "the checkout is left for a look"
    );
    assert_eq!(
        git_remote::run(&checkout, &["log", "--format=%s"]),
        "seed",
        "no commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_turn_is_interrupted_exits_2_and_commits_nothing() {
    let gate = Gate::new();
    let script = vec![
        Reply::patch("slow.txt", "partial\n"),
        Reply::held("never finished", &gate),
    ];
    let Some(project) = Project::with_codex(script).await else {
        return;
    };
    let mut args = run_args(project.remote(), "slow", "Take forever");
    args.extend(["--turn-timeout", "3s"]);
    let out = project.repo(&args);
    gate.open();
    let (_, stderr) = exited(&out, 2);
    assert!(
        stderr.contains("hint: the codex turn did not finish within 3s and was interrupted; nothing was committed"),
        "{stderr}"
    );
    assert_eq!(branches(&project.remote), ["main"], "nothing pushed");
    assert_eq!(
        git_remote::run(&project.checkout(), &["log", "--format=%s"]),
        "seed"
    );
}

#[test]
fn approvals_are_answered_by_policy_and_a_silent_codex_is_killed_at_the_deadlines() {
    let policy = "  approval_policy: on-request\n  approvals: accept\n  interrupt_timeout: 1s\n";
    let (project, log) = with_fake_codex("server_request", policy);
    let out = project.repo(&run_args(project.remote(), "asked", "Run a command"));
    exited(&out, 0);
    let answers: Vec<serde_json::Value> = fake_events(&log)
        .into_iter()
        .filter(|e| e["event"] == "answer")
        .collect();
    let answer = |id: i64| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(answer(901)["result"]["decision"], "accept", "{answers:?}");
    assert_eq!(
        answer(900)["error"]["code"],
        -32601,
        "an unknown request gets an error"
    );
    std::fs::remove_file(&log).ok();

    let (project, log) = with_fake_codex("hang,ignore_interrupt", policy);
    let mut args = run_args(project.remote(), "stuck", "Never finish");
    args.extend(["--turn-timeout", "1s"]);
    let started = Instant::now();
    let out = project.repo(&args);
    let (_, stderr) = exited(&out, 2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded by the deadlines"
    );
    assert!(
        stderr.contains("hint: codex stopped answering (an interrupted turn did not end within 1s); its process was killed; nothing was committed"),
        "{stderr}"
    );
    let events = fake_events(&log);
    assert!(
        events.iter().any(|e| e["event"] == "interrupt"),
        "it was interrupted first"
    );
    assert_eq!(branches(&project.remote), ["main"]);
    std::fs::remove_file(&log).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_turn_and_nothing_is_committed() {
    let gate = Gate::new();
    let script = vec![
        Reply::patch("maybe.txt", "maybe\n"),
        Reply::held("thinking", &gate),
    ];
    let Some(project) = Project::with_codex(script).await else {
        return;
    };
    let mut command = project.scratch.codexd();
    command
        .env_remove("RUST_LOG")
        .current_dir(&project.dir)
        .arg("repo")
        .args(run_args(project.remote(), "interrupted", "Wait for me"))
        .arg("--config")
        .arg(project.scratch.config())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("spawn codexd repo run");
    let model = project.model.as_ref().expect("codex");
    eventually("the turn is held mid-answer", || {
        (model.held() > 0).then_some(())
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("exit");
    gate.open();
    let (_, stderr) = exited(&out, 2);
    assert!(
        stderr.contains("hint: the codex turn was cancelled; nothing was committed"),
        "{stderr}"
    );
    assert_eq!(branches(&project.remote), ["main"], "nothing pushed");
    assert_eq!(
        git_remote::run(&project.checkout(), &["log", "--format=%s"]),
        "seed"
    );
}
