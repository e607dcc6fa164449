//! Culture's alert texts for the runner's events (codexd-spec.md §12, §14.1), pure.
//!
//! | what                       | event            | message                                        |
//! |----------------------------|------------------|------------------------------------------------|
//! | codex exited 0             | `agent_complete` | `Agent <nick> completed successfully.`         |
//! | codex exited with code `c` | `agent_error`    | `Agent <nick> crashed (exit <c>).`             |
//! | a signal `s` killed codex  | `agent_error`    | `Agent <nick> crashed (exit -<s>).` (Python's returncode) |
//! | `wait` failed              | `agent_error`    | `Agent <nick> crashed (exit -1).`              |
//! | codex shared by several agents died | `agent_error` | `Agents <a>, <b> crashed (exit <c>): their codex <process-n> died; it restarts.` |
//! | a turn timed out after `n` | `agent_timeout`  | `Agent <nick> turn timed out after <n>s.`      |

use std::time::Duration;

use super::AlertEvent;
use crate::codex::child::ExitStatus;

/// Python's returncode for a wait status: the exit code, or minus the signal (-1 when
/// `wait` failed).
fn returncode(status: &ExitStatus) -> i32 {
    match status {
        ExitStatus::Code(code) => *code,
        ExitStatus::Signal(signal) => -signal,
        ExitStatus::Unknown(_) => -1,
    }
}

/// The alert for codex's exit.
pub fn exited(nick: &str, status: &ExitStatus) -> (AlertEvent, String) {
    match returncode(status) {
        0 => (
            AlertEvent::AgentComplete,
            format!("Agent {nick} completed successfully."),
        ),
        code => (
            AlertEvent::AgentError,
            format!("Agent {nick} crashed (exit {code})."),
        ),
    }
}

/// The one alert for the death of codex process `process` that `agents` were on: Culture's
/// text when it served one agent; `status` is `None` when no exit was seen (the process
/// actor itself failed, which counts as `wait` failing).
pub fn process_exited(
    agents: &[String],
    process: &str,
    status: Option<&ExitStatus>,
) -> (AlertEvent, String) {
    let code = status.map_or(-1, returncode);
    match agents {
        [one] => exited(one, status.unwrap_or(&ExitStatus::Unknown(String::new()))),
        _ => (
            AlertEvent::AgentError,
            format!(
                "Agents {} crashed (exit {code}): their codex {process} died; it restarts.",
                agents.join(", ")
            ),
        ),
    }
}

/// The `agent_timeout` text for a turn interrupted after `after`.
pub fn turn_timed_out(nick: &str, after: Duration) -> String {
    format!(
        "Agent {nick} turn timed out after {}s.",
        after.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alert_names_every_agent_of_a_shared_process() {
        let agents = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let table = [
            (
                agents(&["spark-a", "spark-b"]),
                Some(ExitStatus::Signal(9)),
                "Agents spark-a, spark-b crashed (exit -9): their codex process-0 died; it restarts.",
            ),
            (
                agents(&["spark-a", "spark-b"]),
                None,
                "Agents spark-a, spark-b crashed (exit -1): their codex process-0 died; it restarts.",
            ),
            (
                agents(&["spark-a"]),
                Some(ExitStatus::Code(2)),
                "Agent spark-a crashed (exit 2).",
            ),
        ];
        for (agents, status, want) in table {
            let (event, text) = process_exited(&agents, "process-0", status.as_ref());
            assert_eq!(event, AlertEvent::AgentError);
            assert_eq!(text, want);
        }
    }

    #[test]
    fn exit_texts() {
        let table = [
            (
                ExitStatus::Code(0),
                AlertEvent::AgentComplete,
                "Agent spark-codex completed successfully.",
            ),
            (
                ExitStatus::Code(1),
                AlertEvent::AgentError,
                "Agent spark-codex crashed (exit 1).",
            ),
            (
                ExitStatus::Signal(15),
                AlertEvent::AgentError,
                "Agent spark-codex crashed (exit -15).",
            ),
            (
                ExitStatus::Signal(9),
                AlertEvent::AgentError,
                "Agent spark-codex crashed (exit -9).",
            ),
            (
                ExitStatus::Unknown("x".into()),
                AlertEvent::AgentError,
                "Agent spark-codex crashed (exit -1).",
            ),
        ];
        for (status, event, text) in table {
            assert_eq!(
                exited("spark-codex", &status),
                (event, text.to_owned()),
                "{status:?}"
            );
        }
    }

    #[test]
    fn timeout_text() {
        assert_eq!(
            turn_timed_out("spark-a", Duration::from_secs(600)),
            "Agent spark-a turn timed out after 600s."
        );
        assert_eq!(
            turn_timed_out("spark-a", Duration::from_millis(2500)),
            "Agent spark-a turn timed out after 2.5s."
        );
    }
}
