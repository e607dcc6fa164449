//! The status gauges, the process identity and JSON logs joined to traces, checked at a real
//! OTLP receiver against a real `codexd run`:
//!
//! - with an agent's `irc` circuit open (`codexd fault … irc panic`, `max_restarts: 1`), every
//!   gauge read back at the receiver equals what `codexd status --json` says; each process
//!   exports its own `service.instance.id` and the machine's `host.name`;
//! - with an agent paused over its IPC socket (real agentirc, real codex offline) and a DM
//!   waiting in its journal, the same, with `codexd.agent.paused{reason="manual"}` = 1;
//! - a `--log-format json` line written inside a span carries that span's trace and span id.
//!
//! Peers: the OTLP receiver (and agentirc + codex for the paused agent) from
//! `scripts/install-peers`; a missing peer is a loud SKIP (a failure under `CI=true`).

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

use std::collections::BTreeMap;

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use codexd::telemetry::gauges::GAUGES;
use fake_model::Reply;
use otlp::OtlpSink;
use serde_json::{Value, json};
use support::{Scratch, child, eventually};

/// Gauge values by `"<gauge> <attributes k=v sorted by key, joined by ,>"`.
type Values = BTreeMap<String, u64>;

fn key(gauge: &str, attributes: &[(&str, &str)]) -> String {
    let mut attributes: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    attributes.sort();
    format!("{gauge} {}", attributes.join(","))
}

/// Every gauge as the receiver got it last.
fn received(sink: &OtlpSink) -> Values {
    let mut values = Values::new();
    for (gauge, _, _) in GAUGES {
        for point in sink.latest_points(gauge) {
            let attributes: Vec<(String, String)> = point
                .attributes
                .keys()
                .map(|k| (k.clone(), point.attr(k).unwrap_or_default()))
                .collect();
            let borrowed: Vec<(&str, &str)> = attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            values.insert(key(gauge, &borrowed), point.value.unwrap_or(-1.0) as u64);
        }
    }
    values
}

/// Every gauge as docs/telemetry.md derives it from `status --json`.
fn expected(status: &Value) -> Values {
    let mut values = Values::new();
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let open = |c: &Value| u64::from(c["circuit"] != "closed");
    for agent in list(&status["agents"]) {
        let nick = agent["nick"].as_str().unwrap_or_default();
        let by = [("agent.nick", nick)];
        let up = u64::from(agent["state"] == "running");
        values.insert(key("codexd.agent.up", &by), up);
        let circuit = [
            ("supervisor", "host"),
            ("child", nick),
            ("agent.nick", nick),
        ];
        values.insert(key("codexd.circuits.open", &circuit), open(&agent));
        for c in list(&agent["children"]) {
            let name = c["name"].as_str().unwrap_or_default();
            let circuit = [("supervisor", nick), ("child", name), ("agent.nick", nick)];
            values.insert(key("codexd.circuits.open", &circuit), open(&c));
            let detail = &c["detail"];
            match name {
                "irc" if detail["state"].is_string() => {
                    let connected = u64::from(detail["state"] == "connected");
                    values.insert(key("codexd.irc.connected", &by), connected);
                }
                "irc" if c["state"] != "running" => {
                    values.insert(key("codexd.irc.connected", &by), 0);
                }
                "runner" if detail.is_object() => {
                    for reason in ["manual", "turn_failures", "escalation", "sleep"] {
                        let paused = u64::from(detail["paused"] == reason);
                        let attributes = [("agent.nick", nick), ("reason", reason)];
                        values.insert(key("codexd.agent.paused", &attributes), paused);
                    }
                    let pending = detail["pending"].as_u64().unwrap_or_default();
                    values.insert(key("codexd.journal.pending", &by), pending);
                    let turns = list(&detail["turns"]).len() as u64;
                    values.insert(key("codexd.turns.in_flight", &by), turns);
                }
                "webhook" if detail["queued"].is_u64() => {
                    let queued = detail["queued"].as_u64().unwrap_or_default();
                    values.insert(key("codexd.webhook.queue", &by), queued);
                }
                _ => {}
            }
        }
    }
    for service in list(&status["services"]) {
        let name = service["name"].as_str().unwrap_or_default();
        let circuit = [("supervisor", "host"), ("child", name)];
        values.insert(key("codexd.circuits.open", &circuit), open(&service));
        if name != "codex" {
            continue;
        }
        let processes = list(&service["children"]);
        let states = [
            "starting",
            "running",
            "restarting",
            "circuit_open",
            "stopped",
        ];
        for state in states {
            let count = processes.iter().filter(|p| p["state"] == state).count();
            values.insert(
                key("codexd.codex.processes", &[("state", state)]),
                count as u64,
            );
        }
        for process in &processes {
            let name = process["name"].as_str().unwrap_or_default();
            let circuit = [("supervisor", "codex"), ("child", name)];
            values.insert(key("codexd.circuits.open", &circuit), open(process));
            if let Some(threads) = process["detail"]["threads"].as_u64() {
                let by = [("codex.process", name)];
                values.insert(key("codexd.codex.threads", &by), threads);
            }
        }
    }
    values
}

/// Waits until the receiver's gauges equal `status --json` (read just before them) and
/// `holds` is true of that status; answers both.
fn gauges_match(
    what: &str,
    status: impl Fn() -> Option<Value>,
    sink: &OtlpSink,
    holds: impl Fn(&Value, &Values) -> bool,
) -> (Value, Values) {
    eventually(what, || {
        let status = status()?;
        let got = received(sink);
        (got == expected(&status) && holds(&status, &got)).then_some((status, got))
    })
}

fn telemetry(sink: &OtlpSink, service: &str) -> String {
    format!(
        "telemetry:\n  enabled: true\n  service_name: {service}\n  otlp_endpoint: {}\n  otlp_protocol: grpc\n  metrics_export_interval_ms: 200\n",
        sink.grpc_endpoint()
    )
}

/// Two agents of inert test children; a child's first failure opens its circuit for a minute.
fn drill_config(sink: &OtlpSink) -> String {
    let agents: String = ["spark-a", "spark-b"]
        .iter()
        .map(|nick| format!("  - nick: {nick}\n    channels: ['#general']\n    test_children: [irc, socket, runner]\n"))
        .collect();
    format!(
        "server:\n  name: spark\ncontrol_socket: {{socket}}\nstate_dir: {{home}}/state\nshutdown_grace: 5s\nrestart:\n  backoff_base: 50ms\n  backoff_cap: 200ms\n  max_restarts: 1\n  window: 60s\n  cooldown: 60s\n  cooldown_cap: 60s\n  health_interval: 500ms\n  health_timeout: 2s\n{}agents:\n{agents}",
        telemetry(sink, "codexd-gauges")
    )
}

fn start_sink() -> Option<OtlpSink> {
    match OtlpSink::start() {
        Ok(sink) => Some(sink),
        Err(reason) => {
            otlp::skip_or_fail(&reason);
            None
        }
    }
}

/// The `service.instance.id`s of the metrics received so far, in order of arrival.
fn instance_ids(sink: &OtlpSink) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for metric in sink.metrics() {
        let id = metric
            .resource_attr("service.instance.id")
            .unwrap_or_default();
        if ids.last() != Some(&id) {
            ids.push(id);
        }
    }
    ids
}

fn is_uuid_v4(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && groups[2].starts_with('4')
}

#[test]
fn gauges_match_status_while_a_circuit_is_open() {
    let Some(sink) = start_sink() else { return };
    let scratch = Scratch::new();
    scratch.write_config(&drill_config(&sink));
    let mut daemon = scratch.run(&[]);
    let socket = scratch.socket().display().to_string();
    let irc_open = |values: &Values| {
        let circuit = [
            ("supervisor", "spark-a"),
            ("child", "irc"),
            ("agent.nick", "spark-a"),
        ];
        values.get(&key("codexd.circuits.open", &circuit)).copied()
    };
    gauges_match(
        "gauges of two running agents",
        || scratch.status(),
        &sink,
        |status, got| irc_open(got) == Some(0) && child(status, "spark-b", "runner").is_some(),
    );

    // `max_restarts: 1`: the first failure opens the circuit.
    let out = scratch.cli(&["fault", "spark-a", "irc", "panic", "--socket", &socket]);
    assert!(out.status.success(), "{out:?}");
    let (status, got) = gauges_match(
        "gauges with spark-a's irc circuit open",
        || scratch.status(),
        &sink,
        |status, got| {
            let irc = child(status, "spark-a", "irc");
            irc.is_some_and(|irc| irc["state"] == "circuit_open") && irc_open(got) == Some(1)
        },
    );
    eprintln!("status: {status}\ngauges at the receiver: {got:#?}");
    assert_eq!(
        got.get(&key("codexd.agent.up", &[("agent.nick", "spark-a")])),
        Some(&1)
    );
    assert_eq!(
        got.get(&key("codexd.irc.connected", &[("agent.nick", "spark-a")])),
        Some(&0)
    );

    // Resource: a UUID per process, and the machine's name.
    let metric = sink.metrics().pop().expect("metrics received");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(
        metric.resource_attr("host.name").as_deref(),
        Some(host.trim())
    );
    daemon.signal("TERM");
    assert!(daemon.wait().success(), "{}", daemon.log_text());
    let mut again = scratch.run(&[]);
    let ids = eventually("the second process's metrics", || {
        let ids = instance_ids(&sink);
        (ids.len() >= 2).then_some(ids)
    });
    assert_eq!(ids.len(), 2, "one id per process: {ids:?}");
    assert!(ids.iter().all(|id| is_uuid_v4(id)), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    again.signal("TERM");
    assert!(again.wait().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gauges_match_status_while_an_agent_is_paused() {
    let Some(sink) = start_sink() else { return };
    let top = telemetry(&sink, "codexd-gauges-paused");
    let extra = Extra {
        top: &top,
        ..Extra::default()
    };
    let script = vec![Reply::text("answered after the pause")];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), extra).await else {
        return;
    };
    let paused = |values: &Values, reason: &str| {
        let attributes = [("agent.nick", NICK), ("reason", reason)];
        values
            .get(&key("codexd.agent.paused", &attributes))
            .copied()
    };
    gauges_match(
        "gauges of a running agent",
        || agent.scratch.status(),
        &sink,
        |_, got| paused(got, "manual") == Some(0),
    );

    let answer = agent.ipc(json!({"type": "pause", "id": "p"}));
    assert_eq!(answer.map(|a| a["ok"].clone()), Some(json!(true)));
    agent.say(NICK, "are you there?").await;
    let (status, got) = gauges_match(
        "gauges of the paused agent with a DM waiting",
        || agent.scratch.status(),
        &sink,
        |status, got| {
            let runner = &child(status, NICK, "runner").expect("runner")["detail"];
            runner["paused"] == "manual"
                && runner["pending"] == 1
                && paused(got, "manual") == Some(1)
        },
    );
    eprintln!("status: {status}\ngauges at the receiver: {got:#?}");
    let by_agent = [("agent.nick", NICK)];
    for (gauge, want) in [
        ("codexd.agent.up", 1),
        ("codexd.irc.connected", 1),
        ("codexd.journal.pending", 1),
        ("codexd.turns.in_flight", 0),
    ] {
        assert_eq!(got.get(&key(gauge, &by_agent)), Some(&want), "{gauge}");
    }
    let running = key("codexd.codex.processes", &[("state", "running")]);
    assert_eq!(got.get(&running), Some(&1));

    let answer = agent.ipc(json!({"type": "resume", "id": "r"}));
    assert_eq!(answer.map(|a| a["ok"].clone()), Some(json!(true)));
    agent.reply("spark-ori", "answered after the pause").await;
    gauges_match(
        "gauges after the resume",
        || agent.scratch.status(),
        &sink,
        |status, got| {
            let runner = &child(status, NICK, "runner").expect("runner")["detail"];
            runner["pending"] == 0 && paused(got, "manual") == Some(0)
        },
    );
    agent.stop_daemon();
}

/// The daemon's log lines that are JSON objects.
fn json_lines(daemon: &support::Daemon) -> Vec<Value> {
    let log = daemon.log_text();
    log.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_json_log_line_carries_the_trace_id_of_its_span() {
    let Some(sink) = start_sink() else { return };
    let scratch = Scratch::new();
    scratch.write_config(&drill_config(&sink));
    let mut daemon = scratch.run(&["--log-format", "json"]);
    eventually("spark-a's irc running", || {
        let status = scratch.status()?;
        (child(&status, "spark-a", "irc")?["state"] == "running").then_some(())
    });
    let socket = scratch.socket().display().to_string();
    let out = scratch.cli(&["fault", "spark-a", "irc", "panic", "--socket", &socket]);
    assert!(out.status.success(), "{out:?}");
    let failed = |line: &Value| {
        line["fields"]["message"] == "child failed"
            && line["fields"]["supervisor"] == "spark-a"
            && line["fields"]["child"] == "irc"
    };
    let line = eventually("the failure logged", || {
        json_lines(&daemon).into_iter().find(failed)
    });
    daemon.signal("TERM");
    assert!(daemon.wait().success(), "{}", daemon.log_text());
    let log = daemon.log_text();
    assert!(
        !log.contains("did not answer"),
        "the gauges stop first:\n{log}"
    );

    let spans = sink.spans();
    let span = spans
        .iter()
        .find(|s| {
            s.name == "supervisor.transition"
                && s.attr("supervisor").as_deref() == Some("spark-a")
                && s.attr("child").as_deref() == Some("irc")
                && s.attr("transition").as_deref() == Some("failed")
        })
        .unwrap_or_else(|| panic!("no failed transition span in {spans:#?}"));
    assert_eq!(line["trace_id"], span.trace_id.as_str(), "{line}");
    assert_eq!(line["span_id"], span.span_id.as_str(), "{line}");
    assert_eq!(line["span"]["name"], "supervisor.transition", "{line}");
    let outside = json_lines(&daemon)
        .into_iter()
        .find(|l| l["fields"]["message"] == "codexd running");
    let outside = outside.expect("the start line");
    assert!(
        outside.get("trace_id").is_none(),
        "outside any span: {outside}"
    );
}
