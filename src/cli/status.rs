//! `codexd status`: the tree as a table (or JSON), and what `--check` finds unhealthy.

use std::fmt::Write as _;
use std::process::ExitCode;

use codexd_actors::child::{ChildState, ChildStatus};
use codexd_actors::host::{AgentStatus, HostStatus};

use super::{exit, fail};

/// Renders the status tree as a table: one row per agent (its STATE reads `paused` while
/// its pause switch is on, PAUSED says why), one per child, then the codex processes and
/// the audit log.
pub fn status_table(status: &HostStatus) -> String {
    let mut out = format!(
        "{:<24} {:<13} {:<13} {:<9} {:>8} {:>7}  {}\n",
        "AGENT/CHILD", "STATE", "PAUSED", "CIRCUIT", "RESTARTS", "UPTIME", "LAST ERROR / DETAIL"
    );
    for agent in &status.agents {
        let paused = paused_reason(agent);
        row(&mut out, &agent.nick, &agent.supervision, paused.as_deref());
        for child in &agent.supervision.children {
            row(&mut out, &format!("  {}", child.name), child, None);
        }
    }
    if status.agents.is_empty() {
        out.push_str("(no agents)\n");
    }
    let codex = status.services.iter().find(|s| s.name == "codex");
    for process in codex.map(|c| c.children.as_slice()).unwrap_or_default() {
        row(&mut out, &format!("codex {}", process.name), process, None);
        if process.state == ChildState::CircuitOpen {
            let _ = writeln!(
                out,
                "{:<24} `codexd reset codex {}` starts it now",
                "", process.name
            );
        }
    }
    // The audit log's file and counts (when `telemetry.audit_enabled`).
    for audit in status.services.iter().filter(|s| s.name == "audit") {
        row(&mut out, "audit", audit, None);
    }
    out
}

/// One table row; `paused` is the agent's pause reason (agent rows only).
fn row(out: &mut String, name: &str, s: &ChildStatus, paused: Option<&str>) {
    let state = match (s.state, paused) {
        (ChildState::Running, Some(_)) => "paused".to_owned(),
        (state, _) => state_name(state),
    };
    // A running child's own summary (irc: "connected host:port as nick in #a,#b").
    let summary = s
        .detail
        .as_ref()
        .and_then(|d| d.get("summary"))
        .and_then(|v| v.as_str());
    let error = match (s.last_error.as_deref(), summary) {
        (Some(error), Some(summary)) => format!("{error}; now {summary}"),
        (Some(error), None) => error.to_owned(),
        (None, Some(summary)) => summary.to_owned(),
        (None, None) => String::new(),
    };
    let uptime = s.uptime_s.map_or("-".to_owned(), humanise_uptime);
    let _ = writeln!(
        out,
        "{name:<24} {state:<13} {:<13} {:<9} {:>8} {uptime:>7}  {error}",
        paused.unwrap_or("-"),
        s.circuit,
        s.restarts
    );
}

fn state_name(state: ChildState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Why the agent is paused (`manual`, `turn_failures`, `escalation`, `sleep`), from its
/// runner's status; `None` when it runs, or when its runner does not report.
fn paused_reason(agent: &AgentStatus) -> Option<String> {
    let runner = agent
        .supervision
        .children
        .iter()
        .find(|c| c.name == "runner")?;
    let paused = runner.detail.as_ref()?.get("paused")?.as_str()?;
    Some(paused.to_owned())
}

/// An uptime for a table cell: two units at most.
///
/// | seconds  | shown    |
/// |----------|----------|
/// | 0.4      | `0s`     |
/// | 59       | `59s`    |
/// | 61       | `1m01s`  |
/// | 3600     | `1h00m`  |
/// | 86399    | `23h59m` |
/// | 90061    | `1d01h`  |
pub fn humanise_uptime(seconds: f64) -> String {
    let total = seconds.max(0.0) as u64;
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{minutes}m{secs:02}s"),
        (0, _, _) => format!("{hours}h{minutes:02}m"),
        _ => format!("{days}d{hours:02}h"),
    }
}

/// What `status --check` finds unhealthy, one reason per finding.
///
/// | the tree has                                      | reason                                  |
/// |---------------------------------------------------|-----------------------------------------|
/// | an agent whose circuit is open                    | `circuit open on spark-a`               |
/// | an agent in another state than running            | `agent spark-a is down (restarting)`    |
/// | a running agent's child with its circuit open     | `circuit open on spark-a/runner`        |
/// | a running agent paused for `turn_failures` or `escalation` | `agent spark-a is paused (turn_failures)` |
/// | a codex process with its circuit open             | `circuit open on codex process-1`       |
/// | another service with its circuit open             | `circuit open on audit`                 |
/// | an agent paused `manual` or for `sleep`           | nothing: the operator or the schedule wants it |
pub fn problems(status: &HostStatus) -> Vec<String> {
    let mut found = Vec::new();
    for agent in &status.agents {
        let nick = &agent.nick;
        let supervision = &agent.supervision;
        if is_open(supervision) {
            found.push(format!("circuit open on {nick}"));
            continue;
        }
        if supervision.state != ChildState::Running {
            let state = state_name(supervision.state);
            found.push(format!("agent {nick} is down ({state})"));
            continue;
        }
        for child in supervision.children.iter().filter(|c| is_open(c)) {
            found.push(format!("circuit open on {nick}/{}", child.name));
        }
        if let Some(reason @ ("turn_failures" | "escalation")) = paused_reason(agent).as_deref() {
            found.push(format!("agent {nick} is paused ({reason})"));
        }
    }
    for service in &status.services {
        if service.name == "codex" {
            for process in service.children.iter().filter(|c| is_open(c)) {
                found.push(format!("circuit open on codex {}", process.name));
            }
        } else if is_open(service) {
            found.push(format!("circuit open on {}", service.name));
        }
    }
    found
}

fn is_open(child: &ChildStatus) -> bool {
    child.state == ChildState::CircuitOpen || child.circuit == "open"
}

/// Prints `status` data as JSON or as a table; with `check`, exits 4 with one `hint:` line
/// per [`problems`] finding.
pub fn print_status(data: Option<serde_json::Value>, json: bool, check: bool) -> ExitCode {
    let data = data.unwrap_or_default();
    let parsed = serde_json::from_value::<HostStatus>(data.clone());
    match (&parsed, json) {
        (Ok(status), false) => print!("{}", status_table(status)),
        _ => println!("{data}"),
    }
    if !check {
        return ExitCode::from(exit::OK);
    }
    let status = match parsed {
        Ok(status) => status,
        Err(error) => {
            return fail(
                exit::UNREACHABLE,
                &[format!("the daemon's status could not be read: {error}")],
            );
        }
    };
    let found = problems(&status);
    if found.is_empty() {
        return ExitCode::from(exit::OK);
    }
    fail(exit::UNHEALTHY, &found)
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
