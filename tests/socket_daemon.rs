//! Agents' IPC sockets in the real daemon: one per agent at
//! `$XDG_RUNTIME_DIR/culture-<nick>.sock`; a socket another daemon serves keeps that agent
//! from starting (never stolen); IPC `shutdown` stops that agent only, and the last one
//! ends the daemon; `codexd status` and `codexd fault … socket panic`; SIGHUP keeps a
//! restarted agent on the same socket and brings back an agent stopped over IPC.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Scratch, agent, child, eventually};

fn config(nicks: &[&str], control: &str) -> String {
    let agents: String = nicks
        .iter()
        .map(|nick| {
            format!(
                "  - nick: {nick}\n    channels: ['#general']\n    test_children: [irc, runner]\n"
            )
        })
        .collect();
    format!(
        "server:\n  name: spark\ncontrol_socket: {{home}}/{control}\nstate_dir: {{home}}/state\nshutdown_grace: 5s\nrestart:\n  backoff_base: 50ms\n  backoff_cap: 200ms\nagents:\n{agents}"
    )
}

fn ipc_path(scratch: &Scratch, nick: &str) -> PathBuf {
    scratch.path(&format!("run/culture-{nick}.sock"))
}

/// One request on a fresh connection; `None` when nobody answers.
fn ask(path: &Path, request: Value) -> Option<Value> {
    let stream = UnixStream::connect(path).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut line = serde_json::to_vec(&request).ok()?;
    line.push(b'\n');
    (&stream).write_all(&line).ok()?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).ok()?;
    serde_json::from_str(&answer).ok()
}

fn status_of(scratch: &Scratch, control: &str) -> Option<Value> {
    let out = scratch.cli(&[
        "status",
        "--json",
        "--socket",
        scratch.path(control).to_str()?,
    ]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("json"))
}

fn nicks(status: &Value) -> Vec<String> {
    status["agents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|a| a["nick"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ipc_shutdown_stops_only_that_agent_and_the_last_one_ends_the_daemon() {
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a", "spark-b"], "ctl.sock"));
    let mut daemon = scratch.run(&[]);
    let (a, b) = (ipc_path(&scratch, "spark-a"), ipc_path(&scratch, "spark-b"));
    eventually("both sockets answer", || {
        ask(&a, json!({"type": "status", "id": "s"}))?;
        ask(&b, json!({"type": "status", "id": "s"}))
    });

    let answer = ask(&a, json!({"type": "shutdown", "id": "bye"})).expect("answer");
    assert_eq!(answer, json!({"type": "response", "id": "bye", "ok": true}));
    eventually("spark-a gone from the tree", || {
        let status = status_of(&scratch, "ctl.sock")?;
        (nicks(&status) == ["spark-b"]).then_some(())
    });
    eventually("spark-a's socket removed", || (!a.exists()).then_some(()));
    assert!(ask(&b, json!({"type": "status", "id": "x"})).is_some_and(|r| r["ok"] == true));

    assert!(ask(&b, json!({"type": "shutdown", "id": "last"})).is_some());
    let exit = daemon.wait();
    assert!(exit.success(), "{exit:?}\n{}", daemon.log_text());
    assert!(
        daemon
            .log_text()
            .contains("every agent was stopped over ipc")
    );
}

#[test]
fn a_socket_served_by_another_daemon_is_never_stolen() {
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a"], "one.sock"));
    let _first = scratch.run(&[]);
    let a = ipc_path(&scratch, "spark-a");
    eventually("first daemon serves spark-a", || {
        ask(&a, json!({"type": "status"}))
    });

    // A second daemon with spark-a and spark-c: spark-a is refused, spark-c runs.
    let second_config = scratch.path("second.yaml");
    let text = config(&["spark-a", "spark-c"], "two.sock")
        .replace("{home}", &scratch.dir.path().display().to_string());
    std::fs::write(&second_config, text).expect("write");
    let second_log = scratch.path("second.log");
    let mut second = scratch
        .codexd()
        .args(["run", "--config"])
        .arg(&second_config)
        .stderr(std::fs::File::create(&second_log).expect("log"))
        .spawn()
        .expect("second");
    let status = eventually("second daemon up", || status_of(&scratch, "two.sock"));
    assert_eq!(nicks(&status), ["spark-c"]);
    let log = std::fs::read_to_string(&second_log).expect("log");
    assert!(log.contains("its ipc socket cannot be bound"), "{log}");
    assert!(log.contains("already listening"), "{log}");
    assert!(
        ask(&a, json!({"type": "status"})).is_some_and(|r| r["ok"] == true),
        "the first keeps it"
    );
    let _ = second.kill();
    let _ = second.wait();

    // A daemon whose only agent is refused exits with a clear error.
    std::fs::write(
        &second_config,
        config(&["spark-a"], "three.sock")
            .replace("{home}", &scratch.dir.path().display().to_string()),
    )
    .expect("write");
    let out = scratch
        .codexd()
        .args(["run", "--config"])
        .arg(&second_config)
        .output()
        .expect("third");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("no agent could start: agent spark-a not started: ipc socket: another process is already listening on"),
        "{stderr}"
    );
}

#[test]
fn status_shows_the_socket_and_a_socket_panic_is_healed() {
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a"], "ctl.sock"));
    let _daemon = scratch.run(&[]);
    let a = ipc_path(&scratch, "spark-a");
    eventually("socket answers", || ask(&a, json!({"type": "status"})));
    let status = status_of(&scratch, "ctl.sock").expect("status");
    let socket = child(&status, "spark-a", "socket").expect("socket child");
    assert_eq!(socket["detail"]["path"], json!(a.display().to_string()));
    assert!(socket["detail"]["requests"].as_u64() >= Some(1), "{socket}");

    let out = scratch.cli(&[
        "fault",
        "spark-a",
        "socket",
        "panic",
        "--socket",
        scratch.path("ctl.sock").to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("socket restarted and answering", || {
        let status = status_of(&scratch, "ctl.sock")?;
        let socket = child(&status, "spark-a", "socket")?;
        (socket["restarts"] == 1 && socket["state"] == "running").then_some(())?;
        ask(&a, json!({"type": "irc_channels", "id": 1}))
    });
    let _ = agent;
}

#[test]
fn sighup_keeps_the_socket_of_a_changed_agent_and_brings_back_a_stopped_one() {
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a", "spark-b"], "ctl.sock"));
    let daemon = scratch.run(&[]);
    let (a, b) = (ipc_path(&scratch, "spark-a"), ipc_path(&scratch, "spark-b"));
    eventually("sockets answer", || {
        ask(&a, json!({"type": "status"}))?;
        ask(&b, json!({"type": "status"}))
    });
    ask(&b, json!({"type": "shutdown"})).expect("answer");
    eventually("spark-b stopped", || {
        (nicks(&status_of(&scratch, "ctl.sock")?) == ["spark-a"]).then_some(())
    });

    // spark-a changes (a new channel); spark-b is unchanged but was stopped over IPC.
    let changed = config(&["spark-a", "spark-b"], "ctl.sock").replacen(
        "channels: ['#general']",
        "channels: ['#general', '#ops']",
        1,
    );
    scratch.write_config(&changed);
    daemon.signal("HUP");
    eventually("both agents back", || {
        let status = status_of(&scratch, "ctl.sock")?;
        let mut names = nicks(&status);
        names.sort();
        (names == ["spark-a", "spark-b"]).then_some(())?;
        ask(&b, json!({"type": "status"}))
    });
    assert!(ask(&a, json!({"type": "status"})).is_some_and(|r| r["ok"] == true));
    let log = daemon.log_text();
    assert!(!log.contains("cannot be bound"), "{log}");
}

/// IPC `status` reports `circuit_open: true` while the agent's supervisor holds the runner's
/// circuit open (here the runner is a test child broken twice on purpose; two failures
/// within the window open it).
#[test]
fn status_reports_an_open_runner_circuit() {
    let scratch = Scratch::new();
    let text = config(&["spark-a"], "ctl.sock").replace(
        "restart:\n  backoff_base: 50ms\n",
        "restart:\n  max_restarts: 2\n  window: 60s\n  cooldown: 60s\n  backoff_base: 50ms\n",
    );
    scratch.write_config(&text);
    let _daemon = scratch.run(&[]);
    let a = ipc_path(&scratch, "spark-a");
    let status = || ask(&a, json!({"type": "status"})).map(|r| r["data"].clone());
    let first = eventually("socket answers", status);
    assert_eq!(first["circuit_open"], false, "{first}");
    let ctl = scratch.path("ctl.sock");
    let fault = || {
        let out = scratch.cli(&[
            "fault",
            "spark-a",
            "runner",
            "panic",
            "--socket",
            ctl.to_str().expect("utf8"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    fault();
    eventually("runner restarted", || {
        let status = status_of(&scratch, "ctl.sock")?;
        let runner = child(&status, "spark-a", "runner")?;
        (runner["restarts"] == 1 && runner["state"] == "running").then_some(())
    });
    fault();
    let open = eventually("circuit_open over ipc", || {
        let data = status()?;
        (data["circuit_open"] == true).then_some(data)
    });
    assert_eq!(open["running"], false, "{open}");
}
