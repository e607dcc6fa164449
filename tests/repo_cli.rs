//! `codexd repo run | push | clean` in-process, end to end: the real codex binary offline
//! against the fake model (whose `Patch` makes codex add a file), local bare repositories
//! as remotes, and an enclosing project repository as the current directory
//! (codexd-spec §18, defects 18-a … 18-g).
//!
//! Peers: codex from `scripts/install-peers` (a missing one is a loud SKIP, a failure
//! under `CI=true`); git.

#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/git_remote.rs"]
mod git_remote;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use codex_peer::{CodexConfig, CodexHome, codex_bin};
use fake_model::{FakeModel, Gate, Reply};
use git_remote::{branches, file_at, seeded_bare, subjects};
use otlp::{OtlpSink, ReceivedSpan};
use support::{Scratch, eventually};

/// A project (an enclosing git repository with its own remote) to run `codexd repo` in,
/// a remote to work on, and codex offline against a fake model.
struct Project {
    scratch: Scratch,
    /// The current directory of every command: a git repository of its own.
    dir: PathBuf,
    /// The project's own remote (which `repo` must never touch).
    own_remote: PathBuf,
    /// The remote `repo run` clones.
    remote: PathBuf,
    model: Option<FakeModel>,
    _home: Option<CodexHome>,
}

impl Project {
    /// With codex against a fake model answering `script` (`None` when codex is missing:
    /// the caller returns, SKIP printed).
    async fn with_codex(script: Vec<Reply>) -> Option<Project> {
        Project::with_codex_and(script, "").await
    }

    /// [`Project::with_codex`] with more top-level config (`telemetry:`).
    async fn with_codex_and(script: Vec<Reply>, top: &str) -> Option<Project> {
        let bin = codex_bin()?;
        let model = FakeModel::start(script).await;
        let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
        let project = Project::bare(&format!(
            "{top}codex:\n  binary: {}\n  env:\n    CODEX_HOME: {}\n    HOME: {}\n    FAKE_API_KEY: dummy\n    RUST_LOG: warn\n",
            bin.display(),
            home.codex_home().display(),
            home.home().display()
        ));
        Some(Project {
            model: Some(model),
            _home: Some(home),
            ..project
        })
    }

    /// Without the real codex (input errors and git failures come before any turn): the
    /// fake app-server, or the `codex:` given.
    fn bare(codex_yaml: &str) -> Project {
        let scratch = Scratch::new();
        let dir = scratch.path("project");
        let own_remote = seeded_bare(scratch.dir.path(), "own");
        git_remote::run(
            scratch.dir.path(),
            &[
                "clone",
                "--quiet",
                own_remote.to_str().expect("utf-8"),
                "project",
            ],
        );
        let remote = seeded_bare(scratch.dir.path(), "widget");
        // No test without a codex of its own may start whatever `codex` is on PATH.
        let fake = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/fake_app_server.py"
        );
        let default_codex = format!("codex:\n  binary: {fake}\n");
        let codex_yaml = match codex_yaml {
            "" => default_codex.as_str(),
            given => given,
        };
        scratch.write_config(&format!(
            "server: {{name: spark}}\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\n{codex_yaml}"
        ));
        Project {
            scratch,
            dir,
            own_remote,
            remote,
            model: None,
            _home: None,
        }
    }

    /// `codexd repo <args>` in the project, with the config.
    fn repo(&self, args: &[&str]) -> Output {
        self.repo_env(args, &[])
    }

    fn repo_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.scratch.codexd();
        command
            .env_remove("RUST_LOG")
            .current_dir(&self.dir)
            .arg("repo");
        command.args(args);
        if args.first() == Some(&"run") {
            command.arg("--config").arg(self.scratch.config());
        }
        command.envs(env.iter().copied());
        command.output().expect("run codexd repo")
    }

    fn remote(&self) -> &str {
        self.remote.to_str().expect("utf-8")
    }

    fn checkout(&self) -> PathBuf {
        self.dir.join(".codexd/work/widget")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit code and returns (stdout, stderr).
fn exited(out: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

fn run_args<'a>(remote: &'a str, branch: &'a str, task: &'a str) -> Vec<&'a str> {
    vec!["run", remote, "--branch", branch, "--task", task]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_pushes_its_branch_with_one_commit_and_the_file_codex_added() {
    let script = vec![
        Reply::patch("hello.txt", "hello from codex\n"),
        Reply::text("Added hello.txt."),
    ];
    let Some(project) = Project::with_codex(script).await else {
        return;
    };
    let task = "Add hello.txt\nwith a friendly line";
    let mut args = run_args(project.remote(), "fix/hello", task);
    args.extend(["--base", "origin/main"]);
    let out = project.repo(&args);
    let (stdout, stderr) = exited(&out, 0);
    eprintln!("codexd repo run said on stderr:\n{stderr}");
    let commit = git_remote::run(
        &project.remote,
        &["rev-parse", "--short", "refs/heads/fix/hello"],
    );
    assert_eq!(
        stdout,
        format!(
            "pushed: workspace={} branch=fix/hello commit={commit} target=origin/fix/hello\n",
            project.checkout().display()
        )
    );
    assert_eq!(
        subjects(&project.remote, "fix/hello"),
        Some(vec!["codexd: Add hello.txt".to_owned(), "seed".to_owned()]),
        "one commit on top of main, upstream's message from the first line"
    );
    assert_eq!(
        file_at(&project.remote, "fix/hello", "hello.txt").as_deref(),
        Some("hello from codex")
    );
    for line in [
        "cloning: ",
        "running codex on: Add hello.txt",
        "tool fileChange: hello.txt",
        "pushing: ",
        "timings: clone ",
    ] {
        assert!(stderr.contains(line), "progress has {line:?}:\n{stderr}");
    }
    assert_eq!(
        branches(&project.own_remote),
        ["main"],
        "the project's remote untouched"
    );
    let model = project.model.as_ref().expect("codex");
    let requests = model.wait_requests(1).await;
    let body = requests[0].to_string();
    assert!(body.contains("Add hello.txt"), "the task reached the model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_changes_exits_0_and_pushes_nothing() {
    let Some(project) = Project::with_codex(vec![Reply::text("Nothing to change.")]).await else {
        return;
    };
    let out = project.repo(&run_args(project.remote(), "idle", "Look around"));
    let (stdout, _) = exited(&out, 0);
    assert_eq!(
        stdout,
        format!(
            "no changes: workspace={} branch=idle\n",
            project.checkout().display()
        )
    );
    assert_eq!(branches(&project.remote), ["main"], "nothing pushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_lets_codex_write_the_checkout_only() {
    let Some(project) = Project::with_codex(Vec::new()).await else {
        return;
    };
    // The project around the workspace is the nearest place the model might try.
    let outside = project.dir.join("escaped.txt");
    let command = format!("echo in > inside.txt; echo out > {}", outside.display());
    let model = project.model.as_ref().expect("codex");
    model.push(Reply::exec(&command));
    model.push(Reply::text("done"));
    let out = project.repo(&run_args(project.remote(), "scoped", "Write two files"));
    exited(&out, 0);
    assert!(!outside.exists(), "nothing written outside the checkout");
    assert_eq!(
        file_at(&project.remote, "scoped", "inside.txt").as_deref(),
        Some("in")
    );
}

#[test]
fn bad_input_is_refused_with_upstreams_messages_before_anything_runs() {
    let project = Project::bare("");
    let help = project.repo(&[]);
    let (stdout, _) = exited(&help, 0);
    for word in ["Usage: codexd repo", "run", "push", "clean", "cancel"] {
        assert!(
            stdout.contains(word),
            "`codexd repo` prints its help: {stdout}"
        );
    }
    let remote = project.remote();
    let table: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "run", remote, "--branch", "b", "--task", "t", "--base", "-x",
            ],
            "unsafe base ref: '-x'",
        ),
        (
            vec![
                "run",
                remote,
                "--branch",
                "b",
                "--task",
                "t",
                "--base=--upload-pack=touch /tmp/pwned",
            ],
            "unsafe base ref: '--upload-pack=touch /tmp/pwned'",
        ),
        (
            vec!["run", remote, "--branch", "a..b", "--task", "t"],
            "unsafe branch name: 'a..b'",
        ),
        (
            vec!["run", remote, "--branch", "-f", "--task", "t"],
            "unsafe branch name: '-f'",
        ),
        (
            vec!["run", remote, "--branch", "x.lock", "--task", "t"],
            "unsafe branch name: 'x.lock'",
        ),
        (
            vec!["run", remote, "--branch", " b", "--task", "t"],
            "branch name must be non-empty and trimmed",
        ),
        (
            vec![
                "run",
                remote,
                "--branch",
                "b",
                "--task",
                "t",
                "--workspace",
                "/tmp/elsewhere",
            ],
            "workspace must be inside the current repository",
        ),
        (
            vec![
                "run",
                remote,
                "--branch",
                "b",
                "--task",
                "t",
                "--workspace",
                ".",
            ],
            "workspace must not be the repository root",
        ),
        (
            vec![
                "run",
                "http://example.com/a.git",
                "--branch",
                "b",
                "--task",
                "t",
            ],
            "remote must be an HTTPS or SSH Git remote",
        ),
        (
            vec![
                "run",
                "https://ori:s3cr3tpw@example.com/a.git",
                "--branch",
                "b",
                "--task",
                "t",
            ],
            "remote must not carry a password or token",
        ),
        (
            vec!["run", remote, "--branch", "b", "--task", " "],
            "task must be non-empty",
        ),
        (vec!["push"], "--branch is required for repo push"),
        (
            vec!["push", "--branch", "a//b"],
            "unsafe branch name: 'a//b'",
        ),
        (
            vec!["clean", "--workspace", ".."],
            "workspace must not be the user's home directory",
        ),
        (
            vec!["clean", "--workspace", "../elsewhere"],
            "workspace must be inside the current repository",
        ),
    ];
    for (args, message) in table {
        let out = project.repo(&args);
        let (stdout, stderr) = exited(&out, 1);
        assert_eq!(stdout, "", "{args:?}");
        assert!(
            stderr.starts_with(&format!("hint: {message}")),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("s3cr3tpw"), "no secret echoed: {stderr}");
    }
    assert!(!project.dir.join(".codexd").exists(), "nothing was made");
    assert!(!Path::new("/tmp/pwned").exists());
}

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
fn a_base_that_is_no_commit_fails_before_any_turn() {
    let project = Project::bare("");
    let mut args = run_args(project.remote(), "b", "t");
    args.extend(["--base", "origin/nope"]);
    let out = project.repo(&args);
    let (_, stderr) = exited(&out, 2);
    assert!(
        stderr.contains(
            "hint: base ref 'origin/nope' is not a commit in the clone (try origin/<branch>)"
        ),
        "{stderr}"
    );
}

#[test]
fn repo_push_pushes_the_checkout_not_the_enclosing_repository() {
    let project = Project::bare("");
    let out = project.repo(&["push", "--branch", "feature"]);
    let (_, stderr) = exited(&out, 2);
    assert!(
        stderr.contains("hint: cannot read workspace"),
        "no workspace yet: {stderr}"
    );
    let out = project.repo(&["clean"]);
    let (stdout, _) = exited(&out, 0);
    let root = project.dir.join(".codexd/work");
    assert_eq!(stdout, format!("cleaned: workspace={}\n", root.display()));
    let out = project.repo(&["push", "--branch", "feature"]);
    let (_, stderr) = exited(&out, 2);
    assert!(stderr.contains("hint: no checkout in "), "{stderr}");
    assert_eq!(
        branches(&project.own_remote),
        ["main"],
        "upstream would have pushed the project"
    );

    let checkout = root.join("widget");
    git_remote::run(&root, &["clone", "--quiet", project.remote(), "widget"]);
    std::fs::write(checkout.join("notes.txt"), "by hand\n").expect("write");
    git_remote::run(&checkout, &["add", "notes.txt"]);
    git_remote::run(&checkout, &["commit", "--quiet", "-m", "notes"]);
    let out = project.repo(&["push", "--branch", "feature"]);
    let (stdout, _) = exited(&out, 0);
    assert_eq!(
        stdout,
        format!(
            "pushed: workspace={} target=origin/feature\n",
            checkout.display()
        )
    );
    assert_eq!(
        subjects(&project.remote, "feature"),
        Some(vec!["notes".into(), "seed".into()])
    );
    assert_eq!(
        branches(&project.own_remote),
        ["main"],
        "the project's remote untouched"
    );
}

#[test]
fn repo_clean_empties_only_a_workspace_codexd_made() {
    let project = Project::bare("");
    let src = project.dir.join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "// mine\n").expect("write");
    let out = project.repo(&["clean", "--workspace", "src"]);
    let (_, stderr) = exited(&out, 2);
    assert!(stderr.contains("is not a codexd workspace"), "{stderr}");
    assert!(src.join("lib.rs").is_file(), "nothing deleted");
    let out = project.repo(&["clean", "--workspace", ".git"]);
    let (_, stderr) = exited(&out, 1);
    assert!(
        stderr.contains("hint: workspace must not be inside the repository's .git directory"),
        "{stderr}"
    );
}

/// The one span named `name` whose parent is `parent` and whose `key` is `value`.
fn one<'a>(
    spans: &'a [ReceivedSpan],
    parent: &str,
    name: &str,
    (key, value): (&str, &str),
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name == name && s.parent_span_id == parent)
        .filter(|s| key.is_empty() || s.attr(key).as_deref() == Some(value))
        .collect();
    match found.as_slice() {
        [span] => span,
        _ => panic!(
            "expected one {name} under {parent:?} with {key}={value}, found {found:#?} in {spans:#?}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_one_trace_from_the_clone_through_the_turn_and_its_tools_to_the_push() {
    let sink = match OtlpSink::start() {
        Ok(sink) => sink,
        Err(reason) => return otlp::skip_or_fail(&reason),
    };
    let top = format!(
        "telemetry:\n  enabled: true\n  service_name: codexd-repo-trace\n  otlp_endpoint: {}\n  otlp_protocol: grpc\n",
        sink.grpc_endpoint()
    );
    let script = vec![Reply::patch("traced.txt", "traced\n"), Reply::text("done")];
    let Some(project) = Project::with_codex_and(script, &top).await else {
        return;
    };
    let out = project.repo(&run_args(project.remote(), "traced", "Add traced.txt"));
    exited(&out, 0);
    let spans = eventually("the run's spans reach the collector", || {
        let spans = sink.spans();
        let pushed = spans
            .iter()
            .any(|s| s.name == "codexd.repo.git" && s.attr("git.step").as_deref() == Some("push"));
        let run = spans.iter().any(|s| s.name == "codexd.repo.run");
        (pushed && run).then_some(spans)
    });
    let run = one(&spans, "", "codexd.repo.run", ("repo.branch", "traced"));
    assert_eq!(run.attr("outcome").as_deref(), Some("pushed"));
    assert_eq!(run.attr("repo.remote").as_deref(), Some(project.remote()));
    let llm = one(
        &spans,
        &run.span_id,
        "harness.llm.call",
        ("outcome", "success"),
    );
    let tool = one(
        &spans,
        &llm.span_id,
        "codexd.tool.call",
        ("tool.type", "fileChange"),
    );
    assert_eq!(tool.trace_id, run.trace_id);
    for step in ["clone", "checkout", "status", "add", "commit", "push"] {
        let git = one(&spans, &run.span_id, "codexd.repo.git", ("git.step", step));
        assert_eq!(git.attr("outcome").as_deref(), Some("success"), "{step}");
    }
}

/// A project whose codex is the scripted fake app-server with `modes`; its event log.
fn with_fake_codex(modes: &str, codex: &str) -> (Project, PathBuf) {
    let scratch_log = tempfile::NamedTempFile::new().expect("log file");
    let log = scratch_log.into_temp_path().keep().expect("keep");
    let fake = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/fake_app_server.py"
    );
    let project = Project::bare(&format!(
        "codex:\n  binary: {fake}\n{codex}  env:\n    FAKE_APP_SERVER_MODE: '{modes}'\n    FAKE_APP_SERVER_LOG: {}\n",
        log.display()
    ));
    (project, log)
}

fn fake_events(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
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
