//! Repository jobs of an agent (`repo:` in its config), end to end on a real agentirc with
//! the real codex offline: asked on IRC, the model calls `repo_run`, the job pushes its
//! branch and the agent reports the commit in the channel; a job is cancelled with
//! `codexd repo cancel` and pushes nothing; a daemon restart in the middle of a job runs it
//! again and pushes once; a job whose commit an earlier attempt already pushed is not
//! pushed again.
//!
//! Peers: agentirc and codex from `scripts/install-peers`; a missing peer is a loud SKIP
//! (a failure under `CI=true`).

#[path = "support/codex_agent.rs"]
mod codex_agent;
#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/git_remote.rs"]
mod git_remote;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use std::path::{Path, PathBuf};

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::{Gate, Reply};
use git_remote::{branches, file_at, seeded_bare, subjects};
use serde_json::{Value, json};
use support::{child, eventually};

/// A bare remote beside the test, and the agent's `repo:` allowing it.
struct Remote {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = seeded_bare(dir.path(), "widget");
        Remote { _dir: dir, path }
    }

    fn as_str(&self) -> &str {
        self.path.to_str().expect("utf-8")
    }

    /// The agent's config lines (4-space indent).
    fn repo_yaml(&self) -> String {
        format!(
            "    repo:\n      remotes: ['{}']\n      git_timeout: 30s\n",
            self.as_str()
        )
    }
}

/// The `repo` child's jobs in `codexd status`.
fn jobs(agent: &CodexAgent) -> Vec<Value> {
    agent
        .scratch
        .status()
        .and_then(|status| child(&status, NICK, "repo").cloned())
        .and_then(|repo| repo["detail"]["jobs"].as_array().cloned())
        .unwrap_or_default()
}

/// Waits until job `id` runs its codex turn.
fn wait_for_turn(agent: &CodexAgent, id: u64) {
    eventually(&format!("job {id} runs its turn"), || {
        jobs(agent)
            .iter()
            .any(|job| job["id"] == id && job["phase"] == "turn")
            .then_some(())
    });
}

/// The agent with real codex, whose model answers `done` unless a test says otherwise.
async fn start(extra: Extra<'_>) -> Option<CodexAgent> {
    let agent = CodexAgent::start(Codex::Real(Vec::new()), extra).await?;
    let model = agent.model.as_ref().expect("real codex");
    model.set_fallback(Reply::text("done"));
    Some(agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asked_on_irc_the_agent_pushes_a_branch_and_reports_the_commit_in_its_channel() {
    let remote = Remote::new();
    let repo = remote.repo_yaml();
    let Some(mut agent) = start(Extra {
        agent: &repo,
        ..Extra::default()
    })
    .await
    else {
        return;
    };
    let model = agent.model.as_ref().expect("real codex");
    let arguments =
        json!({"remote": remote.as_str(), "branch": "fix/hello", "task": "JOBTASK: add hello.txt"});
    model.when("please fix the widget", Reply::call("repo_run", arguments));
    model.when("JOBTASK", Reply::patch("hello.txt", "hello from a job\n"));
    agent
        .say("#general", &format!("@{NICK} please fix the widget"))
        .await;
    agent.reply("#general", "[job 1] accepted").await;
    agent
        .reply("#general", "codex is working on: JOBTASK: add hello.txt")
        .await;
    let line = agent.reply("#general", "[job 1] pushed:").await;
    let commit = git_remote::run(
        &remote.path,
        &["rev-parse", "--short", "refs/heads/fix/hello"],
    );
    assert!(
        line.starts_with(&format!(
            "[job 1] pushed: branch=fix/hello commit={commit} target=origin/fix/hello ("
        )),
        "{line}"
    );
    assert_eq!(
        subjects(&remote.path, "fix/hello"),
        Some(vec![
            "codexd: JOBTASK: add hello.txt".to_owned(),
            "seed".to_owned()
        ])
    );
    assert_eq!(
        file_at(&remote.path, "fix/hello", "hello.txt").as_deref(),
        Some("hello from a job")
    );
    let message = git_remote::run(
        &remote.path,
        &["log", "-1", "--format=%B", "refs/heads/fix/hello"],
    );
    assert!(
        message.contains(&format!("Codexd-Job: {NICK}/1.")),
        "{message}"
    );
    eventually("the job is forgotten", || {
        jobs(&agent).is_empty().then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_pushes_nothing() {
    let remote = Remote::new();
    let repo = remote.repo_yaml();
    let Some(mut agent) = start(Extra {
        agent: &repo,
        ..Extra::default()
    })
    .await
    else {
        return;
    };
    let gate = Gate::new();
    let model = agent.model.as_ref().expect("real codex");
    // The patch, then (its follow-up request carries the patch's output) held mid-answer.
    model.when("JOBTASK", Reply::patch("half.txt", "half\n"));
    model.push(Reply::held("still working", &gate));
    let refused = agent
        .ipc(json!({"type": "repo_run", "remote": "/elsewhere/other.git", "branch": "b", "task": "t", "channel": "#general"}))
        .expect("answer");
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("is not one this agent may work on")),
        "{refused}"
    );
    let answer = agent
        .ipc(json!({"type": "repo_run", "remote": remote.as_str(), "branch": "doomed", "task": "JOBTASK: never lands", "channel": "#general"}))
        .expect("answer");
    assert_eq!(answer["data"]["job"], 1, "{answer}");
    wait_for_turn(&agent, 1);
    eventually("the model is held mid-answer", || {
        (agent.model.as_ref().expect("codex").held() > 0).then_some(())
    });
    let listed = agent.ipc(json!({"type": "repo_jobs"})).expect("answer");
    let job = &listed["data"]["jobs"][0];
    assert_eq!(
        (job["id"].as_u64(), job["phase"].as_str()),
        (Some(1), Some("turn")),
        "{listed}"
    );
    assert_eq!(job["remote"], remote.as_str(), "{listed}");
    let socket = agent.scratch.socket();
    let out = agent.scratch.cli(&[
        "repo",
        "cancel",
        NICK,
        "1",
        "--socket",
        socket.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(&format!("{NICK}: cancelling job 1")),
        "{said}"
    );
    agent
        .reply("#general", "[job 1] cancelled; nothing was pushed")
        .await;
    gate.open();
    assert_eq!(branches(&remote.path), ["main"], "nothing pushed");
    let over_ipc = agent
        .ipc(json!({"type": "repo_cancel", "job": 1}))
        .expect("answer");
    assert_eq!(over_ipc["ok"], false, "{over_ipc}");
    let again = agent.scratch.cli(&[
        "repo",
        "cancel",
        NICK,
        "1",
        "--socket",
        socket.to_str().expect("utf-8"),
    ]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    let hint = String::from_utf8_lossy(&again.stderr);
    assert!(
        hint.contains("hint: no job 1 is queued or running"),
        "{hint}"
    );
}

/// An agent whose job 1 (`task` on `branch` of `remote`) is held mid-turn by `gate`; the
/// job's second attempt adds a file.
async fn held_job(remote: &Remote, branch: &str, task: &str) -> Option<(CodexAgent, Gate)> {
    let repo = remote.repo_yaml();
    let agent = start(Extra {
        agent: &repo,
        ..Extra::default()
    })
    .await?;
    let gate = Gate::new();
    let model = agent.model.as_ref().expect("real codex");
    model.when("JOBTASK", Reply::held("cut off here", &gate));
    model.when("JOBTASK", Reply::patch("again.txt", "second attempt\n"));
    let answer = agent
        .ipc(json!({"type": "repo_run", "remote": remote.as_str(), "branch": branch, "task": task, "channel": "#general"}))
        .expect("answer");
    assert_eq!(answer["data"]["job"], 1, "{answer}");
    wait_for_turn(&agent, 1);
    eventually("the model is held mid-answer", || {
        (agent.model.as_ref().expect("codex").held() > 0).then_some(())
    });
    Some((agent, gate))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_job_runs_it_again_and_pushes_once() {
    let remote = Remote::new();
    let Some((mut agent, gate)) = held_job(&remote, "resumed", "JOBTASK: survive a restart").await
    else {
        return;
    };
    agent.stop_daemon();
    gate.open();
    assert_eq!(
        branches(&remote.path),
        ["main"],
        "nothing pushed before the restart"
    );
    agent.restart_daemon();
    agent
        .reply("#general", "[job 1] cut off by a restart; running it again")
        .await;
    agent
        .reply("#general", "[job 1] pushed: branch=resumed")
        .await;
    assert_eq!(
        subjects(&remote.path, "resumed"),
        Some(vec![
            "codexd: JOBTASK: survive a restart".to_owned(),
            "seed".to_owned()
        ]),
        "one commit"
    );
}

/// A job file as an earlier daemon left it: started once, cut off after its push.
fn journaled_job(state: &Path, remote: &str) {
    let dir = state.join(NICK).join("repo/jobs");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let record = json!({
        "id": 1, "remote": remote, "branch": "landed", "base": null,
        "task": "JOBTASK: already done", "report_to": "#general", "requested_by": "ipc",
        "attempts": 1, "nonce": "cafebabe", "accepted_at": 0.0, "trace": {}
    });
    std::fs::write(dir.join("00000001.json"), record.to_string()).expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_commit_is_already_pushed_is_not_pushed_again() {
    let remote = Remote::new();
    let seed = remote.path.parent().expect("dir").join("widget-seed");
    std::fs::write(seed.join("landed.txt"), "pushed before the crash\n").expect("write");
    git_remote::run(&seed, &["add", "landed.txt"]);
    let trailer = format!("Codexd-Job: {NICK}/1.cafebabe");
    git_remote::run(
        &seed,
        &[
            "commit",
            "--quiet",
            "-m",
            "codexd: JOBTASK: already done",
            "-m",
            &trailer,
        ],
    );
    git_remote::run(
        &seed,
        &["push", "--quiet", remote.as_str(), "HEAD:refs/heads/landed"],
    );
    let before = git_remote::run(&remote.path, &["rev-parse", "refs/heads/landed"]);
    let state = tempfile::tempdir().expect("tempdir");
    journaled_job(state.path(), remote.as_str());
    let repo = remote.repo_yaml();
    let state_dir = state.path().display().to_string();
    let extra = Extra {
        agent: &repo,
        state_dir: &state_dir,
        ..Extra::default()
    };
    let Some(agent) = start(extra).await else {
        return;
    };
    // It may end before spark-ori joined the channel: the log has the line it sent.
    let short = git_remote::run(&remote.path, &["rev-parse", "--short", "refs/heads/landed"]);
    let line = eventually("job 1 ends", || {
        let log = agent.log();
        log.lines()
            .find(|l| l.contains("repository job ended") && l.contains("[job 1]"))
            .map(str::to_owned)
    });
    assert!(line.contains("not pushed again"), "{line}");
    assert!(line.contains(&format!("commit={short}")), "{line}");
    assert_eq!(
        git_remote::run(&remote.path, &["rev-parse", "refs/heads/landed"]),
        before
    );
    let requests = agent.model.as_ref().expect("codex").requests();
    assert!(
        requests.iter().all(|r| !r.to_string().contains("JOBTASK")),
        "no turn ran for it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codex_crash_under_a_job_runs_it_again_on_the_next_process() {
    let remote = Remote::new();
    let Some((mut agent, gate)) = held_job(&remote, "crashed", "JOBTASK: survive codex").await
    else {
        return;
    };
    agent.fault("kill");
    gate.open();
    let line = agent.reply("#general", "[job 1] cut off: ").await;
    assert_eq!(
        line,
        "[job 1] cut off: its codex process died or stopped answering; running it again from a clean checkout (attempt 2 of 2)"
    );
    agent
        .reply("#general", "[job 1] pushed: branch=crashed")
        .await;
    assert_eq!(
        subjects(&remote.path, "crashed"),
        Some(vec![
            "codexd: JOBTASK: survive codex".to_owned(),
            "seed".to_owned()
        ]),
        "one commit"
    );
}
