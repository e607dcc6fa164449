use std::time::Instant;

use super::*;

fn git(timeout: Duration) -> Git {
    Git::new(timeout)
}

async fn init(dir: &Path) {
    git(Duration::from_secs(30))
        .run("init", dir, &["init", "--quiet", "."], &Cancel::default())
        .await
        .expect("git init");
}

/// Waits (polling, bounded) until no process with `pid` is left.
async fn gone(pid: u32) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    for _ in 0..400 {
        let state = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
        // Absent, or a zombie its new parent has not reaped yet: not running.
        if state.is_empty() || state.split(' ').nth(2) == Some("Z") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// An ssh stand-in that records its pid and never answers (a host waiting for a password).
fn hanging_ssh(dir: &Path) -> (OsString, PathBuf) {
    let script = dir.join("ssh-hangs");
    let pid_file = dir.join("ssh.pid");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 300\n",
            pid_file.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    (script.into_os_string(), pid_file)
}

#[tokio::test]
async fn a_failed_call_is_a_typed_error_with_gits_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    init(dir.path()).await;
    let error = git(Duration::from_secs(30))
        .run(
            "rev-parse",
            dir.path(),
            &["rev-parse", "--verify", "--end-of-options", "nope^{commit}"],
            &Cancel::default(),
        )
        .await
        .expect_err("no such ref");
    let GitError::Failed {
        step,
        code,
        message,
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!((step, code), ("rev-parse", Some(128)));
    assert_eq!(message, "fatal: Needed a single revision");
}

#[tokio::test]
async fn a_hanging_ssh_is_killed_and_reaped_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ssh, pid_file) = hanging_ssh(dir.path());
    let mut runner = git(Duration::from_secs(1));
    runner.env.push(("GIT_SSH_COMMAND".into(), ssh));
    let started = Instant::now();
    let error = runner
        .run(
            "ls-remote",
            dir.path(),
            &["ls-remote", "--end-of-options", "git@127.0.0.1:repo.git"],
            &Cancel::default(),
        )
        .await
        .expect_err("it hangs");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded by the timeout"
    );
    assert_eq!(
        error,
        GitError::TimedOut {
            step: "ls-remote",
            after: Duration::from_secs(1)
        }
    );
    assert!(
        error.to_string().contains("within 1s and was killed"),
        "{error}"
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("ssh ran")
        .trim()
        .parse()
        .expect("a pid");
    assert!(
        gone(pid).await,
        "the ssh grandchild {pid} was killed with git"
    );
}

#[tokio::test]
async fn a_cancelled_call_is_killed_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ssh, pid_file) = hanging_ssh(dir.path());
    let mut runner = git(Duration::from_secs(600));
    runner.env.push(("GIT_SSH_COMMAND".into(), ssh));
    let cancel = Cancel::default();
    let call = runner.run(
        "clone",
        dir.path(),
        &["clone", "--", "git@127.0.0.1:repo.git", "out"],
        &cancel,
    );
    let trigger = async {
        // Cancel once ssh is up (its pid file written).
        for _ in 0..400 {
            if std::fs::read_to_string(&pid_file).is_ok_and(|t| t.ends_with('\n')) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(call, trigger);
    assert_eq!(result, Err(GitError::Cancelled { step: "clone" }));
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("ssh ran")
        .trim()
        .parse()
        .expect("a pid");
    assert!(gone(pid).await, "ssh {pid} was killed");
}

#[test]
fn failure_messages_follow_upstream_and_are_redacted() {
    let table = [
        ("push", "", "fatal: x\n", "fatal: x"),
        ("push", "y\n", "", "y"),
        ("clone", "", "", "git clone failed"),
        ("push", " ", "\n", "git command failed"),
        (
            "clone",
            "",
            "fatal: unable to access 'https://ori:tok@example.com/a.git/?x=1': 403",
            "fatal: unable to access 'https://example.com/a.git/': 403",
        ),
    ];
    for (step, stdout, stderr, want) in table {
        assert_eq!(failure_message(step, stdout, stderr), want, "{stderr:?}");
    }
}

#[test]
fn nothing_can_prompt() {
    let env = prompt_free_env();
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    };
    assert_eq!(get("GIT_TERMINAL_PROMPT").as_deref(), Some("0"));
    assert_eq!(get("GIT_ASKPASS").as_deref(), Some(""));
    assert_eq!(get("SSH_ASKPASS_REQUIRE").as_deref(), Some("force"));
}
