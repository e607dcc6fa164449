//! Shared codex processes (`codex.agents_per_process`) with the real `codex app-server`,
//! offline against the in-repo fake model, on a real agentirc: five agents on one process
//! answer concurrently in their own channels, each tool running with its own `CULTURE_NICK`
//! and cwd; a SIGKILL of the shared process is the process's failure: the `codex` service
//! restarts it, all five resume their own threads on it (no runner restarts) and one alert
//! names them, while an agent with a different `CODEX_HOME` (its own process) never notices.
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

/// The five pooled agents (`spark-a` … `spark-e`, each alone in `#a` … `#e`).
const POOLED: [&str; 5] = ["a", "b", "c", "d", "e"];
/// The agent with a codex home of its own.
const LONER: &str = "f";

fn runner(status: &Value, short: &str) -> Option<Value> {
    child(status, &format!("spark-{short}"), "runner").cloned()
}

/// Mentions every agent in its channel and returns each channel's `tool said: …` reply.
async fn ask_all(ori: &mut RawClient, shorts: &[&str]) -> BTreeMap<String, String> {
    for short in shorts {
        ori.send(&format!("PRIVMSG #{short} :@spark-{short} who are you?"))
            .await;
    }
    let mut replies = BTreeMap::new();
    while replies.len() < shorts.len() {
        let line = ori
            .expect("an agent's tool reply", |line| {
                let (command, params) = command_and_params(line);
                command == "PRIVMSG"
                    && source_nick(line).is_some_and(|n| n.starts_with("spark-"))
                    && params.get(1).is_some_and(|t| t.starts_with("tool said:"))
            })
            .await;
        let (_, params) = command_and_params(&line);
        replies.insert(params[0].clone(), params[1].clone());
    }
    replies
}

#[tokio::test(flavor = "multi_thread")]
async fn five_agents_share_one_codex_and_survive_its_sigkill_together() {
    let Some(bin) = codex_bin() else {
        return;
    };
    let Some(ircd) = Ircd::start(Flavor::Agentirc, "spark").await else {
        return;
    };
    let model = FakeModel::start(Vec::new()).await;
    model.set_fallback(Reply::ToolEcho(
        "echo nick=$CULTURE_NICK dir=$(basename $PWD)".to_owned(),
    ));
    let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
    let other_home = CodexHome::new(&model.base_url(), &CodexConfig::default());
    let scratch = Scratch::new();
    let mut agents = String::new();
    for short in POOLED.iter().chain([&LONER]) {
        let dir = scratch.path(&format!("work/{short}"));
        std::fs::create_dir_all(&dir).expect("workdir");
        agents.push_str(&format!(
            "  - nick: spark-{short}\n    channels: ['#{short}']\n    directory: {}\n    model: fake-model\n",
            dir.display()
        ));
    }
    // The loner's CODEX_HOME differs: a codex identity of its own.
    agents.push_str(&format!(
        "    codex:\n      env:\n        CODEX_HOME: {}\n",
        other_home.codex_home().display()
    ));
    scratch.write_config(&format!(
        "server:\n  name: spark\n  host: {host}\n  port: {port}\n  flood_rate: 0\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\nshutdown_grace: 10s\nwebhooks:\n  join_channel: true\nrestart:\n  backoff_base: 100ms\n  backoff_cap: 500ms\n  max_restarts: 5\n  window: 60s\n  cooldown: 2s\n  cooldown_cap: 2s\n  stable_after: 2s\ncodex:\n  binary: {bin}\n  agents_per_process: 5\n  sandbox: danger-full-access\n  env:\n    CODEX_HOME: {codex_home}\n    HOME: {home_dir}\n    FAKE_API_KEY: dummy\n    RUST_LOG: warn\nagents:\n{agents}",
        host = ircd.host(),
        port = ircd.port(),
        bin = bin.display(),
        codex_home = home.codex_home().display(),
        home_dir = home.home().display(),
    ));
    let mut daemon = scratch.run(&[]);
    let all: Vec<&str> = POOLED.iter().copied().chain([LONER]).collect();
    let ready = |status: &Value| {
        all.iter()
            .all(|short| runner(status, short).is_some_and(|r| r["detail"]["phase"] == "idle"))
    };
    let status = eventually("every runner has a codex thread and is idle", || {
        scratch.status().filter(|s| ready(s))
    });
    let pid =
        |status: &Value, short: &str| runner(status, short).map(|r| r["detail"]["pid"].clone());
    let shared = pid(&status, "a").expect("spark-a's pid");
    for short in POOLED {
        assert_eq!(
            pid(&status, short),
            Some(shared.clone()),
            "spark-{short} on the shared process"
        );
    }
    let loner = pid(&status, LONER).expect("loner's pid");
    assert_ne!(loner, shared, "a different CODEX_HOME gets its own process");
    let with = runner(&status, "c").expect("runner")["detail"]["shared_with"].clone();
    assert_eq!(
        with,
        serde_json::json!(["spark-a", "spark-b", "spark-c", "spark-d", "spark-e"])
    );
    let slots: std::collections::BTreeSet<String> = POOLED
        .iter()
        .map(|short| {
            runner(&status, short).expect("runner")["detail"]["codex_process"]
                .as_str()
                .expect("the slot's name")
                .to_owned()
        })
        .collect();
    assert_eq!(slots.len(), 1, "one slot for the five: {slots:?}");
    assert!(
        runner(&status, LONER).expect("loner")["detail"]["codex_process"]
            .as_str()
            .is_some_and(|name| !slots.contains(name)),
        "the loner's slot is another one"
    );

    let mut ori =
        RawClient::connect(ircd.host(), ircd.port(), "spark-ori", &["message-tags"]).await;
    for short in &all {
        ori.join(&format!("#{short}")).await;
    }
    ori.join("#alerts").await;
    let replies = ask_all(&mut ori, &all).await;
    for short in &all {
        assert_eq!(
            replies.get(&format!("#{short}")).map(String::as_str),
            Some(format!("tool said: nick=spark-{short} dir={short}").as_str()),
            "each agent's tool ran with its own CULTURE_NICK and cwd, and answered in its own channel"
        );
    }
    // Each conversation's thread is started for its first turn: read them once the turns
    // are over.
    let status = eventually("every turn ended", || {
        let status = scratch.status()?;
        all.iter()
            .all(|s| runner(&status, s).is_some_and(|r| r["detail"]["pending"] == 0))
            .then_some(status)
    });
    let threads: BTreeMap<&str, Value> = all
        .iter()
        .map(|s| {
            (
                *s,
                runner(&status, s).expect("runner")["detail"]["thread_id"].clone(),
            )
        })
        .collect();

    // SIGKILL the shared process: all five come back on a new one, on their own threads.
    let socket = scratch.socket();
    let out = scratch.cli(&[
        "fault",
        "--socket",
        socket.to_str().expect("utf-8"),
        "spark-b",
        "runner",
        "kill",
    ]);
    assert!(out.status.success(), "fault: {out:?}");
    eventually("all five back on a new shared process", || {
        let status = scratch.status()?;
        let new = pid(&status, "a")?;
        (ready(&status)
            && new != shared
            && POOLED.iter().all(|s| pid(&status, s) == Some(new.clone())))
        .then_some(())
    });
    // Each conversation's thread is resumed on the new process when its next turn needs it.
    let again = ask_all(&mut ori, &all).await;
    assert_eq!(again, replies, "the same answers on the new process");
    let status = eventually("every turn on the new process ended", || {
        let status = scratch.status()?;
        (ready(&status)
            && all
                .iter()
                .all(|s| runner(&status, s).is_some_and(|r| r["detail"]["pending"] == 0)))
        .then_some(status)
    });
    for short in &all {
        assert_eq!(
            runner(&status, short).expect("runner")["detail"]["thread_id"],
            threads[short],
            "spark-{short} resumed its own thread"
        );
    }
    for short in &all {
        assert_eq!(
            runner(&status, short).expect("runner")["restarts"],
            0,
            "a codex death is not spark-{short}'s runner's failure"
        );
    }
    // `codexd status` lists the processes as children of the `codex` service.
    let service = status["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "codex"))
        .expect("the codex service")
        .clone();
    let processes = service["children"].as_array().expect("processes").clone();
    let pooled = processes
        .iter()
        .find(|p| {
            p["detail"]["agents"]
                .as_array()
                .is_some_and(|a| a.len() == 5)
        })
        .expect("the shared process");
    assert_eq!(
        pooled["detail"]["pid"],
        pid(&status, "a").expect("pid"),
        "{service}"
    );
    assert_eq!(pooled["restarts"], 1, "{service}");
    assert_eq!(pooled["detail"]["attached"], 5, "{service}");
    assert_eq!(
        pooled["circuit"], "closed",
        "one death is within the budget: {service}"
    );
    assert_eq!(pooled["detail"]["threads"], 5, "{service}");
    // The human table has a row per shared process.
    let table = scratch.cli(&["status", "--socket", socket.to_str().expect("utf-8")]);
    let table = String::from_utf8_lossy(&table.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("codex process-") && l.contains("spark-a"))
        .unwrap_or_else(|| panic!("no shared process row in:\n{table}"));
    assert!(
        row.contains("running") && row.contains("closed") && row.contains("spark-e"),
        "{row}"
    );
    assert!(
        !table.contains('\u{1b}'),
        "no terminal escapes from codex's stderr:\n{table}"
    );
    let lone_slot = processes
        .iter()
        .find(|p| p["detail"]["agents"] == serde_json::json!(["spark-f"]))
        .expect("the loner's process");
    assert_eq!(lone_slot["restarts"], 0, "{service}");
    let lone = runner(&status, LONER).expect("loner");
    assert_eq!(
        lone["restarts"], 0,
        "the agent on its own process never noticed"
    );
    assert_eq!(lone["detail"]["pid"], loner);
    let replies = ask_all(&mut ori, &all).await;
    assert_eq!(
        replies.len(),
        all.len(),
        "every agent answers again: {replies:?}"
    );

    // A runner that panics leaves its session behind it: the process keeps exactly its
    // five runners.
    let before = pid(&status, "a").expect("pid");
    let out = scratch.cli(&[
        "fault",
        "--socket",
        socket.to_str().expect("utf-8"),
        "spark-d",
        "runner",
        "panic",
    ]);
    assert!(out.status.success(), "fault: {out:?}");
    eventually("spark-d's runner back, five runners attached", || {
        let status = scratch.status()?;
        let slot = status["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "codex")?["children"]
            .as_array()?
            .iter()
            .find(|p| p["detail"]["pid"] == before)?
            .clone();
        let back = runner(&status, "d")?["restarts"] == 1 && ready(&status);
        (back && slot["detail"]["attached"] == 5).then_some(())
    });
    // One alert for the one death, naming every agent on the process.
    let alerts: Vec<String> = ori
        .received()
        .iter()
        .filter(|line| {
            let (command, params) = command_and_params(line);
            command == "PRIVMSG"
                && params.first().map(String::as_str) == Some("#alerts")
                && params.get(1).is_some_and(|t| t.contains("crashed"))
        })
        .cloned()
        .collect();
    assert_eq!(
        alerts.len(),
        1,
        "one alert for one process death: {alerts:?}"
    );
    assert!(
        alerts[0].contains(
            "Agents spark-a, spark-b, spark-c, spark-d, spark-e crashed (exit -9): their codex process-0 died"
        ),
        "{alerts:?}"
    );

    // The loner's process crash-loops (codex refuses a typo in its config.toml at start):
    // its circuit opens, its runner waits and says why, the five never notice; healed, the
    // circuit closes by itself and the loner answers again.
    let config = other_home.codex_home().join("config.toml");
    let good = std::fs::read_to_string(&config).expect("config.toml");
    std::fs::write(&config, format!("shell_enviroment_policy = {{}}\n{good}")).expect("typo");
    let name = |short: &str| {
        runner(&status, short).expect("runner")["detail"]["codex_process"]
            .as_str()
            .expect("its process")
            .to_owned()
    };
    let (five, lonely) = (name("a"), name(LONER));
    let pooled_restarts =
        process_named(&status, &five).expect("the five's process")["restarts"].clone();
    let out = scratch.cli(&[
        "fault",
        "--socket",
        socket.to_str().expect("utf-8"),
        "spark-f",
        "runner",
        "kill",
    ]);
    assert!(out.status.success(), "fault: {out:?}");
    let status = eventually("the loner's process circuit opens", || {
        let status = scratch.status()?;
        (process_named(&status, &lonely)?["circuit"] == "open").then_some(status)
    });
    let lone = process_named(&status, &lonely).expect("the loner's process");
    assert!(
        lone["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("shell_enviroment_policy")),
        "the process says why: {lone}"
    );
    let waiting = runner(&status, LONER).expect("runner")["detail"]["waiting_for"].clone();
    assert!(
        waiting.as_str().is_some_and(|w| w.contains("circuit open")),
        "the loner's runner says what it waits for: {waiting}"
    );
    assert_eq!(
        process_named(&status, &five).expect("the five's process")["restarts"],
        pooled_restarts,
        "the five's process is untouched"
    );
    let pooled: Vec<&str> = POOLED.to_vec();
    assert_eq!(ask_all(&mut ori, &pooled).await.len(), 5, "the five answer");
    std::fs::write(&config, good).expect("healed");
    eventually("the loner's circuit closes by itself", || {
        let status = scratch.status()?;
        let process = process_named(&status, &lonely)?;
        (process["circuit"] == "closed" && process["state"] == "running").then_some(())
    });
    assert_eq!(
        ask_all(&mut ori, &[LONER]).await.len(),
        1,
        "the loner answers again"
    );
    daemon.signal("TERM");
    assert!(daemon.wait().success(), "{}", daemon.log_text());
}

/// The `codex` service's child `name` (`process-<n>`): its supervision and, while it runs,
/// its detail.
fn process_named(status: &Value, name: &str) -> Option<Value> {
    status["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "codex")?["children"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
}
