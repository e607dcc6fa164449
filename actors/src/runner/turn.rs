//! One turn in flight and how codex's notifications move it, keyed by thread and turn id
//! (never by arrival order: codex may send `turn/started` before the `turn/start` answer).
//!
//! | notification                       | effect                                                  |
//! |------------------------------------|---------------------------------------------------------|
//! | `turn/started`                     | learns the turn id if the answer has not come yet       |
//! | `item/started` (tool item)         | opens a `codexd.tool.call` span under the turn          |
//! | `item/completed` `agentMessage`    | [`Step::Message`]: relay the text now                   |
//! | `item/completed` (tool item)       | closes its span with the item's status                  |
//! | `thread/tokenUsage/updated`        | records the turn's token counts                         |
//! | `error` with `willRetry: true`     | logged; the turn goes on                                |
//! | `error` with `willRetry: false`    | kept as the failure reason; `turn/completed` follows    |
//! | `turn/completed`                   | [`Step::Ended`] with its status; open items are closed  |
//!
//! Anything for another thread or turn, and any other method, is ignored.

use std::collections::HashMap;

use serde_json::Value;
use tokio::time::Instant;

use crate::genai;

/// Item types that are tool calls (one `codexd.tool.call` span each).
pub(crate) const TOOL_ITEMS: [&str; 5] = [
    "commandExecution",
    "fileChange",
    "mcpToolCall",
    "webSearch",
    "dynamicToolCall",
];

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `turn/completed` with status `completed`.
    Completed,
    /// `turn/completed` with status `failed` (or another non-success status).
    Failed(String),
    /// The turn ran past `turn_timeout` and was interrupted (or codex never answered).
    Timeout,
}

impl Outcome {
    /// Culture's `outcome` attribute: `success`, `error`, `timeout`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Outcome::Completed => "success",
            Outcome::Failed(_) => "error",
            Outcome::Timeout => "timeout",
        }
    }
}

/// What a notification means for the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing to do.
    None,
    /// An agent message completed: relay it.
    Message(String),
    /// The turn is over.
    Ended(Outcome),
}

/// A turn codexd started and codex has not finished.
#[derive(Debug)]
pub(crate) struct Turn {
    /// The id codex gave it (from the answer or `turn/started`).
    pub(crate) id: Option<String>,
    /// When `turn/start` was sent.
    pub(crate) started: Instant,
    /// The `harness.llm.call` span.
    pub(crate) span: tracing::Span,
    /// Input and output tokens of the turn's last model call, once reported.
    pub(crate) tokens: Option<(u64, u64)>,
    /// Agent messages so far.
    pub(crate) messages: Vec<String>,
    /// When `turn/interrupt` was sent (after a timeout).
    pub(crate) interrupted: Option<Instant>,
    /// The last final (`willRetry: false`) error.
    error: Option<String>,
    /// Open tool-call spans by item id.
    tools: HashMap<String, tracing::Span>,
}

impl Turn {
    /// A turn just sent as `turn/start`, traced by `span`.
    pub(crate) fn new(span: tracing::Span) -> Self {
        Self {
            id: None,
            started: Instant::now(),
            span,
            tokens: None,
            messages: Vec::new(),
            interrupted: None,
            error: None,
            tools: HashMap::new(),
        }
    }

    /// Tool calls in progress.
    /// The open `codexd.tool.call` span of tool item `id`.
    pub(crate) fn tool_span(&self, id: &str) -> Option<&tracing::Span> {
        self.tools.get(id)
    }

    pub(crate) fn open_tools(&self) -> usize {
        self.tools.len()
    }

    /// Applies one notification of this turn's thread.
    pub(crate) fn on_notification(&mut self, method: &str, params: &Value) -> Step {
        let turn_id = params
            .get("turnId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| super::session::turn_id(params));
        if method == "turn/started" && self.id.is_none() {
            self.id = turn_id.clone();
        }
        if turn_id.is_some() && turn_id != self.id {
            return Step::None; // another turn of this thread (a compaction, a late event)
        }
        match method {
            "item/started" => self.item_started(params),
            "item/completed" => return self.item_completed(params),
            "thread/tokenUsage/updated" => self.tokens_updated(params),
            "error" => self.error(params),
            "turn/completed" => return Step::Ended(self.completed(params)),
            _ => {}
        }
        Step::None
    }

    /// Closes every tool span still open (codex never completes items cut off by an
    /// interrupt or a crash), marking them `incomplete`.
    pub(crate) fn close_open_items(&mut self) {
        for (_, span) in self.tools.drain() {
            span.record("tool.status", "incomplete");
        }
    }

    fn item_started(&mut self, params: &Value) {
        let Some((kind, id)) = item_kind(params) else {
            return;
        };
        if !TOOL_ITEMS.contains(&kind) {
            return;
        }
        let name = tool_name(params).unwrap_or_default();
        let span = tracing::info_span!(
            parent: &self.span,
            "codexd.tool.call",
            tool.type = kind,
            tool.id = id,
            tool.name = name.as_str(),
            tool.status = tracing::field::Empty,
            { genai::OPERATION_NAME } = genai::EXECUTE_TOOL,
            { genai::TOOL_NAME } = name.as_str(),
            { genai::TOOL_CALL_ID } = id,
            { genai::TOOL_TYPE } = genai::tool_type(kind),
        );
        self.tools.insert(id.to_owned(), span);
    }

    fn item_completed(&mut self, params: &Value) -> Step {
        let Some((kind, id)) = item_kind(params) else {
            return Step::None;
        };
        if kind == "agentMessage" {
            let text = params
                .pointer("/item/text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if text.trim().is_empty() {
                return Step::None;
            }
            self.messages.push(text.to_owned());
            return Step::Message(text.to_owned());
        }
        if let Some(span) = self.tools.remove(id) {
            let status = params
                .pointer("/item/status")
                .and_then(Value::as_str)
                .unwrap_or("completed");
            span.record("tool.status", status);
        }
        Step::None
    }

    fn tokens_updated(&mut self, params: &Value) {
        let last = params.pointer("/tokenUsage/last");
        let count = |key: &str| last.and_then(|l| l.get(key)).and_then(Value::as_u64);
        if let (Some(input), Some(output)) = (count("inputTokens"), count("outputTokens")) {
            self.tokens = Some((input, output));
        }
    }

    fn error(&mut self, params: &Value) {
        let message = params
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("unknown error")
            .to_owned();
        if params.get("willRetry").and_then(Value::as_bool) == Some(true) {
            tracing::warn!(codex.turn_id = ?self.id, error = %message, "codex retries the model call; the turn goes on");
        } else {
            tracing::warn!(codex.turn_id = ?self.id, error = %message, "codex reports a turn error");
            self.error = Some(message);
        }
    }

    fn completed(&mut self, params: &Value) -> Outcome {
        self.close_open_items();
        let status = params
            .pointer("/turn/status")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        match status {
            "completed" => Outcome::Completed,
            "interrupted" if self.interrupted.is_some() => Outcome::Timeout,
            other => {
                let reason = params
                    .pointer("/turn/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| self.error.take())
                    .unwrap_or_else(|| format!("turn {other}"));
                Outcome::Failed(reason)
            }
        }
    }
}

/// `item.type` and `item.id` of an `item/*` notification.
fn item_kind(params: &Value) -> Option<(&str, &str)> {
    let item = params.get("item")?;
    Some((item.get("type")?.as_str()?, item.get("id")?.as_str()?))
}

/// A short, secret-free name for a tool call: the MCP tool, the search, or the program
/// a command runs (never its arguments).
fn tool_name(params: &Value) -> Option<String> {
    let item = params.get("item")?;
    match item.get("type")?.as_str()? {
        "mcpToolCall" => Some(format!(
            "{}/{}",
            item.get("server")?.as_str()?,
            item.get("tool")?.as_str()?
        )),
        "dynamicToolCall" => item.get("tool")?.as_str().map(str::to_owned),
        "commandExecution" => {
            let action = item.pointer("/commandActions/0/type")?.as_str()?;
            Some(action.to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "turn_tests.rs"]
mod tests;
