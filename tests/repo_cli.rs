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
#[path = "support/repo_project.rs"]
mod repo_project;
mod support;

use std::path::Path;

use fake_model::Reply;
use git_remote::{branches, file_at, subjects};
use otlp::{OtlpSink, ReceivedSpan};
use repo_project::{Project, exited, run_args};
use support::eventually;

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
