//! Culture's real CLI (`culture agents …`, 14.x) and codexd sharing one HOME: Culture's CLI
//! migrates a legacy `~/.culture/agents.yaml` into its manifest (in place, plus a
//! `culture.yaml` per agent directory), codexd runs the agents from what Culture wrote (its
//! own file points at it with `culture:` and adds `codex:`), `culture agents status` lists
//! them running with codexd's pid, `sleep`/`wake` reach them, and `culture agents stop
//! <nick>` stops exactly that agent: the daemon and the other agent live on.
//!
//! Peers: agentirc and Culture's CLI from `scripts/install-peers`; a missing peer is a loud
//! SKIP (a failure under `CI=true`).

#[path = "support/culture.rs"]
mod culture;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use std::path::Path;

use culture::{Culture, Output};
use ircd::{Flavor, Ircd};
use support::{Scratch, agent, child, eventually};

const FAKE_APP_SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/fake_app_server.py"
);

/// `culture agents <args>` in Culture's HOME, against codexd's socket directory.
fn agents(culture: &Culture, runtime: &Path, args: &[&str]) -> Output {
    let mut full = vec!["agents"];
    full.extend_from_slice(args);
    culture.culture(runtime, "spark-ori", &full)
}

/// The `culture agents status` row of `nick`: `(status, pid)`.
fn row(status: &Output, nick: &str) -> Option<(String, String)> {
    let line = status
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(nick))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    Some((words.get(1)?.to_string(), words.get(2)?.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cultures_cli_sees_and_stops_codexds_agents_one_at_a_time() {
    let Some(culture) = Culture::find_or_skip() else {
        return;
    };
    let Some(ircd) = Ircd::start(Flavor::Agentirc, "spark").await else {
        return;
    };
    let scratch = Scratch::new();
    let runtime = scratch.path("run");
    let home = culture.home().to_owned();
    let (work_a, work_b) = (scratch.path("work-a"), scratch.path("work-b"));
    for dir in [&work_a, &work_b] {
        std::fs::create_dir_all(dir).expect("workdir");
    }
    // The user's legacy file, as codexd documented it (`agent: codex` on each entry).
    std::fs::remove_file(culture.server_yaml()).expect("no server.yaml: the legacy file is read");
    let legacy = home.join(".culture/agents.yaml");
    std::fs::write(
        &legacy,
        format!(
            "server: {{name: spark, host: {host}, port: {port}}}\nagents:\n  - {{nick: spark-a, agent: codex, directory: {a}, channels: ['#general'], model: fake-model}}\n  - {{nick: spark-b, agent: codex, directory: {b}, channels: ['#general'], model: fake-model}}\n  - {{nick: spark-old, agent: codex, directory: {b}, archived: true}}\n",
            host = ircd.host(),
            port = ircd.port(),
            a = work_a.display(),
            b = work_b.display(),
        ),
    )
    .expect("write agents.yaml");

    // Culture's CLI migrates it in place (and hosts nothing itself).
    let status = tokio::task::block_in_place(|| agents(&culture, &runtime, &["status"]));
    assert_eq!(status.status, 0, "{status:?}");
    let migrated = std::fs::read_to_string(&legacy).expect("agents.yaml");
    assert!(
        migrated.contains("presence:"),
        "migrated in place:\n{migrated}"
    );
    assert!(work_a.join("culture.yaml").exists(), "culture.yaml written");
    assert_eq!(row(&status, "spark-a").expect("listed").0, "stopped");

    // codexd's own file: Culture's file plus codexd's keys.
    let pids = home.join(".culture/pids");
    scratch.write_config(&format!(
        "culture: {legacy}\nstate_dir: {{home}}/state\npid_dir: {pids}\nsleep_start: '0:00'\nsleep_end: '0:00'\ncodex:\n  binary: {FAKE_APP_SERVER}\n  env:\n    FAKE_APP_SERVER_MODE: ''\n    FAKE_APP_SERVER_LOG: {log}\n    FAKE_APP_SERVER_STATE: {state}\n",
        legacy = legacy.display(),
        pids = pids.display(),
        log = scratch.path("fake-app-server.log").display(),
        state = scratch.path("fake-app-server-state").display(),
    ));
    let mut daemon = scratch.run(&[]);
    let codexd_pid = daemon.pid().to_string();
    for nick in ["spark-a", "spark-b"] {
        eventually("the agent's irc link is up", || {
            let status = scratch.status()?;
            (child(&status, nick, "irc")?["detail"]["state"] == "connected").then_some(())
        });
    }
    assert!(agent(&scratch.status().expect("status"), "spark-old").is_none());
    assert!(
        daemon.log_text().contains("spark-old archived; not hosted"),
        "the archived agent is logged"
    );
    let pid_file = |nick: &str| pids.join(format!("agent-{nick}.pid"));
    assert_eq!(
        std::fs::read_to_string(pid_file("spark-a")).expect("pid file"),
        codexd_pid
    );

    let status = tokio::task::block_in_place(|| agents(&culture, &runtime, &["status"]));
    for nick in ["spark-a", "spark-b"] {
        assert_eq!(
            row(&status, nick),
            Some(("running".into(), codexd_pid.clone())),
            "{status:?}"
        );
    }

    let slept = tokio::task::block_in_place(|| agents(&culture, &runtime, &["sleep", "spark-b"]));
    assert!(slept.stdout.contains("spark-b: paused"), "{slept:?}");
    let status = tokio::task::block_in_place(|| agents(&culture, &runtime, &["status"]));
    assert_eq!(
        row(&status, "spark-b").expect("row").0,
        "paused",
        "{status:?}"
    );
    let woke = tokio::task::block_in_place(|| agents(&culture, &runtime, &["wake", "spark-b"]));
    assert!(woke.stdout.contains("spark-b: resumed"), "{woke:?}");

    let stopped = tokio::task::block_in_place(|| agents(&culture, &runtime, &["stop", "spark-a"]));
    assert_eq!(stopped.status, 0, "{stopped:?}");
    assert!(
        stopped.stdout.contains("Agent 'spark-a' stopped"),
        "{stopped:?}"
    );
    assert!(
        !stopped.stdout.contains("Stopping agent"),
        "no signal: {stopped:?}"
    );
    eventually("spark-a leaves codexd", || {
        agent(&scratch.status()?, "spark-a").is_none().then_some(())
    });
    assert!(daemon.child_alive(), "the daemon lives on");
    assert!(!pid_file("spark-a").exists());
    assert!(pid_file("spark-b").exists());
    let status = tokio::task::block_in_place(|| agents(&culture, &runtime, &["status"]));
    assert_eq!(
        row(&status, "spark-a").expect("row").0,
        "stopped",
        "{status:?}"
    );
    assert_eq!(
        row(&status, "spark-b"),
        Some(("running".into(), codexd_pid.clone())),
        "{status:?}"
    );
    let still = scratch.status().expect("status");
    assert_eq!(
        child(&still, "spark-b", "irc").expect("irc")["detail"]["state"],
        "connected"
    );

    daemon.signal("TERM");
    assert!(daemon.wait().success());
    assert!(!pid_file("spark-b").exists(), "removed when codexd stops");
}
