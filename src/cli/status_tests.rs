use codexd_actors::child::{ChildState, ChildStatus};
use codexd_actors::host::{AgentStatus, HostStatus};
use serde_json::json;

use super::*;

fn child(name: &str, state: ChildState, detail: Option<serde_json::Value>) -> ChildStatus {
    ChildStatus {
        name: name.to_owned(),
        service: false,
        state,
        restarts: 0,
        circuit: match state {
            ChildState::CircuitOpen => "open",
            _ => "closed",
        }
        .to_owned(),
        last_error: None,
        actor_id: None,
        uptime_s: Some(75.0),
        detail,
        children: Vec::new(),
    }
}

/// An agent whose runner reports `paused` and whose irc child is in `irc`.
fn agent(nick: &str, state: ChildState, paused: Option<&str>, irc: ChildState) -> AgentStatus {
    let runner = child(
        "runner",
        ChildState::Running,
        Some(json!({ "paused": paused, "summary": "idle" })),
    );
    let mut supervision = child(nick, state, None);
    supervision.children = vec![runner, child("irc", irc, None)];
    AgentStatus {
        nick: nick.to_owned(),
        supervision,
    }
}

fn codex(processes: &[(&str, ChildState)]) -> ChildStatus {
    let mut codex = child("codex", ChildState::Running, None);
    codex.children = processes
        .iter()
        .map(|(name, state)| child(name, *state, None))
        .collect();
    codex
}

fn tree(agents: Vec<AgentStatus>, services: Vec<ChildStatus>) -> HostStatus {
    HostStatus { agents, services }
}

#[test]
fn uptimes_read_in_two_units_at_most() {
    let table = [
        (0.4, "0s"),
        (59.0, "59s"),
        (61.0, "1m01s"),
        (3599.0, "59m59s"),
        (3600.0, "1h00m"),
        (86_399.0, "23h59m"),
        (90_061.0, "1d01h"),
        (-3.0, "0s"),
    ];
    for (seconds, shown) in table {
        assert_eq!(humanise_uptime(seconds), shown, "{seconds}");
    }
}

#[test]
fn a_paused_agent_reads_paused_with_its_reason_and_uptimes_are_shown() {
    let status = tree(
        vec![
            agent(
                "spark-a",
                ChildState::Running,
                Some("manual"),
                ChildState::Running,
            ),
            agent("spark-b", ChildState::Running, None, ChildState::Running),
        ],
        Vec::new(),
    );
    let table = status_table(&status);
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "AGENT/CHILD",
            "STATE",
            "PAUSED",
            "CIRCUIT",
            "RESTARTS",
            "UPTIME",
            "LAST",
            "ERROR",
            "/",
            "DETAIL"
        ]
    );
    let cells = |name: &str| -> Vec<String> {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {table}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(
        cells("spark-a")[..6],
        ["spark-a", "paused", "manual", "closed", "0", "1m15s"]
    );
    assert_eq!(
        cells("spark-b")[..6],
        ["spark-b", "running", "-", "closed", "0", "1m15s"]
    );
    assert_eq!(cells("runner")[..3], ["runner", "running", "-"], "{table}");
}

#[test]
fn a_healthy_tree_has_no_problems_and_manual_or_sleep_pauses_are_healthy() {
    let status = tree(
        vec![
            agent(
                "spark-a",
                ChildState::Running,
                Some("manual"),
                ChildState::Running,
            ),
            agent(
                "spark-b",
                ChildState::Running,
                Some("sleep"),
                ChildState::Restarting,
            ),
            agent("spark-c", ChildState::Running, None, ChildState::Running),
        ],
        vec![codex(&[("process-1", ChildState::Running)])],
    );
    assert_eq!(problems(&status), Vec::<String>::new());
}

#[test]
fn every_unhealthy_finding_is_one_reason() {
    let status = tree(
        vec![
            agent(
                "spark-a",
                ChildState::Running,
                None,
                ChildState::CircuitOpen,
            ),
            agent(
                "spark-b",
                ChildState::CircuitOpen,
                None,
                ChildState::Running,
            ),
            agent("spark-c", ChildState::Restarting, None, ChildState::Running),
            agent(
                "spark-d",
                ChildState::Running,
                Some("turn_failures"),
                ChildState::Running,
            ),
            agent(
                "spark-e",
                ChildState::Running,
                Some("escalation"),
                ChildState::Running,
            ),
        ],
        vec![
            codex(&[
                ("process-1", ChildState::Running),
                ("process-2", ChildState::CircuitOpen),
            ]),
            child("audit", ChildState::CircuitOpen, None),
        ],
    );
    assert_eq!(
        problems(&status),
        [
            "circuit open on spark-a/irc",
            "circuit open on spark-b",
            "agent spark-c is down (restarting)",
            "agent spark-d is paused (turn_failures)",
            "agent spark-e is paused (escalation)",
            "circuit open on codex process-2",
            "circuit open on audit",
        ]
    );
}
