//! A wedged shared codex (`codex.request_timeout`) with the real `codex app-server`, offline
//! against the in-repo fake model, on a real agentirc: three agents share one process; it is
//! stopped (SIGSTOP) and one agent is mentioned. Its `turn/start` goes unanswered, so its
//! runner kills the process for all three; each resumes its own thread on the next process,
//! and the mention codex never read is replayed from the journal and answered.
//!
//! Peers: agentirc and codex from `scripts/install-peers`; a missing peer is a loud SKIP
//! (a failure under `CI=true`).

#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

mod support;

use std::collections::BTreeMap;

use codex_peer::{CodexConfig, CodexHome, codex_bin};
use fake_model::{FakeModel, Reply};
use irc_client::{RawClient, command_and_params, source_nick};
use ircd::{Flavor, Ircd};
use serde_json::Value;
use support::{Scratch, child, eventually};

/// The three agents (`spark-a` … `spark-c`, each alone in `#a` … `#c`), on one process.
const AGENTS: [&str; 3] = ["a", "b", "c"];

fn runner(status: &Value, short: &str) -> Option<Value> {
    child(status, &format!("spark-{short}"), "runner").cloned()
}

/// The `codex` service's only process (its supervision: restarts, …; detail: pid, …).
fn shared_process(status: &Value) -> Option<Value> {
    let service = status["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "codex")?;
    service["children"].as_array()?.first().cloned()
}

/// A process state from `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, …); `None` once it is gone.
fn proc_state(pid: u64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.trim_start().chars().next()
}

fn signal(pid: u64, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Mentions each agent in its channel with `text`; each channel's `tool said: …` reply.
async fn ask(ori: &mut RawClient, shorts: &[&str], text: &str) -> BTreeMap<String, String> {
    for short in shorts {
        ori.send(&format!("PRIVMSG #{short} :@spark-{short} {text}"))
            .await;
    }
    let channels: Vec<String> = shorts.iter().map(|s| format!("#{s}")).collect();
    let mut replies = BTreeMap::new();
    while replies.len() < shorts.len() {
        let line = ori
            .expect("an agent's tool reply", |line| {
                let (command, params) = command_and_params(line);
                command == "PRIVMSG"
                    && source_nick(line).is_some_and(|n| n.starts_with("spark-"))
                    && params.first().is_some_and(|c| channels.contains(c))
                    && params.get(1).is_some_and(|t| t.starts_with("tool said:"))
            })
            .await;
        let (_, params) = command_and_params(&line);
        replies.insert(params[0].clone(), params[1].clone());
    }
    replies
}

fn expected(shorts: &[&str]) -> BTreeMap<String, String> {
    shorts
        .iter()
        .map(|s| (format!("#{s}"), format!("tool said: nick=spark-{s}")))
        .collect()
}

/// Whether any model request so far carries `text` (the prompt reached a codex turn).
fn model_saw(model: &FakeModel, text: &str) -> bool {
    model
        .requests()
        .iter()
        .any(|body| body.to_string().contains(text))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_shared_codex_is_killed_and_every_agent_resumes_without_loss() {
    let Some(bin) = codex_bin() else {
        return;
    };
    let Some(ircd) = Ircd::start(Flavor::Agentirc, "spark").await else {
        return;
    };
    let model = FakeModel::start(Vec::new()).await;
    model.set_fallback(Reply::ToolEcho("echo nick=$CULTURE_NICK".to_owned()));
    let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
    let scratch = Scratch::new();
    let mut agents = String::new();
    for short in AGENTS {
        let dir = scratch.path(&format!("work/{short}"));
        std::fs::create_dir_all(&dir).expect("workdir");
        agents.push_str(&format!(
            "  - nick: spark-{short}\n    channels: ['#{short}']\n    directory: {}\n    model: fake-model\n",
            dir.display()
        ));
    }
    scratch.write_config(&format!(
        "server:\n  name: spark\n  host: {host}\n  port: {port}\n  flood_rate: 0\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\nshutdown_grace: 10s\nattention: {{enabled: false}}\nrestart:\n  backoff_base: 100ms\n  backoff_cap: 500ms\n  max_restarts: 5\n  window: 60s\ncodex:\n  binary: {bin}\n  agents_per_process: 3\n  request_timeout: 3s\n  sandbox: danger-full-access\n  env:\n    CODEX_HOME: {codex_home}\n    HOME: {home_dir}\n    FAKE_API_KEY: dummy\n    RUST_LOG: warn\nagents:\n{agents}",
        host = ircd.host(),
        port = ircd.port(),
        bin = bin.display(),
        codex_home = home.codex_home().display(),
        home_dir = home.home().display(),
    ));
    // No poll turns: every reply answers a mention.
    let mut daemon = scratch.run(&[]);
    let ready = |status: &Value| {
        AGENTS
            .iter()
            .all(|short| runner(status, short).is_some_and(|r| r["detail"]["phase"] == "idle"))
    };
    let pid = |status: &Value, short: &str| runner(status, short)?["detail"]["pid"].as_u64();
    let status = eventually("every runner has a codex thread and is idle", || {
        scratch.status().filter(|s| ready(s))
    });
    let stopped = pid(&status, "a").expect("spark-a's pid");
    for short in AGENTS {
        assert_eq!(
            pid(&status, short),
            Some(stopped),
            "spark-{short} on the shared process"
        );
    }
    let slot = shared_process(&status).expect("the codex service lists the process");
    assert_eq!(slot["detail"]["pid"], stopped, "{slot}");
    assert_eq!(slot["restarts"], 0, "{slot}");

    let mut ori =
        RawClient::connect(ircd.host(), ircd.port(), "spark-ori", &["message-tags"]).await;
    for short in AGENTS {
        ori.join(&format!("#{short}")).await;
    }
    assert_eq!(
        ask(&mut ori, &AGENTS, "who are you?").await,
        expected(&AGENTS),
        "all three answer on the shared process"
    );
    // The replies are relayed before each turn ends: wait for the turns to end, or codex
    // would be stopped mid-turn (caught only by the turn timeout, not by this test's path).
    let status = eventually("every turn ended", || {
        let status = scratch.status()?;
        let drained = AGENTS
            .iter()
            .all(|s| runner(&status, s).is_some_and(|r| r["detail"]["pending"] == 0));
        (ready(&status) && drained).then_some(status)
    });
    let threads: BTreeMap<&str, Value> = AGENTS
        .iter()
        .map(|s| {
            (
                *s,
                runner(&status, s).expect("runner")["detail"]["thread_id"].clone(),
            )
        })
        .collect();
    assert!(threads.values().all(Value::is_string), "{threads:?}");

    // Stop codex: spark-a's turn/start goes unanswered for request_timeout (3 s), and its
    // runner kills the process for all three.
    signal(stopped, "STOP");
    let since_stop = std::time::Instant::now();
    const WHILE_STOPPED: &str = "are you there while codex sleeps?";
    let replies = ask(&mut ori, &["a"], WHILE_STOPPED).await;
    assert_eq!(
        replies,
        expected(&["a"]),
        "spark-a answers the mention codex never read"
    );
    eprintln!(
        "wedged: spark-a answered {:.1?} after the SIGSTOP (request_timeout 3s)",
        since_stop.elapsed()
    );
    assert!(
        model_saw(&model, WHILE_STOPPED),
        "the mention was replayed to the new codex"
    );

    let status = eventually("all three back on a new shared process", || {
        let status = scratch.status()?;
        let new = pid(&status, "a")?;
        let together = AGENTS.iter().all(|s| pid(&status, s) == Some(new));
        let drained = AGENTS
            .iter()
            .all(|s| runner(&status, s).is_some_and(|r| r["detail"]["pending"] == 0));
        (ready(&status) && new != stopped && together && drained).then_some(status)
    });
    let new = pid(&status, "a").expect("pid");
    for short in AGENTS {
        let runner = runner(&status, short).expect("runner");
        assert_eq!(
            runner["detail"]["thread_id"], threads[short],
            "spark-{short} resumed its own thread"
        );
        assert_eq!(
            runner["restarts"], 0,
            "a wedged codex is the process's failure, not spark-{short}'s runner's: {runner}"
        );
    }
    let slot = shared_process(&status).expect("the codex service lists the process");
    assert_eq!(slot["detail"]["pid"], new, "{slot}");
    assert!(slot["restarts"].as_u64().is_some_and(|n| n >= 1), "{slot}");
    eventually("the stopped codex is killed and reaped", || {
        proc_state(stopped).is_none().then_some(())
    });
    assert_eq!(
        ask(&mut ori, &["b", "c"], "and you two?").await,
        expected(&["b", "c"]),
        "the other two answer new mentions"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("codex is wedged; killing its process for every agent on it"),
        "the kill is logged"
    );
    assert!(log.contains("codex did not answer turn/start within 3s"));
    assert!(
        log.contains("replaying an accepted mention"),
        "the journal counted the wedged attempt and replayed it"
    );
    daemon.signal("TERM");
    assert!(daemon.wait().success(), "{}", daemon.log_text());
}
