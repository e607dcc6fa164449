//! The socket's second front door: the model's tool calls ([`crate::tools`]) carried out as
//! the Culture IPC requests they are, by the same [`verbs::carry_out`].

use serde_json::{Map, Value, json};

use super::protocol;
use super::verbs::{self, Agent, Caller};
use crate::runner::prompt;
use crate::tools::{self, ToolOutcome};
use crate::trace::TraceCtx;

/// Carries out tool `tool` with `arguments` for `agent` as the IPC request it is, made in
/// `conversation` (`None`: the agent's one shared thread).
pub(crate) async fn call(
    agent: &Agent,
    tool: &str,
    arguments: &Value,
    conversation: Option<&str>,
    trace: &TraceCtx,
) -> ToolOutcome {
    if !tools::is_known(tool) {
        return ToolOutcome::failed(format!("error: no tool named {tool}"));
    }
    let mut object = match arguments {
        Value::Object(object) => object.clone(),
        Value::Null => Map::new(),
        other => {
            return ToolOutcome::failed(format!("error: arguments must be an object, got {other}"));
        }
    };
    for key in ["message", "topic", "summary"] {
        if let Some(Value::String(text)) = object.get_mut(key) {
            let lines: Vec<String> = text.lines().map(prompt::without_controls).collect();
            *text = lines.join("\n");
        }
    }
    if tool == "repo_run" && !object.contains_key("channel") {
        // Reports go where the model was asked.
        if let Some(target) = conversation.and_then(report_target) {
            object.insert("channel".into(), json!(target));
        }
    }
    object.insert("type".into(), json!(tool));
    let verb = match protocol::verb(&object) {
        Ok(verb) => verb,
        Err(error) => return ToolOutcome::failed(format!("error: {error}")),
    };
    let request = protocol::Request {
        id: json!(tool),
        verb,
    };
    let caller = match conversation {
        Some(conversation) => Caller::Within(vec![conversation.to_owned()]),
        None => Caller::Anyone,
    };
    let response = verbs::carry_out(agent, request, trace, &caller).await;
    render(&response)
}

/// Where a conversation's replies go: `#dev` for `#dev` and `#dev thread:x`, `ori` for
/// `DM:ori`.
fn report_target(conversation: &str) -> Option<String> {
    let conversation = conversation.trim();
    if let Some(peer) = conversation.strip_prefix("DM:") {
        return Some(peer.to_owned());
    }
    let channel = conversation.split_whitespace().next()?;
    channel.starts_with('#').then(|| channel.to_owned())
}

/// The IPC answer as text for the model.
fn render(response: &protocol::Response) -> ToolOutcome {
    if let Some(error) = response.error_text() {
        return ToolOutcome::failed(format!("error: {error}"));
    }
    let mut text = match response.data() {
        None => "ok".to_owned(),
        Some(data) => match data.get("messages").and_then(Value::as_array) {
            Some(messages) if messages.is_empty() => "no new messages".to_owned(),
            Some(messages) => messages
                .iter()
                .map(|m| {
                    let nick = m["nick"].as_str().unwrap_or("?");
                    let text = m["text"].as_str().unwrap_or_default();
                    format!("<{nick}> {text}")
                })
                .collect::<Vec<_>>()
                .join("\n"),
            None => data.to_string(),
        },
    };
    for warning in response.warnings() {
        text.push_str(&format!("\nwarning: {warning}"));
    }
    ToolOutcome {
        success: true,
        text,
    }
}
