//! From `codexd status` (a [`HostStatus`]) to gauge values: a pure function, so what each
//! gauge says can be read off the tree.
//!
//! | gauge                    | one point per                 | value                                                   | attributes |
//! |--------------------------|-------------------------------|---------------------------------------------------------|------------|
//! | `codexd.agent.up`        | agent                         | 1 when the agent's subtree is `running`, else 0         | `agent.nick` |
//! | `codexd.irc.connected`   | agent with an `irc` child     | 1 when its detail says `state: connected`, else 0 (a running test child, which has no detail: no point) | `agent.nick` |
//! | `codexd.agent.paused`    | agent × pause reason, while the runner reports | 1 for the runner's `paused` reason, 0 for the others | `agent.nick`, `reason` |
//! | `codexd.journal.pending` | agent whose runner reports    | the runner's `pending`                                  | `agent.nick` |
//! | `codexd.turns.in_flight` | agent whose runner reports    | the number of the runner's `turns`                      | `agent.nick` |
//! | `codexd.circuits.open`   | supervised child, at every level | 1 when its `circuit` is not `closed` (open or half-open) | `supervisor`, `child`, `agent.nick` (for an agent and its children) |
//! | `codexd.codex.processes` | child state (all five)        | codex processes in that state                           | `state` |
//! | `codexd.codex.threads`   | running codex process         | its detail's `threads`                                  | `codex.process` |
//! | `codexd.webhook.queue`   | agent whose webhook reports   | its `queued` HTTP deliveries                            | `agent.nick` |

use std::collections::BTreeMap;

use codexd_actors::child::{ChildState, ChildStatus};
use codexd_actors::host::HostStatus;
use opentelemetry::KeyValue;
use serde_json::Value;

/// The pause reasons the runner reports (`actors::pause::PauseReason`, snake_case).
pub(super) const PAUSE_REASONS: [&str; 4] = ["manual", "turn_failures", "escalation", "sleep"];

/// Every [`ChildState`], so each state has a `codexd.codex.processes` point (0 when none).
const STATES: [ChildState; 5] = [
    ChildState::Starting,
    ChildState::Running,
    ChildState::Restarting,
    ChildState::CircuitOpen,
    ChildState::Stopped,
];

/// One observation: a value and its attributes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    /// The gauge's value.
    pub(crate) value: u64,
    /// Its attributes.
    pub(crate) attributes: Vec<KeyValue>,
}

/// Every gauge's points at one moment; a gauge with no entry has no points.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
    points: BTreeMap<&'static str, Vec<Point>>,
}

impl Snapshot {
    /// The points of gauge `name`.
    pub(crate) fn points(&self, name: &str) -> &[Point] {
        self.points.get(name).map_or(&[], Vec::as_slice)
    }

    fn push(&mut self, name: &'static str, value: u64, attributes: Vec<KeyValue>) {
        let point = Point { value, attributes };
        self.points.entry(name).or_default().push(point);
    }

    /// The gauges of `status`; see the module table.
    pub(crate) fn of(status: &HostStatus) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for agent in &status.agents {
            snapshot.agent(&agent.nick, &agent.supervision);
        }
        for service in &status.services {
            snapshot.circuit("host", service, None);
            if service.name == "codex" {
                snapshot.codex(&service.children);
            }
        }
        snapshot
    }

    fn agent(&mut self, nick: &str, agent: &ChildStatus) {
        let by_agent = || vec![KeyValue::new("agent.nick", nick.to_owned())];
        let up = u64::from(agent.state == ChildState::Running);
        self.push("codexd.agent.up", up, by_agent());
        self.circuit("host", agent, Some(nick));
        for child in &agent.children {
            self.circuit(nick, child, Some(nick));
        }
        let child = |name: &str| agent.children.iter().find(|c| c.name == name);
        if let Some(irc) = child("irc") {
            let state = detail(irc, "state");
            let connected = match state.and_then(Value::as_str) {
                Some(state) => Some(u64::from(state == "connected")),
                None if irc.state == ChildState::Running => None, // a test child: unknown
                None => Some(0),
            };
            if let Some(connected) = connected {
                self.push("codexd.irc.connected", connected, by_agent());
            }
        }
        if let Some(runner) = child("runner").filter(|r| r.detail.is_some()) {
            self.runner(runner, by_agent);
        }
        let queued = child("webhook").and_then(|w| detail(w, "queued")?.as_u64());
        if let Some(queued) = queued {
            self.push("codexd.webhook.queue", queued, by_agent());
        }
    }

    fn runner(&mut self, runner: &ChildStatus, by_agent: impl Fn() -> Vec<KeyValue>) {
        let paused = detail(runner, "paused").and_then(Value::as_str);
        let mut reasons: Vec<&str> = PAUSE_REASONS.to_vec();
        reasons.extend(paused.filter(|reason| !PAUSE_REASONS.contains(reason)));
        for reason in reasons {
            let mut attributes = by_agent();
            attributes.push(KeyValue::new("reason", reason.to_owned()));
            self.push(
                "codexd.agent.paused",
                u64::from(paused == Some(reason)),
                attributes,
            );
        }
        if let Some(pending) = detail(runner, "pending").and_then(Value::as_u64) {
            self.push("codexd.journal.pending", pending, by_agent());
        }
        if let Some(turns) = detail(runner, "turns").and_then(Value::as_array) {
            self.push("codexd.turns.in_flight", turns.len() as u64, by_agent());
        }
    }

    /// `codexd.circuits.open` of `child` under `supervisor`; `nick` when it is an agent's.
    fn circuit(&mut self, supervisor: &str, child: &ChildStatus, nick: Option<&str>) {
        let mut attributes = vec![
            KeyValue::new("supervisor", supervisor.to_owned()),
            KeyValue::new("child", child.name.clone()),
        ];
        attributes.extend(nick.map(|nick| KeyValue::new("agent.nick", nick.to_owned())));
        let open = u64::from(child.circuit != "closed");
        self.push("codexd.circuits.open", open, attributes);
    }

    fn codex(&mut self, processes: &[ChildStatus]) {
        for state in STATES {
            let count = processes.iter().filter(|p| p.state == state).count();
            let attributes = vec![KeyValue::new("state", state_name(state))];
            self.push("codexd.codex.processes", count as u64, attributes);
        }
        for process in processes {
            self.circuit("codex", process, None);
            if let Some(threads) = detail(process, "threads").and_then(Value::as_u64) {
                let attributes = vec![KeyValue::new("codex.process", process.name.clone())];
                self.push("codexd.codex.threads", threads, attributes);
            }
        }
    }
}

/// A key of a child's own detail, if it reported one.
fn detail<'a>(child: &'a ChildStatus, key: &str) -> Option<&'a Value> {
    child.detail.as_ref()?.get(key)
}

/// The state as `codexd status` spells it (`circuit_open`, …).
fn state_name(state: ChildState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
