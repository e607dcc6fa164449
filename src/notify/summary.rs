//! The tree's status as systemd's one-line STATUS and the readiness rule.
//!
//! An agent is **up** when its subtree and every child run, and
//!
//! | child    | also needs                                             |
//! |----------|--------------------------------------------------------|
//! | `irc`    | `detail.state == "connected"`                          |
//! | `runner` | `detail.phase` not `waiting` nor `handshake` (codex up) |
//!
//! A child without a detail (a `test_children` stand-in) counts when it runs. The daemon is
//! ready when every agent is up (no agents: ready at once).
//!
//! ```text
//! 3 agents: 2 up, 3 connected, 2 on codex; codex: 1 process up; not up: spark-c/runner (waiting); circuits open: spark-c/runner
//! ```

use codexd_actors::child::{ChildState, ChildStatus};
use codexd_actors::host::HostStatus;

/// How many names a list in STATUS shows before `+N more`.
const NAMES_SHOWN: usize = 5;

/// What systemd hears about the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Every agent is up.
    pub ready: bool,
    /// The STATUS line.
    pub line: String,
}

impl Summary {
    /// Summarises `status`.
    pub fn of(status: &HostStatus) -> Summary {
        let agents = status.agents.len();
        let mut up = 0;
        let mut connected = 0;
        let mut on_codex = 0;
        let mut not_up = Vec::new();
        let mut open = Vec::new();
        for agent in &status.agents {
            let nick = &agent.nick;
            if circuit_open(&agent.supervision) {
                open.push(nick.clone());
            }
            if agent.supervision.state != ChildState::Running {
                not_up.push(format!("{nick} ({})", state_name(&agent.supervision)));
                continue;
            }
            let mut all = true;
            for child in &agent.supervision.children {
                if circuit_open(child) {
                    open.push(format!("{nick}/{}", child.name));
                }
                let (ok, why) = child_up(child);
                connected += usize::from(child.name == "irc" && ok);
                on_codex += usize::from(child.name == "runner" && ok);
                if !ok {
                    all = false;
                    not_up.push(format!("{nick}/{} ({why})", child.name));
                }
            }
            up += usize::from(all);
        }
        let mut processes = 0;
        for service in &status.services {
            if circuit_open(service) {
                open.push(service.name.clone());
            }
            for process in service.children.iter().filter(|_| service.name == "codex") {
                processes += usize::from(process.state == ChildState::Running);
                if circuit_open(process) {
                    open.push(format!("codex/{}", process.name));
                }
            }
        }
        let mut line = format!(
            "{agents} agent{}: {up} up, {connected} connected, {on_codex} on codex; codex: {processes} process{} up",
            plural(agents, "s"),
            plural(processes, "es"),
        );
        if !not_up.is_empty() {
            line.push_str(&format!("; not up: {}", names(&not_up)));
        }
        if !open.is_empty() {
            line.push_str(&format!("; circuits open: {}", names(&open)));
        }
        Summary {
            ready: up == agents,
            line,
        }
    }
}

/// Whether a running child is up, and if not, a word why.
fn child_up(child: &ChildStatus) -> (bool, String) {
    if child.state != ChildState::Running {
        return (false, state_name(child));
    }
    let detail = |key: &str| {
        child
            .detail
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match child.name.as_str() {
        "irc" => match detail("state") {
            Some(state) if state != "connected" => (false, state),
            _ => (true, String::new()),
        },
        "runner" => match detail("phase") {
            Some(phase) if phase == "waiting" || phase == "handshake" => (false, phase),
            _ => (true, String::new()),
        },
        _ => (true, String::new()),
    }
}

fn circuit_open(child: &ChildStatus) -> bool {
    child.state == ChildState::CircuitOpen || child.circuit == "open"
}

/// `circuit_open`, `restarting`, … as in `codexd status`.
fn state_name(child: &ChildStatus) -> String {
    serde_json::to_value(child.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn plural(n: usize, suffix: &'static str) -> &'static str {
    if n == 1 { "" } else { suffix }
}

/// The first [`NAMES_SHOWN`] names, then `+N more`.
fn names(all: &[String]) -> String {
    let mut shown = all
        .iter()
        .take(NAMES_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > NAMES_SHOWN {
        shown.push_str(&format!(" +{} more", all.len() - NAMES_SHOWN));
    }
    shown
}

#[cfg(test)]
mod tests {
    use codexd_actors::host::AgentStatus;
    use serde_json::json;

    use super::*;

    fn child(name: &str, state: ChildState, detail: Option<serde_json::Value>) -> ChildStatus {
        ChildStatus {
            name: name.to_owned(),
            service: false,
            state,
            restarts: 0,
            circuit: if state == ChildState::CircuitOpen {
                "open"
            } else {
                "closed"
            }
            .to_owned(),
            last_error: None,
            actor_id: None,
            uptime_s: None,
            detail,
            children: Vec::new(),
        }
    }

    fn agent(nick: &str, irc: &str, phase: &str, runner: ChildState) -> AgentStatus {
        let mut supervision = child(nick, ChildState::Running, None);
        supervision.children = vec![
            child("irc", ChildState::Running, Some(json!({ "state": irc }))),
            child("runner", runner, Some(json!({ "phase": phase }))),
            child("socket", ChildState::Running, None),
        ];
        AgentStatus {
            nick: nick.to_owned(),
            supervision,
        }
    }

    fn codex(processes: &[ChildState]) -> ChildStatus {
        let mut service = child("codex", ChildState::Running, None);
        service.service = true;
        service.children = processes
            .iter()
            .enumerate()
            .map(|(n, s)| child(&format!("process-{n}"), *s, None))
            .collect();
        service
    }

    #[test]
    fn the_line_and_readiness_follow_the_tree() {
        use ChildState::{CircuitOpen, Running};
        let table: [(Vec<AgentStatus>, Vec<ChildState>, bool, &str); 5] = [
            (
                vec![],
                vec![],
                true,
                "0 agents: 0 up, 0 connected, 0 on codex; codex: 0 processes up",
            ),
            (
                vec![agent("spark-a", "connected", "idle", Running)],
                vec![Running],
                true,
                "1 agent: 1 up, 1 connected, 1 on codex; codex: 1 process up",
            ),
            (
                vec![agent("spark-a", "connecting", "handshake", Running)],
                vec![Running],
                false,
                "1 agent: 0 up, 0 connected, 0 on codex; codex: 1 process up; not up: spark-a/irc (connecting), spark-a/runner (handshake)",
            ),
            (
                vec![
                    agent("spark-a", "connected", "turn", Running),
                    agent("spark-b", "connected", "idle", CircuitOpen),
                ],
                vec![Running],
                false,
                "2 agents: 1 up, 2 connected, 1 on codex; codex: 1 process up; not up: spark-b/runner (circuit_open); circuits open: spark-b/runner",
            ),
            (
                vec![agent("spark-a", "connected", "waiting", Running)],
                vec![CircuitOpen],
                false,
                "1 agent: 0 up, 1 connected, 0 on codex; codex: 0 processes up; not up: spark-a/runner (waiting); circuits open: codex/process-0",
            ),
        ];
        for (agents, processes, ready, line) in table {
            let status = HostStatus {
                agents,
                services: vec![codex(&processes)],
            };
            let summary = Summary::of(&status);
            assert_eq!(summary.line, line);
            assert_eq!(summary.ready, ready, "{line}");
        }
    }

    #[test]
    fn a_test_child_without_detail_counts_when_it_runs() {
        let mut a = agent("spark-a", "connected", "idle", ChildState::Running);
        for c in &mut a.supervision.children {
            c.detail = None;
        }
        let status = HostStatus {
            agents: vec![a],
            services: vec![],
        };
        assert!(Summary::of(&status).ready);
    }

    #[test]
    fn long_lists_are_cut() {
        let all: Vec<String> = (0..7).map(|n| format!("spark-{n}")).collect();
        assert_eq!(
            names(&all),
            "spark-0, spark-1, spark-2, spark-3, spark-4 +2 more"
        );
    }
}
