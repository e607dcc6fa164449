//! systemd's notify protocol end to end: the real `codexd run` with `NOTIFY_SOCKET` on a
//! datagram socket the test binds, as systemd would. READY once the agent's irc is connected
//! and its codex is up (or after the ready timeout, naming what is not), STATUS lines,
//! WATCHDOG pings (also while a child's circuit is open), RELOADING/READY on SIGHUP,
//! STOPPING on SIGTERM, in that order.

#[path = "support/codex_agent.rs"]
mod codex_agent;
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

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};

use codex_agent::{Codex, CodexAgent, Extra};
use support::{Scratch, child, eventually};

/// `WATCHDOG_USEC` handed to codexd: pings every 200 ms.
const WATCHDOG_USEC: &str = "400000";

/// The test's end of `NOTIFY_SOCKET`: every datagram received, in order.
struct NotifySocket {
    _dir: tempfile::TempDir,
    path: String,
    received: Arc<Mutex<Vec<String>>>,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().expect("lock").push(text);
            }
        });
        NotifySocket {
            path: path.display().to_string(),
            _dir: dir,
            received,
        }
    }

    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        [("NOTIFY_SOCKET", self.path.as_str())]
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn all(&self) -> Vec<String> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until a datagram after index `from` has the line `line`: its index.
    fn wait_for(&self, from: usize, line: &str) -> usize {
        eventually(&format!("a datagram with {line}"), || {
            position(&self.all(), from, |d| has(d, line))
        })
    }

    /// Waits until `n` WATCHDOG=1 pings arrived after index `from`.
    fn wait_for_pings(&self, from: usize, n: usize) {
        eventually(&format!("{n} watchdog pings"), || {
            let all = self.all();
            let pings = all.iter().skip(from).filter(|d| has(d, "WATCHDOG=1"));
            (pings.count() >= n).then_some(())
        });
    }
}

fn has(datagram: &str, line: &str) -> bool {
    datagram.lines().any(|l| l == line)
}

fn value<'a>(datagram: &'a str, key: &str) -> Option<&'a str> {
    datagram
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

fn position(all: &[String], from: usize, test: impl Fn(&str) -> bool) -> Option<usize> {
    all.iter()
        .enumerate()
        .skip(from)
        .find(|(_, d)| test(d))
        .map(|(i, _)| i)
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_status_watchdog_reload_and_stopping_in_order() {
    let notify = NotifySocket::bind();
    let env = notify.env(&[("WATCHDOG_USEC", WATCHDOG_USEC)]);
    let extra = Extra {
        env: &env,
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::launch(Codex::Fake(""), extra).await else {
        return;
    };
    // READY comes with the STATUS line that says why: irc connected, codex up.
    let ready = notify.wait_for(0, "READY=1");
    let all = notify.all();
    let status = value(&all[ready], "STATUS").expect("READY carries STATUS");
    assert!(
        status.starts_with("1 agent: 1 up, 1 connected, 1 on codex; codex: 1 process up"),
        "{status}"
    );
    let now = agent.scratch.status().expect("status");
    let irc = child(&now, codex_agent::NICK, "irc").expect("irc");
    let runner = child(&now, codex_agent::NICK, "runner").expect("runner");
    assert_eq!(irc["detail"]["state"], "connected");
    assert_ne!(runner["detail"]["phase"], "waiting");
    assert_ne!(runner["detail"]["phase"], "handshake");
    for earlier in &all[..ready] {
        assert!(!has(earlier, "READY=1"), "READY before: {all:?}");
    }
    notify.wait_for_pings(ready, 3);

    // SIGHUP: RELOADING with the monotonic time, then READY again, then pings go on.
    let daemon = agent.daemon.as_ref().expect("running");
    daemon.signal("HUP");
    let reloading = notify.wait_for(ready + 1, "RELOADING=1");
    let monotonic = value(&notify.all()[reloading], "MONOTONIC_USEC").map(str::parse::<u64>);
    assert!(
        matches!(monotonic, Some(Ok(usec)) if usec > 0),
        "{:?}",
        notify.all()
    );
    let reloaded = notify.wait_for(reloading + 1, "READY=1");
    notify.wait_for_pings(reloaded, 2);

    // SIGTERM: STOPPING, then the exit; no ping after STOPPING.
    agent.stop_daemon();
    let all = notify.all();
    let stopping = position(&all, reloaded, |d| has(d, "STOPPING=1")).expect("STOPPING=1");
    assert!(
        all[stopping + 1..].iter().all(|d| !has(d, "WATCHDOG=1")),
        "{all:?}"
    );
}

/// Fast restarts, and a circuit that stays open for the test's whole length.
const DRILL: &str = r#"server:
  name: spark
control_socket: {socket}
state_dir: {home}/state
shutdown_grace: 5s
restart:
  backoff_base: 50ms
  backoff_cap: 200ms
  max_restarts: 3
  window: 60s
  cooldown: 600s
  health_interval: 500ms
  health_timeout: 2s
agents:
  - nick: spark-a
    channels: ['#general']
    test_children: [irc, socket, runner]
"#;

#[test]
fn the_watchdog_keeps_pinging_while_a_childs_circuit_is_open() {
    let notify = NotifySocket::bind();
    let scratch = Scratch::new();
    scratch.write_config(DRILL);
    let mut daemon = scratch.run_with_env(&[], &notify.env(&[("WATCHDOG_USEC", WATCHDOG_USEC)]));
    // Test children report no detail: running is up.
    let ready = notify.wait_for(0, "READY=1");
    let socket = scratch.socket();
    let socket = socket.to_str().expect("utf-8");
    for round in 1..=3 {
        eventually("irc running before the fault", || {
            let status = scratch.status()?;
            let irc = child(&status, "spark-a", "irc")?;
            (irc["state"] == "running" && irc["restarts"] == round - 1).then_some(())
        });
        let out = scratch.cli(&["fault", "spark-a", "irc", "panic", "--socket", socket]);
        assert!(out.status.success(), "fault {round}: {out:?}");
    }
    let open = eventually("STATUS names the open circuit", || {
        position(&notify.all(), ready, |d| {
            value(d, "STATUS").is_some_and(|s| s.contains("circuits open: spark-a/irc"))
        })
    });
    notify.wait_for_pings(open + 1, 5);
    let status = scratch.status().expect("status");
    assert_eq!(
        child(&status, "spark-a", "irc").expect("irc")["state"],
        "circuit_open",
        "the circuit stayed open while the pings went on"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait().code(), Some(0));
    notify.wait_for(open, "STOPPING=1");
}

#[test]
fn ready_comes_after_the_timeout_naming_what_is_not_up() {
    let notify = NotifySocket::bind();
    // A port nobody listens on: the irc child keeps trying to connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let scratch = Scratch::new();
    scratch.write_config(&format!(
        "server:\n  name: spark\n  host: 127.0.0.1\n  port: {port}\ncontrol_socket: {{socket}}\nstate_dir: {{home}}/state\nshutdown_grace: 5s\nagents:\n  - nick: spark-a\n    channels: ['#general']\n    test_children: [socket, runner]\n"
    ));
    let env = notify.env(&[("CODEXD_READY_TIMEOUT", "1")]);
    let mut daemon = scratch.run_with_env(&[], &env);
    let ready = notify.wait_for(0, "READY=1");
    let all = notify.all();
    let status = value(&all[ready], "STATUS").expect("READY carries STATUS");
    assert!(status.contains("0 up"), "{status}");
    assert!(status.contains("not up: spark-a/irc ("), "{status}");
    assert!(
        all.iter().all(|d| !has(d, "WATCHDOG=1")),
        "no WATCHDOG_USEC, no pings: {all:?}"
    );
    assert!(
        daemon
            .log_text()
            .contains("ready although not every agent is up")
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait().code(), Some(0));
    notify.wait_for(ready, "STOPPING=1");
}

#[test]
fn without_notify_socket_nothing_is_sent_and_the_daemon_runs() {
    // The socket exists, but codexd is not told about it: it must stay silent.
    let notify = NotifySocket::bind();
    let scratch = Scratch::new();
    scratch.write_config(DRILL);
    let mut daemon =
        scratch.run_with_env(&[], &[("WATCHDOG_USEC".to_owned(), "400000".to_owned())]);
    eventually("running", || {
        let status = scratch.status()?;
        (child(&status, "spark-a", "irc")?["state"] == "running").then_some(())
    });
    daemon.signal("TERM");
    assert_eq!(daemon.wait().code(), Some(0));
    assert!(notify.all().is_empty(), "{:?}", notify.all());
    assert!(!daemon.log_text().contains("systemd notifications on"));
}
