//! The runner's side of the agent's tools ([`crate::tools`]): codex asks with
//! `item/tool/call`; the call goes through the agent's [`ToolDoor`] to its `socket` actor
//! (the IPC verbs' one implementation) in a task bounded by `codex.tool_timeout`, inside a `codexd.tool.run`
//! span under the call's `codexd.tool.call` item span; the answer goes back to codex by the
//! request's id
//! (several calls of one model response are answered each by its own id).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::Instrument;

use super::{Open, RunnerState};
use crate::audit::{Event, ToolCallDone};
use crate::codex::jsonrpc::{Outgoing, RequestId};
use crate::genai;
use crate::runner::RunnerMessage;
use crate::runner::conversation::ThreadMode;
use crate::tools::{ToolCall, ToolDoor, ToolOutcome};
use crate::trace::TraceCtx;

impl RunnerState {
    /// `item/tool/call`: run it in a task; [`RunnerMessage::ToolDone`] brings the answer.
    pub(super) fn tool_call(&mut self, id: RequestId, params: &Value) {
        let tool = params["tool"].as_str().unwrap_or_default().to_owned();
        let thread = params["threadId"].as_str();
        let key = thread.and_then(|thread| {
            self.threads
                .iter()
                .find(|(_, open)| matches!(open, Open::Ready { thread: t, .. } if t == thread))
                .map(|(key, _)| key.clone())
        });
        let Some(key) = key else {
            // A shared process hands a request of a thread without a session to some
            // session: never act as another agent.
            tracing::warn!(agent.nick = %self.settings.nick, tool = %tool, codex.thread_id = ?thread, "a tool call of a thread that is not this agent's; refused");
            let refused = ToolOutcome::failed(
                "error: this thread's agent is gone; the call was not carried out",
            );
            let generation = self.generation;
            let _ = self.tool_done(generation, id, refused);
            return;
        };
        // The conversation the call is made in: a DM is read only from its own thread.
        let conversation = match self.settings.conversations.threads {
            ThreadMode::Shared => None,
            ThreadMode::PerConversation => Some(key.clone()),
        };
        let arguments = params["arguments"].clone();
        let nick = self.settings.nick.clone();
        let call_id = params["callId"].as_str().unwrap_or_default();
        // Under the call's `codexd.tool.call` span (opened by its `item/started`), else the
        // turn's: the lines the call sends continue mention → turn → tool call.
        let parent = self.turns.get(&key).map(|active| {
            active
                .turn
                .tool_span(call_id)
                .unwrap_or(&active.turn.span)
                .clone()
        });
        let span = tracing::info_span!(
            parent: parent.as_ref().and_then(tracing::Span::id),
            "codexd.tool.run",
            agent.nick = %nick,
            tool.name = %tool,
            tool.call_id = call_id,
            { genai::TOOL_NAME } = %tool,
            { genai::TOOL_CALL_ID } = call_id,
            tool.outcome = tracing::field::Empty,
            tool.duration_ms = tracing::field::Empty,
        );
        let audited = (self.settings.audit.clone())
            .map(|audit| (audit, arguments.clone(), call_id.to_owned()));
        let door = self.peers.tools.clone();
        let timeout = self.settings.tool_timeout;
        let myself = self.myself.clone();
        let generation = self.generation;
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = run(&door, &tool, arguments, conversation, timeout)
                .instrument(span.clone())
                .await;
            let label = if outcome.success { "ok" } else { "failed" };
            let duration_ms = started.elapsed().as_millis() as u64;
            span.record("tool.outcome", label);
            span.record("tool.duration_ms", duration_ms);
            tracing::info!(parent: &span, agent.nick = %nick, tool = %tool, outcome = label, duration_ms, "tool call answered");
            if let Some((audit, arguments, call_id)) = audited {
                let call = ToolCallDone {
                    tool,
                    call_id,
                    arguments,
                    outcome: label,
                    duration_ms,
                };
                audit.record(Event::ToolCall(call), &span.in_scope(TraceCtx::current));
            }
            let _ = myself.cast(RunnerMessage::ToolDone {
                generation,
                id,
                outcome,
            });
        });
    }

    /// Answers a finished tool call (dropped when its session is gone: codex ended the call).
    pub(super) fn tool_done(
        &mut self,
        generation: u64,
        id: RequestId,
        outcome: ToolOutcome,
    ) -> Result<(), ractor::ActorProcessingErr> {
        if generation != self.generation {
            return Ok(());
        }
        let answer = Outgoing::Response {
            id,
            outcome: Ok(json!({
                "contentItems": [{"type": "inputText", "text": outcome.text}],
                "success": outcome.success,
            })),
        };
        self.send(&answer)
    }
}

/// Hands the call through `door` and waits for its outcome, within `timeout`.
async fn run(
    door: &ToolDoor,
    tool: &str,
    arguments: Value,
    conversation: Option<String>,
    timeout: Duration,
) -> ToolOutcome {
    let (reply, outcome) = ractor::concurrency::oneshot();
    let call = ToolCall {
        tool: tool.to_owned(),
        arguments,
        conversation,
        trace: TraceCtx::current(),
        reply: reply.into(),
    };
    if !door.hand(call) {
        return unavailable(tool);
    }
    match tokio::time::timeout(timeout, outcome).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => unavailable(tool),
        Err(_) => ToolOutcome::failed(format!(
            "error: {tool} timed out after {}; it may or may not have happened: check before repeating it",
            humantime::format_duration(timeout)
        )),
    }
}

fn unavailable(tool: &str) -> ToolOutcome {
    ToolOutcome::failed(format!(
        "error: {tool} is unavailable right now (the agent's IRC tools are restarting); try again shortly"
    ))
}
