//! What the runner reports: `codexd status` detail and Culture's IPC `status` fields.

use serde_json::{Value, json};

use super::invite::Invitations;
use super::threads::INVITE_KEY;
use super::{Open, Purpose, RunnerState};
use crate::pause::PauseReason;
use crate::runner::conversation::ConversationSettings;
use crate::runner::{IntakeStats, RunnerStats, TurnStatus, prompt};
use crate::trace::TraceCtx;
use crate::webhook::{self, Alert, AlertEvent};

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
    /// The thread of the conversation that ran a turn last.
    thread_id: Option<String>,
    /// The tools new threads are started with ([`crate::tools::ToolChoice::tag`]).
    tool_set: String,
    /// How conversations map to threads, how many turns may run at once, steering.
    conversation_settings: ConversationSettings,
    /// Each conversation's thread and what it is doing.
    conversations: Vec<ConversationStatus>,
    /// Room invitations evaluated.
    invitations: Invitations,
    /// The thread this runner replaced at start because its tool set was another.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_thread: Option<String>,
    phase: &'static str,
    /// The running turns.
    turns: Vec<Value>,
    pending: usize,
    /// What the intake journaled and refused (admission control, journal errors).
    intake: IntakeStats,
    /// Whispers waiting for the model's next turn for a mention.
    whispers_waiting: usize,
    requests_in_flight: usize,
    paused: Option<PauseReason>,
    #[serde(flatten)]
    stats: RunnerStats,
    summary: String,
}

impl RunnerState {
    /// Raises `journal_error` once for the files the journal set aside when it was opened
    /// (they could not be read; the agent goes on without them).
    pub(super) fn report_set_aside(&self, mut files: Vec<String>) {
        files.extend(self.inbox.journal.lock().take_set_aside());
        if files.is_empty() {
            return;
        }
        let nick = &self.settings.nick;
        let message = format!(
            "Agent {nick}: the journal set aside {} file(s) it could not read and goes on without them: {}.",
            files.len(),
            files.join("; ")
        );
        let alert = Alert {
            event: AlertEvent::JournalError,
            nick: nick.clone(),
            message,
            trace: TraceCtx::current(),
        };
        webhook::raise(&self.peers.webhook, alert);
    }

    pub(super) fn stats(&self) -> std::sync::MutexGuard<'_, RunnerStats> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn turn_status(&self, answer: Option<&str>) -> TurnStatus {
        let stats = self.stats();
        TurnStatus {
            running: self.initialized && self.process.is_some(),
            turn_count: stats.turn_count,
            last_activation: stats.last_activation,
            description: prompt::describe(answer.unwrap_or(&stats.last_text)),
            codex_circuit_open: self.settings.codex.circuit_open(),
        }
    }

    pub(super) fn status(&self) -> RunnerStatus {
        let phase = match (&self.process, self.initialized, self.turns.is_empty()) {
            (None, _, _) => "waiting",
            (Some(_), false, _) => "handshake",
            (Some(_), true, true) => "idle",
            (Some(_), true, false) => "turn",
        };
        let turns = self
            .turns
            .iter()
            .map(|(key, active)| {
                let (reply_to, entries) = match &active.purpose {
                    Purpose::Entry { reply_to, ids, .. } => (Some(reply_to.as_str()), ids.clone()),
                    Purpose::Invite { id, channel } => (Some(channel.as_str()), vec![*id]),
                    Purpose::Query { .. } | Purpose::Handover { .. } => (None, Vec::new()),
                };
                let kind = match &active.purpose {
                    Purpose::Entry { .. } => "entry",
                    Purpose::Invite { .. } => "invitation",
                    Purpose::Query { .. } => "status_query",
                    Purpose::Handover { .. } => "handover",
                };
                json!({
                    "conversation": key,
                    "kind": kind,
                    "id": active.turn.id,
                    "reply_to": reply_to,
                    "entries": entries,
                    "steering": active.steering,
                    "elapsed_s": active.turn.started.elapsed().as_secs_f64(),
                    "tools_open": active.turn.open_tools(),
                    "interrupted": active.turn.interrupted.is_some(),
                })
            })
            .collect();
        let conversations = self.conversations();
        let pending = self.inbox.journal.lock().pending_count();
        let intake = self.inbox.stats.lock().clone();
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
        let mut summary = match &waiting_for {
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
        let refused = intake.refused_rate + intake.refused_pending + intake.refused_journal;
        if refused > 0 {
            summary.push_str(&format!(", {refused} refused"));
        }
        if let Some(error) = &intake.journal_error {
            summary.push_str(&format!(", journal failing ({error})"));
        }
        RunnerStatus {
            pid,
            codex_process,
            shared_with: match slot.agents() {
                agents if agents.len() > 1 => agents,
                _ => Vec::new(),
            },
            waiting_for,
            thread_id: self
                .book
                .last()
                .map(str::to_owned)
                .or_else(|| self.known_keys().into_iter().next())
                .and_then(|key| self.book.get(&key).map(|record| record.thread.clone())),
            tool_set: self.settings.tool_set().tag(),
            conversation_settings: self.settings.conversations,
            conversations,
            invitations: self.invitations.clone(),
            replaced_thread: self.replaced_thread.clone(),
            phase,
            turns,
            pending,
            intake,
            whispers_waiting: self
                .inbox
                .whispers
                .lock()
                .map_or(0, |whispers| whispers.len()),
            requests_in_flight: self.requests.len(),
            paused: self.peers.pause.reason(),
            stats,
            summary,
        }
    }

    /// Each known conversation (short-lived invitation threads aside).
    fn conversations(&self) -> Vec<ConversationStatus> {
        let pending = self.inbox.journal.lock().pending();
        let mut waiting: std::collections::BTreeMap<String, usize> = Default::default();
        for entry in &pending {
            if entry.entry.kind == crate::runner::journal::EntryKind::Invite {
                continue;
            }
            let key = self
                .settings
                .thread_key(&crate::runner::conversation::Conversation::of(&entry.entry));
            *waiting.entry(key).or_default() += 1;
        }
        let mut keys = self.known_keys();
        for key in waiting.keys() {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        keys.sort();
        keys.into_iter()
            .filter(|key| !key.starts_with(INVITE_KEY))
            .map(|key| {
                let state = match (self.turns.get(&key), self.threads.get(&key)) {
                    (Some(_), _) => "turn",
                    (None, Some(Open::Opening)) => "opening",
                    (None, Some(Open::Ready { .. })) => "idle",
                    (None, None) => "not loaded",
                };
                ConversationStatus {
                    thread_id: self.book.get(&key).map(|record| record.thread.clone()),
                    state,
                    pending: waiting.get(&key).copied().unwrap_or(0),
                    conversation: key,
                }
            })
            .collect()
    }
}

/// One conversation in `codexd status`.
#[derive(Debug, serde::Serialize)]
pub(super) struct ConversationStatus {
    /// `#channel`, `#channel thread:<name>`, `DM:<nick>`, or `*` (the shared thread).
    conversation: String,
    /// Its codex thread, once it has one.
    thread_id: Option<String>,
    /// `turn`, `opening`, `idle` (loaded on the current process) or `not loaded`.
    state: &'static str,
    /// Journal entries of it waiting or running.
    pending: usize,
}
