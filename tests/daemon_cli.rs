//! The daemon end to end through its CLI and control socket: the tree in `status --json`,
//! faults that open a circuit and a cooldown that closes it, containment, SIGHUP adding
//! and removing agents, SIGTERM, clear errors for bad targets and bad configs.

mod support;

use support::{Scratch, agent, child, eventually};

/// Fast restart policy so a real process cycles through its circuit in a few seconds.
const POLICY: &str = r#"
restart:
  backoff_base: 50ms
  backoff_cap: 200ms
  max_restarts: 3
  window: 60s
  cooldown: 2s
  cooldown_cap: 10s
  stable_after: 1s
  health_interval: 500ms
  health_timeout: 2s
"#;

fn config(nicks: &[&str]) -> String {
    let agents: String = nicks
        .iter()
        .map(|nick| format!("  - nick: {nick}\n    channels: ['#general']\n    test_children: [irc, socket, runner]\n"))
        .collect();
    format!(
        "server:\n  name: spark\ncontrol_socket: {{socket}}\nstate_dir: {{home}}/state\nshutdown_grace: 5s\n{POLICY}agents:\n{agents}"
    )
}

fn all_running(status: &serde_json::Value, nicks: &[&str]) -> bool {
    nicks.iter().all(|nick| {
        ["irc", "socket", "runner"]
            .iter()
            .all(|c| child(status, nick, c).is_some_and(|c| c["state"] == "running"))
    })
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exit code")
}

#[test]
fn faults_open_a_circuit_that_heals_and_leave_everything_else_alone() {
    let scratch = Scratch::new();
    let nicks = ["spark-a", "spark-b", "spark-c"];
    scratch.write_config(&config(&nicks));
    let mut daemon = scratch.run(&[]);
    let before = eventually("all agents running", || {
        scratch.status().filter(|s| all_running(s, &nicks))
    });
    let socket = scratch.socket();
    let socket = socket.to_str().expect("utf-8");

    for round in 1..=3 {
        eventually("irc running before the fault", || {
            scratch
                .status()
                .filter(|s| child(s, "spark-a", "irc").is_some_and(|c| c["state"] == "running"))
        });
        let out = scratch.cli(&["fault", "spark-a", "irc", "panic", "--socket", socket]);
        assert_eq!(
            code(&out),
            0,
            "fault {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eventually("irc leaves running", || {
            scratch.status().filter(|s| {
                child(s, "spark-a", "irc")
                    .is_some_and(|c| c["state"] != "running" || c["restarts"] == round)
            })
        });
    }
    let open = eventually("circuit open", || {
        scratch
            .status()
            .filter(|s| child(s, "spark-a", "irc").is_some_and(|c| c["state"] == "circuit_open"))
    });
    let irc = child(&open, "spark-a", "irc").expect("irc");
    assert_eq!(irc["circuit"], "open");
    assert!(
        irc["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("panic"),
        "{irc}"
    );

    // Nothing else moved: same actor instances everywhere else.
    for (nick, name) in [
        ("spark-a", "socket"),
        ("spark-a", "runner"),
        ("spark-b", "irc"),
        ("spark-c", "runner"),
    ] {
        assert_eq!(
            child(&open, nick, name).expect("child")["actor_id"],
            child(&before, nick, name).expect("child")["actor_id"],
            "{nick}/{name}"
        );
    }
    assert_eq!(agent(&open, "spark-a").expect("agent")["state"], "running");

    // After the cooldown the half-open attempt stays up and closes the circuit.
    let healed = eventually("circuit closed again", || {
        scratch.status().filter(|s| {
            child(s, "spark-a", "irc")
                .is_some_and(|c| c["circuit"] == "closed" && c["state"] == "running")
        })
    });
    assert_eq!(
        child(&healed, "spark-a", "irc").expect("irc")["last_error"],
        serde_json::Value::Null
    );

    daemon.signal("TERM");
    assert_eq!(
        daemon.wait().code(),
        Some(0),
        "graceful exit; log:\n{}",
        daemon.log_text()
    );
    assert!(!scratch.socket().exists(), "control socket removed on exit");
}

#[test]
fn sighup_adds_and_removes_agents_without_touching_the_others() {
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a", "spark-b"]));
    let mut daemon = scratch.run(&[]);
    let before = eventually("two agents", || {
        scratch
            .status()
            .filter(|s| all_running(s, &["spark-a", "spark-b"]))
    });

    scratch.write_config(&config(&["spark-a", "spark-c"]));
    daemon.signal("HUP");
    let after = eventually("c added, b removed", || {
        scratch
            .status()
            .filter(|s| all_running(s, &["spark-a", "spark-c"]) && agent(s, "spark-b").is_none())
    });
    let (a_before, a_after) = (
        agent(&before, "spark-a").expect("a"),
        agent(&after, "spark-a").expect("a"),
    );
    assert_eq!(
        a_after["actor_id"], a_before["actor_id"],
        "spark-a kept its instance"
    );
    assert!(
        a_after["uptime_s"].as_f64() > a_before["uptime_s"].as_f64(),
        "spark-a kept its uptime"
    );
    assert_eq!(
        child(&after, "spark-a", "runner").expect("runner")["actor_id"],
        child(&before, "spark-a", "runner").expect("runner")["actor_id"]
    );

    // An invalid config on SIGHUP is reported and changes nothing.
    std::fs::write(
        scratch.config(),
        "agents:\n  - nick: 'bad nick'\n    chanels: []\n",
    )
    .expect("write");
    daemon.signal("HUP");
    eventually("reload rejection logged", || {
        daemon
            .log_text()
            .contains("config reload rejected")
            .then_some(())
    });
    let still = scratch.status().expect("still answering");
    assert!(all_running(&still, &["spark-a", "spark-c"]));
    assert_eq!(
        agent(&still, "spark-a").expect("a")["actor_id"],
        a_before["actor_id"]
    );

    daemon.signal("TERM");
    assert_eq!(daemon.wait().code(), Some(0));
}

#[test]
fn bad_targets_are_clear_errors_and_the_daemon_lives_on() {
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a"]));
    let mut daemon = scratch.run(&[]);
    eventually("running", || {
        scratch.status().filter(|s| all_running(s, &["spark-a"]))
    });
    let socket = scratch.socket();
    let socket = socket.to_str().expect("utf-8");
    let cases: [(&[&str], &str); 4] = [
        (&["fault", "spark-x", "irc", "panic"], "spark-x"),
        (&["fault", "spark-a", "nope", "panic"], "nope"),
        (&["fault", "spark-a", "irc", "explode"], "explode"),
        // Would overflow a duration: refused, the control task lives on (asked again below).
        (
            &["fault", "spark-a", "irc", "hang:1e300"],
            "hang:1e300 is out of range",
        ),
    ];
    for (args, named) in cases {
        let out = scratch.cli(&[args, &["--socket", socket]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("hint:") && stderr.contains(named),
            "{args:?}: {stderr}"
        );
    }
    // A raw client sending garbage gets an error line and keeps its connection.
    let replies = raw_exchange(
        &scratch.socket(),
        &[
            "not json",
            "{\"cmd\":\"launch\"}",
            "{\"cmd\":\"status\",\"id\":7}",
        ],
    );
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert_eq!(replies[0]["ok"], false);
    assert_eq!(replies[1]["code"], "bad_request");
    assert_eq!(
        (replies[2]["ok"].clone(), replies[2]["id"].clone()),
        (serde_json::json!(true), serde_json::json!(7))
    );
    assert!(all_running(&scratch.status().expect("alive"), &["spark-a"]));

    // The human table names every agent and child with its state and circuit.
    let table = scratch.cli(&["status", "--socket", socket]);
    let table = String::from_utf8_lossy(&table.stdout);
    for row in ["spark-a ", "  irc ", "  socket ", "  runner "] {
        let line = table
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row:?} in:\n{table}"));
        assert!(
            line.contains("running") && line.contains("closed"),
            "{line}"
        );
    }

    daemon.signal("INT");
    assert_eq!(daemon.wait().code(), Some(0));
}

fn raw_exchange(socket: &std::path::Path, lines: &[&str]) -> Vec<serde_json::Value> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    lines
        .iter()
        .map(|line| {
            stream
                .write_all(format!("{line}\n").as_bytes())
                .expect("write");
            let mut answer = String::new();
            reader.read_line(&mut answer).expect("read");
            serde_json::from_str(&answer).expect("answer is JSON")
        })
        .collect()
}

#[test]
fn client_commands_without_a_daemon_exit_3() {
    let scratch = Scratch::new();
    let socket = scratch.socket();
    let out = scratch.cli(&["status", "--socket", socket.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint: no codexd is running"));
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a"]));
    let _first = scratch.run(&[]);
    eventually("first running", || scratch.status());
    let out = scratch
        .codexd()
        .args(["run", "--config"])
        .arg(scratch.config())
        .output()
        .expect("second");
    assert_eq!(code(&out), 78);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already listening"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(scratch.status().is_some(), "the first daemon still answers");
}

#[test]
fn unknown_agent_selection_is_refused() {
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a"]));
    let out = scratch
        .codexd()
        .args(["run", "--agent", "spark-zz", "--config"])
        .arg(scratch.config())
        .output()
        .expect("run");
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint: agent 'spark-zz' was not found"));
}

#[test]
fn run_selects_agents_by_nick() {
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a", "spark-b"]));
    let mut daemon = scratch.run(&["--agent", "spark-b"]);
    let status = eventually("b running", || {
        scratch.status().filter(|s| all_running(s, &["spark-b"]))
    });
    assert!(agent(&status, "spark-a").is_none());
    daemon.signal("TERM");
    assert_eq!(daemon.wait().code(), Some(0));
}

#[test]
fn telemetry_on_with_no_collector_neither_blocks_nor_hangs() {
    let scratch = Scratch::new();
    // Nothing listens on these ports: every export fails.
    let body = config(&["spark-a"])
        + "telemetry:\n  enabled: true\n  otlp_endpoint: http://127.0.0.1:9\n  otlp_timeout_ms: 500\n  metrics_export_interval_ms: 200\n";
    scratch.write_config(&body);
    let mut daemon = scratch.run(&[]);
    eventually("running with telemetry on", || {
        scratch.status().filter(|s| all_running(s, &["spark-a"]))
    });
    let out = scratch.cli(&[
        "fault",
        "spark-a",
        "irc",
        "panic",
        "--socket",
        scratch.socket().to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), 0);
    daemon.signal("TERM");
    assert_eq!(daemon.wait().code(), Some(0), "log:\n{}", daemon.log_text());
}

#[test]
fn a_second_shutdown_signal_exits_at_once() {
    let scratch = Scratch::new();
    // Health pings off (1h) so a hung child is not killed: graceful shutdown must wait for it.
    let body = config(&["spark-a"])
        .replace("health_interval: 500ms", "health_interval: 1h")
        .replace("shutdown_grace: 5s", "shutdown_grace: 10m");
    scratch.write_config(&body);
    let mut daemon = scratch.run(&[]);
    eventually("running", || {
        scratch.status().filter(|s| all_running(s, &["spark-a"]))
    });
    let out = scratch.cli(&[
        "fault",
        "spark-a",
        "irc",
        "hang:600",
        "--socket",
        scratch.socket().to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));

    daemon.signal("TERM");
    eventually("graceful shutdown under way", || {
        daemon.log_text().contains("shutting down").then_some(())
    });
    daemon.signal("TERM");
    assert_eq!(
        daemon.wait().code(),
        Some(143),
        "log:\n{}",
        daemon.log_text()
    );
}

/// The control socket is 0600 in a 0700 directory; with both opened up on purpose, a client
/// running as another user still gets one refusal (not a reset) and nothing else.
#[test]
fn a_control_client_of_another_user_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (setpriv, python) = ("/usr/bin/setpriv", "/usr/bin/python3");
    if rustix_uid() != 0 || !support::exists(setpriv.as_ref()) || !support::exists(python.as_ref())
    {
        eprintln!("SKIP: needs root, {setpriv} and {python} to act as another user");
        return;
    }
    let scratch = Scratch::new();
    scratch.write_config(&config(&["spark-a"]));
    let _daemon = scratch.run(&[]);
    eventually("running", || scratch.status());
    let open = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    open(scratch.dir.path(), 0o755);
    open(&scratch.path("run"), 0o755);
    open(&scratch.socket(), 0o666);
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(b'{\"cmd\":\"status\"}\\n')\nf=s.makefile()\nprint(f.readline(), end='')\nprint(repr(f.readline()))";
    let out = std::process::Command::new(setpriv)
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            python,
            "-c",
            script,
        ])
        .arg(scratch.socket())
        .output()
        .expect("setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (answer, rest) = stdout.split_once('\n').expect("two lines");
    let answer: serde_json::Value = serde_json::from_str(answer).expect("json");
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"], "permission denied: not the daemon's user");
    assert_eq!(rest, "''\n", "then the connection is closed");
    assert!(scratch.status().is_some(), "the daemon serves its own user");
}

fn rustix_uid() -> u32 {
    codexd_actors::socket::own_uid()
}
