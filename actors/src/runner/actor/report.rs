//! What the runner reports: `codexd status` detail and Culture's IPC `status` fields.

use serde_json::{Value, json};

use super::{Purpose, RunnerState};
use crate::pause::PauseReason;
use crate::runner::{RunnerStats, TurnStatus, prompt};

/// `codexd status` detail of the runner.
#[derive(Debug, serde::Serialize)]
pub(super) struct RunnerStatus {
    pid: Option<u32>,
    /// The codex process it is on (`process-<n>`, a child of the `codex` service).
    codex_process: String,
    /// The agents on its codex process, itself included (absent when it is alone there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shared_with: Vec<String>,
    /// While its process is down: which one it waits for, and why it went.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_for: Option<String>,
    thread_id: Option<String>,
    phase: &'static str,
    turn: Option<Value>,
    pending: usize,
    requests_in_flight: usize,
    paused: Option<PauseReason>,
    #[serde(flatten)]
    stats: RunnerStats,
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
            codex_circuit_open: self.settings.codex.circuit_open(),
        }
    }

    pub(super) fn status(&self) -> RunnerStatus {
        let phase = match (&self.process, &self.thread, &self.active) {
            (None, _, _) => "waiting",
            (Some(_), None, _) => "handshake",
            (Some(_), Some(_), None) => "idle",
            (Some(_), Some(_), Some(_)) => "turn",
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
        let slot = &self.settings.codex;
        let codex_process = slot.name().to_owned();
        let waiting_for = match &self.process {
            Some(_) => None,
            None => Some(format!(
                "codex {codex_process} ({})",
                slot.down_reason()
                    .or_else(|| self.gone.clone())
                    .unwrap_or_else(|| "starting".to_owned())
            )),
        };
        let summary = match &waiting_for {
            Some(waiting) => format!(
                "waiting for {waiting}, {pending} pending, {} turn(s) answered",
                stats.turn_count
            ),
            None => format!(
                "codex pid {} ({codex_process}), {phase}, {pending} pending, {} turn(s) answered",
                pid.map_or("-".to_owned(), |p| p.to_string()),
                stats.turn_count
            ),
        };
        RunnerStatus {
            pid,
            codex_process,
            shared_with: match slot.agents() {
                agents if agents.len() > 1 => agents,
                _ => Vec::new(),
            },
            waiting_for,
            thread_id: self.thread.clone(),
            phase,
            turn,
            pending,
            requests_in_flight: self.requests.len(),
            paused: self.peers.pause.reason(),
            stats,
            summary,
        }
    }
}
