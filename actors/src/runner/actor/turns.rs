//! The runner's turns: starting and finishing one (on its thread key), relaying its
//! messages, a room invitation's verdict, the turn-failure breaker, spans and metrics.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use serde_json::Value;
use tokio::time::Instant;

use super::{Active, Job, METER, Open, Purpose, RunnerState, Waiter};
use crate::genai;
use crate::irc::{IrcMessage, Presence};
use crate::pause::PauseReason;
use crate::runner::conversation::ThreadMode;
use crate::runner::inbox::RelayJob;
use crate::runner::turn::{Outcome, Step, Turn};
use crate::runner::{MAX_TURN_FAILURES, RunnerEvent, TurnScope, TurnStatus, prompt, session};
use crate::trace::TraceCtx;
use crate::webhook::{self, Alert, AlertEvent, WebhookMessage, texts};

impl RunnerState {
    /// A notification of one of the running turns' threads (others are ignored).
    pub(super) fn on_notification(&mut self, method: &str, params: &Value) {
        let thread = params
            .get("threadId")
            .and_then(Value::as_str)
            .or_else(|| params.pointer("/thread/id").and_then(Value::as_str));
        let key = match thread {
            Some(thread) => self
                .turns
                .iter()
                .find(|(_, active)| active.thread == thread)
                .map(|(key, _)| key.clone()),
            // Without a thread it can only be the one turn's, if one runs alone.
            None if self.turns.len() == 1 => self.turns.keys().next().cloned(),
            None => None,
        };
        let Some(key) = key else {
            if method == "turn/completed" {
                self.compacted(thread);
            }
            return;
        };
        let Some(active) = self.turns.get_mut(&key) else {
            return;
        };
        match active.turn.on_notification(method, params) {
            Step::None => {}
            Step::Message(text) => self.on_message(&key, text),
            Step::Ended(outcome) => self.finish(&key, outcome),
        }
    }

    /// A turn of no running turn's thread completed: a compaction, if its thread compacts.
    fn compacted(&mut self, thread: Option<&str>) {
        let key = thread.and_then(|thread| {
            self.threads
                .iter()
                .find(|(_, open)| matches!(open, Open::Ready { thread: t, .. } if t == thread))
                .map(|(key, _)| key.clone())
        });
        if let Some(key) = key.filter(|key| self.compacting.remove(key).is_some()) {
            tracing::info!(agent.nick = %self.settings.nick, conversation = %key, "compaction done");
            self.next();
        }
    }

    pub(super) fn on_message(&mut self, key: &str, text: String) {
        let Some(active) = self.turns.get_mut(key) else {
            return;
        };
        match &mut active.purpose {
            Purpose::Entry {
                reply_to, fresh, ..
            } => {
                *fresh = 0;
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
            Purpose::Handover { .. } | Purpose::Invite { .. } => return,
        }
        // `status` shows it to any caller: a private conversation's never.
        if !self.settings.is_private(key) {
            self.stats().last_text = text;
        }
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
        for active in self.turns.values_mut() {
            if let Purpose::Query { reply, deadline } = &mut active.purpose {
                if *deadline <= now {
                    if let Some(reply) = reply.take() {
                        let _ = reply.send(busy());
                    }
                }
            }
        }
    }

    /// The summary turn of `key`'s replaced thread `from` ended: keep its summary for the
    /// new thread's first turn (not when it failed) and start the new thread.
    fn hand_over(&mut self, key: &str, from: String, summary: &str, outcome: &Outcome) {
        let nick = self.settings.nick.clone();
        if *outcome == Outcome::Completed && !summary.trim().is_empty() {
            if let Err(error) = self.book.set_handover(key, summary) {
                tracing::warn!(agent.nick = %nick, error = %error, "the replaced thread's summary was not kept");
            }
        } else {
            tracing::warn!(agent.nick = %nick, codex.thread_id = %from, outcome = outcome.name(), "the replaced thread wrote no summary; the new thread starts without one");
        }
        tracing::info!(agent.nick = %nick, codex.thread_id = %from, "starting a new thread with the current tools");
        self.replaced_thread = Some(from);
        if let Err(error) = self.start_thread(key) {
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
    pub(super) fn with_whispers(&self, prompt: &str) -> String {
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

    /// Starts a turn of `text` on `key`'s loaded thread.
    pub(super) fn start_turn(&mut self, key: &str, text: &str, purpose: Purpose, parent: TraceCtx) {
        let Some(thread) = self.ready_thread(key).map(str::to_owned) else {
            return;
        };
        let conversation = match &purpose {
            Purpose::Entry { conversation, .. } => conversation.as_str().to_owned(),
            _ => key.to_owned(),
        };
        let span = parent.follow(tracing::info_span!(
            "harness.llm.call",
            harness.backend = "codex",
            harness.model = %self.settings.thread.model,
            harness.nick = %self.settings.nick,
            codex.thread_id = %thread,
            codex.turn_id = tracing::field::Empty,
            conversation = %conversation,
            outcome = tracing::field::Empty,
            tokens.input = tracing::field::Empty,
            tokens.output = tracing::field::Empty,
            { genai::OPERATION_NAME } = genai::INVOKE_AGENT,
            { genai::PROVIDER_NAME } = genai::PROVIDER,
            { genai::SYSTEM } = genai::PROVIDER,
            { genai::REQUEST_MODEL } = %self.settings.thread.model,
            { genai::AGENT_NAME } = %self.settings.nick,
            { genai::CONVERSATION_ID } = %thread,
            { genai::USAGE_INPUT_TOKENS } = tracing::field::Empty,
            { genai::USAGE_OUTPUT_TOKENS } = tracing::field::Empty,
        ));
        let trace = {
            let _entered = span.enter();
            TraceCtx::current()
        };
        if let Some(process) = &self.process {
            self.peers.turn.set(
                key,
                TurnScope {
                    pid: process.pid(),
                    trace: trace.clone(),
                    conversation: (self.settings.conversations.threads
                        == ThreadMode::PerConversation)
                        .then(|| key.to_owned()),
                },
            );
        }
        if self.turns.is_empty() {
            self.presence(Presence::Thinking);
            let probe = Instant::now() + self.settings.request_timeout;
            self.probe = Some(probe);
            self.arm(probe);
        }
        let deadline = self.settings.turn_timeout.map(|t| Instant::now() + t);
        if let Some(deadline) = deadline {
            self.arm(deadline);
        }
        self.turns.insert(
            key.to_owned(),
            Active {
                thread: thread.clone(),
                turn: Turn::new(span),
                purpose,
                deadline,
                trace,
                steering: None,
                steer_refused: false,
                seq: self.turn_seq + 1,
                suspect: false,
            },
        );
        self.turn_seq += 1;
        self.used.insert(key.to_owned(), self.turn_seq);
        let params = session::turn_start(&thread, text);
        let waiter = Waiter::TurnStart {
            key: key.to_owned(),
            seq: self.turn_seq,
        };
        if let Err(error) = self.request("turn/start", Some(params), waiter) {
            self.finish(key, Outcome::Failed(error.to_string()));
        }
    }

    /// Ends `key`'s running turn: spans, metrics, the breaker, the reply target's last word
    /// and the journal entries; then starts what is next.
    pub(super) fn finish(&mut self, key: &str, outcome: Outcome) {
        let Some(mut active) = self.turns.remove(key) else {
            return;
        };
        active.turn.close_open_items();
        end_span(&active.turn, outcome.name());
        self.record_metrics(&active.turn, &outcome);
        self.audit_turn_end(key, &active, &outcome);
        self.peers.turn.clear(key);
        if self.turns.is_empty() {
            self.presence(Presence::Idle);
            self.probe = None;
        }
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
                ids,
                reply_to,
                asked,
                ..
            } => {
                // Nobody asked for a poll turn: a failed one is not apologised for.
                if outcome != Outcome::Completed && asked {
                    self.inbox.outbox.push(RelayJob::Say {
                        target: reply_to,
                        lines: vec![prompt::SORRY.to_owned()],
                        trace: active.trace.clone(),
                    });
                }
                for id in ids {
                    self.inbox.outbox.push(RelayJob::Complete { entry: id });
                }
            }
            Purpose::Invite { id, channel } => {
                let answer = active.turn.messages.join("\n");
                self.invited(id, &channel, &answer, &outcome, &active.trace);
                self.close_thread(key);
            }
            Purpose::Query { reply, .. } => {
                if let Some(reply) = reply {
                    let text = active.turn.messages.first().map(String::as_str);
                    let _ = reply.send(self.turn_status(Some(text.unwrap_or(""))));
                }
            }
            Purpose::Handover { from } => {
                let summary = active.turn.messages.join("\n");
                self.hand_over(key, from, &summary, &outcome);
                return self.next();
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
            record_token_usage(&meter, &self.settings.thread.model, input, output);
        }
    }
}

/// The GenAI convention's `gen_ai.client.token.usage`: one input and one output sample per
/// turn that reported usage.
fn record_token_usage(meter: &opentelemetry::metrics::Meter, model: &str, input: u64, output: u64) {
    let histogram = meter
        .u64_histogram(genai::CLIENT_TOKEN_USAGE)
        .with_unit("{token}")
        .with_description("Number of input and output tokens used")
        .with_boundaries(genai::TOKEN_BUCKETS.to_vec())
        .build();
    for (kind, count) in [("input", input), ("output", output)] {
        let attributes = [
            KeyValue::new(genai::OPERATION_NAME, genai::INVOKE_AGENT),
            KeyValue::new(genai::PROVIDER_NAME, genai::PROVIDER),
            KeyValue::new(genai::SYSTEM, genai::PROVIDER),
            KeyValue::new(genai::REQUEST_MODEL, model.to_owned()),
            KeyValue::new(genai::TOKEN_TYPE, kind),
        ];
        histogram.record(count, &attributes);
    }
}

/// Records the outcome and token counts on the turn's span (and so ends it when dropped).
pub(super) fn end_span(turn: &Turn, outcome: &str) {
    turn.span.record("outcome", outcome);
    if let Some((input, output)) = turn.tokens {
        turn.span.record("tokens.input", input);
        turn.span.record("tokens.output", output);
        // As i64: tracing-opentelemetry exports a u64 field as text, the convention says int.
        let int = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
        turn.span.record(genai::USAGE_INPUT_TOKENS, int(input));
        turn.span.record(genai::USAGE_OUTPUT_TOKENS, int(output));
    }
}

pub(super) fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
