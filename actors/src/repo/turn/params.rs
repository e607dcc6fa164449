//! The job turn's own protocol details, as data: its `turn/start` params and what a tool
//! item is called in progress lines. No I/O here.

use serde_json::{Value, json};

use super::TurnError;
use crate::codex::jsonrpc::RpcError;
use crate::genai;
use crate::runner::session::{self, ThreadConfig};
use crate::runner::turn::{TOOL_ITEMS, Turn};

/// `turn/start` with the task and a `sandboxPolicy` whose only writable root is the thread's
/// cwd (the checkout), no network, no temp dirs; for the `workspace-write` sandbox only.
pub(super) fn turn_start(thread: &str, prompt: &str, config: &ThreadConfig) -> Value {
    let mut params = session::turn_start(thread, prompt);
    if config.sandbox.as_deref() == Some("workspace-write") {
        params["sandboxPolicy"] = json!({
            "type": "workspaceWrite",
            "writableRoots": [config.cwd.display().to_string()],
            "networkAccess": false,
            "excludeTmpdirEnvVar": true,
            "excludeSlashTmp": true,
        });
    }
    params
}

pub(super) fn refused(method: &str, error: &RpcError) -> TurnError {
    TurnError::Refused(crate::redact::text(&session::failure(method, error)))
}

/// A tool item's type and a short description: the files a patch touches, a command's
/// program; `None` for items that are not tool calls.
pub(super) fn describe_tool(params: &Value) -> Option<(String, String)> {
    let item = params.get("item")?;
    let kind = item.get("type")?.as_str()?;
    if !TOOL_ITEMS.contains(&kind) {
        return None;
    }
    let detail = match kind {
        "fileChange" => item
            .get("changes")
            .and_then(Value::as_array)
            .map(|changes| {
                let names: Vec<&str> = changes
                    .iter()
                    .filter_map(|c| c.get("path").and_then(Value::as_str))
                    .map(|path| path.rsplit('/').next().unwrap_or(path))
                    .collect();
                names.join(", ")
            })
            .unwrap_or_default(),
        "commandExecution" => item
            .pointer("/commandActions/0/type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        "dynamicToolCall" | "mcpToolCall" => item
            .get("tool")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    Some((kind.to_owned(), detail))
}

pub(super) fn end_span(turn: &Turn, outcome: &str) {
    turn.span.record("outcome", outcome);
    if let Some(id) = &turn.id {
        turn.span.record("codex.turn_id", id.as_str());
    }
    if let Some((input, output)) = turn.tokens {
        turn.span.record("tokens.input", input);
        turn.span.record("tokens.output", output);
        let int = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
        turn.span.record(genai::USAGE_INPUT_TOKENS, int(input));
        turn.span.record(genai::USAGE_OUTPUT_TOKENS, int(output));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;

    fn thread(sandbox: Option<&str>) -> ThreadConfig {
        ThreadConfig {
            cwd: PathBuf::from("/state/repo/work/1.1/widget"),
            model: String::new(),
            approval_policy: "never".into(),
            sandbox: sandbox.map(str::to_owned),
            instructions: String::new(),
            shell_env: BTreeMap::new(),
        }
    }

    #[test]
    fn workspace_write_is_scoped_to_the_checkout() {
        let params = turn_start("t", "do it", &thread(Some("workspace-write")));
        assert_eq!(
            params["sandboxPolicy"],
            json!({"type": "workspaceWrite", "writableRoots": ["/state/repo/work/1.1/widget"],
                   "networkAccess": false, "excludeTmpdirEnvVar": true, "excludeSlashTmp": true})
        );
        assert_eq!(params["input"][0]["text"], "do it");
        let open = turn_start("t", "do it", &thread(Some("danger-full-access")));
        assert!(
            open.get("sandboxPolicy").is_none(),
            "other sandboxes as asked"
        );
    }

    #[test]
    fn tool_items_are_described_without_their_arguments() {
        let table = [
            (
                json!({"item": {"type": "fileChange", "id": "c", "changes": [{"path": "/w/a/README.md"}, {"path": "/w/b.txt"}]}}),
                Some(("fileChange", "README.md, b.txt")),
            ),
            (
                json!({"item": {"type": "commandExecution", "id": "c", "command": "curl -H 'token: x'", "commandActions": [{"type": "unknown"}]}}),
                Some(("commandExecution", "unknown")),
            ),
            (json!({"item": {"type": "agentMessage", "id": "m"}}), None),
            (json!({}), None),
        ];
        for (params, want) in table {
            let got = describe_tool(&params);
            let want = want.map(|(k, d)| (k.to_owned(), d.to_owned()));
            assert_eq!(got, want, "{params}");
        }
    }
}
