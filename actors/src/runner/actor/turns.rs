//! The turn loop of the runner: what runs next, starting and finishing a turn, relaying
//! its messages, the turn-failure breaker, spans and metrics.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use serde_json::Value;
use tokio::time::Instant;

use super::{Active, Job, MAX_ATTEMPTS, METER, Purpose, RunnerState, Waiter};
use crate::irc::{IrcMessage, Presence};
use crate::pause::PauseReason;
use crate::runner::inbox::RelayJob;
use crate::runner::journal::EntryKind;
use crate::runner::turn::{Outcome, Step, Turn};
use crate::runner::{MAX_TURN_FAILURES, RunnerEvent, TurnScope, TurnStatus, prompt, session};
use crate::trace::TraceCtx;
use crate::webhook::{self, Alert, AlertEvent, WebhookMessage, texts};

impl RunnerState {
    pub(super) fn on_notification(&mut self, method: &str, params: &Value) {
        let thread = params.get("threadId").and_then(Value::as_str);
        if thread.is_some() && thread != self.thread.as_deref() {
            return;
        }
        let Some(active) = &mut self.active else {
            return;
        };
        match active.turn.on_notification(method, params) {
            Step::None => {}
            Step::Message(text) => self.on_message(text),
            Step::Ended(outcome) => self.finish(outcome),
        }
    }

    pub(super) fn on_message(&mut self, text: String) {
        let Some(active) = &mut self.active else {
            return;
        };
        match &mut active.purpose {
            Purpose::Entry { reply_to, .. } => {
                let lines = prompt::relay_lines(&text);
                if !lines.is_empty() {
                    self.inbox.outbox.push(RelayJob::Say {
                        target: reply_to.clone(),
                        lines,
                        trace: active.trace.clone(),
                    });
                }
                let event = RunnerEvent::AgentMessage {
                    text: text.clone(),
                    trace: active.trace.clone(),
                };
                // No listener (no overseer) is no error.
                let _ = self.peers.events.send(event);
            }
            Purpose::Query { reply, .. } => {
                if let Some(reply) = reply.take() {
                    let _ = reply.send(self.turn_status(Some(&text)));
                }
            }
            Purpose::Handover { .. } => return,
        }
        self.stats().last_text = text;
    }

    /// Answers status queries (waiting or running) whose time is up.
    pub(super) fn expire_queries(&mut self, now: Instant) {
        let status = self.turn_status(None);
        let busy = || TurnStatus {
            description: "busy (no response)".to_owned(),
            ..status.clone()
        };
        let (expired, kept) = std::mem::take(&mut self.jobs)
            .into_iter()
            .partition(|job| matches!(job, Job::Query { deadline, .. } if *deadline <= now));
        self.jobs = kept;
        for job in Vec::from(expired) {
            if let Job::Query { reply, .. } = job {
                let _ = reply.send(busy());
            }
        }
        if let Some(Active {
            purpose: Purpose::Query { reply, deadline },
            ..
        }) = &mut self.active
        {
            if *deadline <= now {
                if let Some(reply) = reply.take() {
                    let _ = reply.send(busy());
                }
            }
        }
    }

    /// Starts the next turn or job if the session is ready and idle.
    pub(super) fn next(&mut self) {
        if let (Some(from), Some(_), None) = (&self.handover_due, &self.thread, &self.active) {
            let purpose = Purpose::Handover { from: from.clone() };
            self.handover_due = None;
            self.start_turn(prompt::HANDOVER, purpose, TraceCtx::default());
            return;
        }
        while self.thread.is_some() && self.active.is_none() {
            match self.jobs.pop_front() {
                Some(Job::Compact) => {
                    let Some(thread) = self.thread.clone() else {
                        return;
                    };
                    let params = session::compact(&thread);
                    if let Err(error) =
                        self.request("thread/compact/start", Some(params), Waiter::Compact)
                    {
                        tracing::warn!(agent.nick = %self.settings.nick, error = %error, "compact not sent");
                    }
                }
                Some(Job::Clear) => {
                    tracing::info!(agent.nick = %self.settings.nick, "clear: starting a new codex thread");
                    if let Err(error) = self.start_thread() {
                        tracing::warn!(agent.nick = %self.settings.nick, error = %error, "clear: thread/start not sent");
                    }
                    return;
                }
                Some(Job::Query { reply, deadline }) => {
                    let purpose = Purpose::Query {
                        reply: Some(reply),
                        deadline,
                    };
                    self.start_turn(prompt::STATUS_QUERY, purpose, TraceCtx::default());
                    return;
                }
                None => return self.next_entry(),
            }
        }
    }

    pub(super) fn next_entry(&mut self) {
        if self.peers.pause.is_paused() {
            return;
        }
        let dispatched = self.dispatched;
        let next = self
            .inbox
            .journal
            .lock()
            .pending()
            .into_iter()
            .find(|entry| entry.id > dispatched);
        let Some(entry) = next else {
            return;
        };
        self.dispatched = entry.id;
        if entry.attempts >= MAX_ATTEMPTS {
            // Each earlier attempt ended with codex dying mid-turn: a poison prompt must
            // not keep the agent in a crash loop.
            tracing::error!(agent.nick = %self.settings.nick, entry = entry.id, attempts = entry.attempts, "giving up on a mention: codex died during every attempt at it");
            if entry.entry.kind != EntryKind::Poll {
                self.inbox.outbox.push(RelayJob::Say {
                    target: entry.entry.reply_to.clone(),
                    lines: vec![prompt::SORRY.to_owned()],
                    trace: entry.entry.trace.clone(),
                });
            }
            self.inbox
                .outbox
                .push(RelayJob::Complete { entry: entry.id });
            let failures = {
                let mut stats = self.stats();
                stats.turns_failed += 1;
                stats.consecutive_failures += 1;
                stats.consecutive_failures
            };
            self.breaker(failures, &entry.entry.trace);
            return self.next_entry();
        }
        if entry.attempts > 0 {
            tracing::info!(agent.nick = %self.settings.nick, entry = entry.id, crashed_attempts = entry.attempts, "replaying an accepted mention");
        }
        if entry.entry.kind != EntryKind::Poll {
            self.stats().last_activation = Some(epoch_now());
        }
        let purpose = Purpose::Entry {
            id: entry.id,
            reply_to: entry.entry.reply_to.clone(),
            asked: entry.entry.kind != EntryKind::Poll,
        };
        let prompt = self.with_whispers(&entry.entry.prompt);
        let prompt = match self.inbox.journal.lock().take_handover() {
            Some(summary) => format!("{}\n{summary}\n\n{prompt}", prompt::HANDOVER_SEED),
            None => prompt,
        };
        self.start_turn(&prompt, purpose, entry.entry.trace.clone());
    }

    /// The summary turn of replaced thread `from` ended: keep its summary for the new
    /// thread's first turn (not when it failed) and start the new thread.
    fn hand_over(&mut self, from: String, summary: &str, outcome: &Outcome) {
        let nick = self.settings.nick.clone();
        if *outcome == Outcome::Completed && !summary.trim().is_empty() {
            if let Err(error) = self.inbox.journal.lock().set_handover(summary) {
                tracing::warn!(agent.nick = %nick, error = %error, "the replaced thread's summary was not kept");
            }
        } else {
            tracing::warn!(agent.nick = %nick, codex.thread_id = %from, outcome = outcome.name(), "the replaced thread wrote no summary; the new thread starts without one");
        }
        tracing::info!(agent.nick = %nick, codex.thread_id = %from, "starting a new thread with the current tools");
        self.replaced_thread = Some(from);
        if let Err(error) = self.start_thread() {
            tracing::warn!(agent.nick = %nick, error = %error, "thread/start not sent");
        }
    }

    /// Keeps a whisper for the model's next turn for a mention or DM.
    pub(super) fn on_whisper(&mut self, kind: &str, message: &str) {
        let line = format!(
            "[whisper:{kind}] {}",
            super::super::prompt::without_controls(message)
        );
        self.inbox
            .whispers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
        tracing::info!(agent.nick = %self.settings.nick, whisper.kind = kind, "whisper kept for the model's next turn");
    }

    /// `prompt`, preceded by the whispers that arrived since the last turn (taken).
    fn with_whispers(&self, prompt: &str) -> String {
        let whispers = std::mem::take(
            &mut *self
                .inbox
                .whispers
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if whispers.is_empty() {
            return prompt.to_owned();
        }
        format!(
            "[Whispered to you, not seen on IRC]\n{}\n\n{prompt}",
            whispers.join("\n")
        )
    }

    pub(super) fn start_turn(&mut self, text: &str, purpose: Purpose, parent: TraceCtx) {
        let Some(thread) = self.thread.clone() else {
            return;
        };
        let span = parent.follow(tracing::info_span!(
            "harness.llm.call",
            harness.backend = "codex",
            harness.model = %self.settings.thread.model,
            harness.nick = %self.settings.nick,
            codex.thread_id = %thread,
            codex.turn_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
            tokens.input = tracing::field::Empty,
            tokens.output = tracing::field::Empty,
        ));
        let trace = {
            let _entered = span.enter();
            TraceCtx::current()
        };
        if let Some(process) = &self.process {
            self.peers.turn.set(TurnScope {
                pid: process.pid(),
                trace: trace.clone(),
            });
        }
        self.presence(Presence::Thinking);
        let deadline = self.settings.turn_timeout.map(|t| Instant::now() + t);
        if let Some(deadline) = deadline {
            self.arm(deadline);
        }
        let probe = Instant::now() + self.settings.request_timeout;
        self.arm(probe);
        self.active = Some(Active {
            turn: Turn::new(span),
            purpose,
            deadline,
            trace,
            probe: Some(probe),
        });
        let params = session::turn_start(&thread, text);
        if let Err(error) = self.request("turn/start", Some(params), Waiter::TurnStart) {
            self.finish(Outcome::Failed(error.to_string()));
        }
    }

    /// Ends the running turn: spans, metrics, the breaker, the reply target's last word and
    /// the journal entry; then starts the next one.
    pub(super) fn finish(&mut self, outcome: Outcome) {
        let Some(mut active) = self.active.take() else {
            return;
        };
        active.turn.close_open_items();
        end_span(&active.turn, outcome.name());
        self.record_metrics(&active.turn, &outcome);
        self.peers.turn.clear();
        self.presence(Presence::Idle);
        if let Outcome::Failed(reason) = &outcome {
            tracing::warn!(agent.nick = %self.settings.nick, reason = %reason, "turn failed");
        }
        let failures = {
            let mut stats = self.stats();
            match &outcome {
                Outcome::Completed => {
                    stats.turns_completed += 1;
                    stats.consecutive_failures = 0;
                }
                Outcome::Failed(_) => stats.turns_failed += 1,
                Outcome::Timeout => stats.turns_timed_out += 1,
            }
            if !active.turn.messages.is_empty() {
                stats.turn_count += 1;
            }
            if outcome != Outcome::Completed {
                stats.consecutive_failures += 1;
            }
            if let Some((input, output)) = active.turn.tokens {
                stats.tokens_input += input;
                stats.tokens_output += output;
            }
            stats.consecutive_failures
        };
        match active.purpose {
            Purpose::Entry {
                id,
                reply_to,
                asked,
            } => {
                // Nobody asked for a poll turn: a failed one is not apologised for.
                if outcome != Outcome::Completed && asked {
                    self.inbox.outbox.push(RelayJob::Say {
                        target: reply_to,
                        lines: vec![prompt::SORRY.to_owned()],
                        trace: active.trace.clone(),
                    });
                }
                self.inbox.outbox.push(RelayJob::Complete { entry: id });
            }
            Purpose::Query { reply, .. } => {
                if let Some(reply) = reply {
                    let text = active.turn.messages.first().map(String::as_str);
                    let _ = reply.send(self.turn_status(Some(text.unwrap_or(""))));
                }
            }
            Purpose::Handover { from } => {
                let summary = active.turn.messages.join("\n");
                return self.hand_over(from, &summary, &outcome);
            }
        }
        if outcome == Outcome::Timeout {
            self.timed_out(&active.trace);
        }
        if outcome != Outcome::Completed {
            self.breaker(failures, &active.trace);
        }
        self.next();
    }

    /// `agent_timeout` (Culture declares it and never raises it; codexd does).
    fn timed_out(&self, trace: &TraceCtx) {
        let after = self.settings.turn_timeout.unwrap_or_default();
        let alert = Alert {
            event: AlertEvent::AgentTimeout,
            nick: self.settings.nick.clone(),
            message: texts::turn_timed_out(&self.settings.nick, after),
            trace: trace.clone(),
        };
        webhook::raise(&self.peers.webhook, alert);
    }

    /// Culture's turn-failure breaker (§14.3): pauses the agent and raises
    /// `agent_spiraling` once, when the count reaches the limit.
    pub(super) fn breaker(&self, failures: u32, trace: &TraceCtx) {
        if failures != MAX_TURN_FAILURES || self.peers.pause.is_paused() {
            return;
        }
        let nick = &self.settings.nick;
        tracing::error!(agent.nick = %nick, failures, "Agent {nick} paused after {failures} consecutive turn failures");
        self.peers.pause.pause(PauseReason::TurnFailures);
        let alert = Alert {
            event: AlertEvent::AgentSpiraling,
            nick: nick.clone(),
            message: format!("Agent {nick} paused after {failures} consecutive turn failures."),
            trace: trace.clone(),
        };
        if let Some(webhook) = self.peers.webhook.get() {
            let _ = webhook.cast(WebhookMessage::Alert(alert));
        }
    }

    pub(super) fn presence(&self, state: Presence) {
        if let Some(irc) = self.peers.irc.get() {
            let _ = irc.cast(IrcMessage::SetPresence { state, task: None });
        }
    }

    pub(super) fn record_metrics(&self, turn: &Turn, outcome: &Outcome) {
        let meter = opentelemetry::global::meter(METER);
        let model = self.settings.thread.model.clone();
        let by_outcome = [
            KeyValue::new("backend", "codex"),
            KeyValue::new("model", model.clone()),
            KeyValue::new("outcome", outcome.name()),
        ];
        meter
            .u64_counter("culture.harness.llm.calls")
            .with_description("Per-LLM-call count by backend/model/outcome")
            .build()
            .add(1, &by_outcome);
        meter
            .f64_histogram("culture.harness.llm.call.duration")
            .with_unit("ms")
            .with_description("Per-LLM-call wall-clock duration in milliseconds")
            .build()
            .record(turn.started.elapsed().as_secs_f64() * 1000.0, &by_outcome);
        if let Some((input, output)) = turn.tokens {
            let by_nick = [
                KeyValue::new("backend", "codex"),
                KeyValue::new("model", model),
                KeyValue::new("harness.nick", self.settings.nick.clone()),
            ];
            meter
                .u64_counter("culture.harness.llm.tokens.input")
                .with_description("Per-LLM-call input token count by backend/model/nick")
                .build()
                .add(input, &by_nick);
            meter
                .u64_counter("culture.harness.llm.tokens.output")
                .with_description("Per-LLM-call output token count by backend/model/nick")
                .build()
                .add(output, &by_nick);
        }
    }
}

/// Records the outcome and token counts on the turn's span (and so ends it when dropped).
pub(super) fn end_span(turn: &Turn, outcome: &str) {
    turn.span.record("outcome", outcome);
    if let Some((input, output)) = turn.tokens {
        turn.span.record("tokens.input", input);
        turn.span.record("tokens.output", output);
    }
}

pub(super) fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
