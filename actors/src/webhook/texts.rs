//! Culture's alert texts for the runner's events (codexd-spec.md §12, §14.1), pure.
//!
//! | what                       | event            | message                                        |
//! |----------------------------|------------------|------------------------------------------------|
//! | codex exited 0             | `agent_complete` | `Agent <nick> completed successfully.`         |
//! | codex exited with code `c` | `agent_error`    | `Agent <nick> crashed (exit <c>).`             |
//! | a signal `s` killed codex  | `agent_error`    | `Agent <nick> crashed (exit -<s>).` (Python's returncode) |
//! | `wait` failed              | `agent_error`    | `Agent <nick> crashed (exit -1).`              |
//! | a turn timed out after `n` | `agent_timeout`  | `Agent <nick> turn timed out after <n>s.`      |

use std::time::Duration;

use super::AlertEvent;
use crate::runner::process::ExitStatus;

/// The alert for codex's exit.
pub fn exited(nick: &str, status: &ExitStatus) -> (AlertEvent, String) {
    let code = match status {
        ExitStatus::Code(0) => {
            return (
                AlertEvent::AgentComplete,
                format!("Agent {nick} completed successfully."),
            );
        }
        ExitStatus::Code(code) => *code,
        ExitStatus::Signal(signal) => -signal,
        ExitStatus::Unknown(_) => -1,
    };
    (
        AlertEvent::AgentError,
        format!("Agent {nick} crashed (exit {code})."),
    )
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
