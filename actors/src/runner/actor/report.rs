//! What the runner reports: `codexd status` detail and Culture's IPC `status` fields.

use serde_json::{Value, json};

use super::{Purpose, RunnerState};
use crate::pause::PauseReason;
use crate::runner::{RunnerStats, TurnStatus, prompt};

/// `codexd status` detail of the runner.
#[derive(Debug, serde::Serialize)]
pub(super) struct RunnerStatus {
    pid: Option<u32>,
    /// The shared codex process it is on (`process-<n>`, as in the `codex` service).
    #[serde(skip_serializing_if = "Option::is_none")]
    codex_process: Option<String>,
    /// The agents on the same shared codex process (absent for a process of its own).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shared_with: Vec<String>,
    thread_id: Option<String>,
    phase: &'static str,
    turn: Option<Value>,
    pending: usize,
    requests_in_flight: usize,
    paused: Option<PauseReason>,
    #[serde(flatten)]
    stats: RunnerStats,
    stderr_tail: String,
    summary: String,
}

impl RunnerState {
    pub(super) fn stats(&self) -> std::sync::MutexGuard<'_, RunnerStats> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn turn_status(&self, answer: Option<&str>) -> TurnStatus {
        let stats = self.stats();
        TurnStatus {
            running: self.thread.is_some() && self.process.is_some(),
            turn_count: stats.turn_count,
            last_activation: stats.last_activation,
            description: prompt::describe(answer.unwrap_or(&stats.last_text)),
        }
    }

    pub(super) fn status(&self) -> RunnerStatus {
        let phase = match (&self.thread, &self.active) {
            (None, _) => "handshake",
            (Some(_), None) => "idle",
            (Some(_), Some(_)) => "turn",
        };
        let turn = self.active.as_ref().map(|active| {
            let reply_to = match &active.purpose {
                Purpose::Entry { reply_to, .. } => Some(reply_to.as_str()),
                Purpose::Query { .. } => None,
            };
            json!({
                "id": active.turn.id,
                "reply_to": reply_to,
                "elapsed_s": active.turn.started.elapsed().as_secs_f64(),
                "tools_open": active.turn.open_tools(),
                "interrupted": active.turn.interrupted.is_some(),
            })
        });
        let pending = self.inbox.journal.lock().pending().len();
        let stats = self.stats().clone();
        let pid = self.process.as_ref().map(|p| p.pid());
        let codex_process = self.process.as_ref().and_then(|p| p.slot_name());
        let summary = format!(
            "codex pid {}{}, {phase}, {pending} pending, {} turn(s) answered",
            pid.map_or("-".to_owned(), |p| p.to_string()),
            codex_process
                .as_ref()
                .map_or(String::new(), |name| format!(" (shared {name})")),
            stats.turn_count
        );
        RunnerStatus {
            pid,
            codex_process,
            shared_with: self
                .process
                .as_ref()
                .map(|p| p.shared_with())
                .unwrap_or_default(),
            thread_id: self.thread.clone(),
            phase,
            turn,
            pending,
            requests_in_flight: self.requests.len(),
            paused: self.peers.pause.reason(),
            stats,
            stderr_tail: self
                .process
                .as_ref()
                .map(|p| last_lines(&p.stderr_tail(), 5))
                .unwrap_or_default(),
            summary,
        }
    }
}

/// The last `count` non-blank lines of codex's stderr, ` | `-joined, leaving out a Rust
/// backtrace (`Stack backtrace:` and the frames after it, printed when `RUST_BACKTRACE` is
/// set), so that the error codex died with is what status shows.
pub(super) fn last_lines(text: &str, count: usize) -> String {
    let text = match text.rfind("Stack backtrace:") {
        Some(at) if !text[..at].trim_end().is_empty() => &text[..at],
        _ => text,
    };
    let lines: Vec<String> = text
        .lines()
        .map(plain)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(count)..].join(" | ")
}

/// `line` without terminal escape sequences (codex colours its log lines: `ESC[2m…ESC[0m`).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        // CSI: ESC [ parameters… final byte in @..~; any other escape: drop ESC and the next.
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn test_last_lines_keep_the_error_and_drop_a_backtrace() {
        let table = [
            ("a\nb\n\nc\n", 2, "b | c"),
            ("one\n", 5, "one"),
            ("", 5, ""),
            (
                "warn\nError: config.toml:1:1: unknown configuration field `x`\n\nStack backtrace:\n   0: <unknown>\n   1: <unknown>\n",
                5,
                "warn | Error: config.toml:1:1: unknown configuration field `x`",
            ),
            (
                "Stack backtrace:\n   0: main\n",
                5,
                "Stack backtrace: |    0: main",
            ),
        ];
        for (stderr, count, want) in table {
            assert_eq!(last_lines(stderr, count), want, "{stderr:?}");
        }
    }
}
