//! Out of file descriptors: `codexd run` under `prlimit --nofile=48:48` with more agents
//! (each holding an IRC connection to a real agentirc) than 48 descriptors allow. Agents
//! that cannot connect keep retrying, and `codexd status` still answers: the control socket
//! serves it on a descriptor it holds in reserve.

#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use ircd::{Flavor, Ircd};
use support::{Scratch, child, eventually};

const AGENTS: usize = 60;

#[tokio::test(flavor = "multi_thread")]
async fn status_answers_when_the_agents_use_up_every_descriptor() {
    let Some(ircd) = Ircd::start(Flavor::Agentirc, "spark").await else {
        return;
    };
    let scratch = Scratch::new();
    let agents: String = (0..AGENTS)
        .map(|i| format!("  - nick: spark-a{i}\n    channels: ['#general']\n    test_children: [socket, runner]\n"))
        .collect();
    scratch.write_config(&format!(
        "server:\n  name: spark\n  host: {host}\n  port: {port}\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\nshutdown_grace: 5s\nwebhooks:\n  join_channel: false\nagents:\n{agents}",
        host = ircd.host(),
        port = ircd.port(),
    ));
    let daemon = scratch.run_under(&["prlimit", "--nofile=48:48", "--"]);
    let irc_states = |status: &serde_json::Value| -> Vec<String> {
        (0..AGENTS)
            .filter_map(|i| child(status, &format!("spark-a{i}"), "irc"))
            .map(|irc| irc["detail"]["state"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let states = eventually("status answers with the descriptors used up", || {
        let status = scratch.status()?;
        let states = irc_states(&status);
        let connected = states.iter().filter(|s| *s == "connected").count();
        (connected > 0
            && connected < AGENTS
            && daemon.log_text().contains("out of file descriptors"))
        .then_some(states)
    });
    assert!(
        states.iter().any(|s| s != "connected"),
        "some agents could not connect: {states:?}"
    );
    // The reserve is taken back after each connection: status keeps answering.
    for _ in 0..3 {
        assert!(scratch.status().is_some(), "status answers again");
    }
}
