//! The agents' IRC tools on a shared codex process: five agents, one `codex app-server`
//! (real, offline against the fake model), one thread each. Every agent's model calls
//! `irc_send` to `spark-ori`; codex routes each call by its thread to that agent's runner,
//! so each DM arrives from its own agent's nick.

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

use std::collections::BTreeSet;

use codex_peer::{CodexConfig, CodexHome, codex_bin};
use fake_model::{FakeModel, Reply};
use irc_client::{RawClient, command_and_params, source_nick};
use ircd::{Flavor, Ircd};
use serde_json::json;
use support::{Scratch, child, eventually};

const AGENTS: [&str; 5] = ["a", "b", "c", "d", "e"];

#[tokio::test(flavor = "multi_thread")]
async fn each_agent_on_a_shared_process_calls_its_tools_as_itself() {
    let Some(bin) = codex_bin() else {
        return;
    };
    let Some(ircd) = Ircd::start(Flavor::Agentirc, "spark").await else {
        return;
    };
    let model = FakeModel::start(Vec::new()).await;
    model.set_fallback(Reply::CallThen {
        tool: "irc_send".into(),
        arguments: json!({"channel": "spark-ori", "message": "a DM from my own tool"}),
        text: "sent you a DM".into(),
    });
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
        "server:\n  name: spark\n  host: {host}\n  port: {port}\n  flood_rate: 0\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\ncodex:\n  binary: {bin}\n  agents_per_process: 5\n  env:\n    CODEX_HOME: {codex_home}\n    HOME: {home_dir}\n    FAKE_API_KEY: dummy\n    RUST_LOG: warn\nagents:\n{agents}",
        host = ircd.host(),
        port = ircd.port(),
        bin = bin.display(),
        codex_home = home.codex_home().display(),
        home_dir = home.home().display(),
    ));
    let _daemon = scratch.run(&[]);
    let pids = eventually("every runner idle on its thread", || {
        let status = scratch.status()?;
        let mut pids = BTreeSet::new();
        for short in AGENTS {
            let runner = child(&status, &format!("spark-{short}"), "runner")?;
            if runner["detail"]["phase"] != "idle" {
                return None;
            }
            pids.insert(runner["detail"]["pid"].to_string());
        }
        Some(pids)
    });
    assert_eq!(pids.len(), 1, "one shared codex process: {pids:?}");

    let mut ori = RawClient::connect(ircd.host(), ircd.port(), "spark-ori", &[]).await;
    for short in AGENTS {
        ori.join(&format!("#{short}")).await;
    }
    for short in AGENTS {
        ori.send(&format!("PRIVMSG #{short} :@spark-{short} DM me"))
            .await;
    }
    let mut senders = BTreeSet::new();
    while senders.len() < AGENTS.len() {
        let line = ori
            .expect("a DM sent by an agent's tool", |line| {
                let (command, params) = command_and_params(line);
                command == "PRIVMSG"
                    && params.first().is_some_and(|t| t == "spark-ori")
                    && params.get(1).is_some_and(|t| t == "a DM from my own tool")
            })
            .await;
        senders.insert(source_nick(&line).expect("sender"));
    }
    let expected: BTreeSet<String> = AGENTS.iter().map(|s| format!("spark-{s}")).collect();
    assert_eq!(senders, expected, "each call acted as its own agent");
    let answered: BTreeSet<String> = ori
        .received()
        .iter()
        .filter(|line| is_answer(line))
        .map(|line| command_and_params(line).1[0].clone())
        .collect();
    let mut answered = answered;
    while answered.len() < AGENTS.len() {
        let line = ori
            .expect("an agent's answer in its channel", is_answer)
            .await;
        answered.insert(command_and_params(&line).1[0].clone());
    }
}

/// The final answer of a turn whose tool call sent the DM.
fn is_answer(line: &str) -> bool {
    let (command, params) = command_and_params(line);
    command == "PRIVMSG"
        && params.first().is_some_and(|t| t.starts_with('#'))
        && params.get(1).is_some_and(|t| t == "sent you a DM")
}
