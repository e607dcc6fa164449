//! The thread session's side of the codex protocol, as data: the params codexd sends and
//! what it reads from the answers (reference/codex-app-server.md §3–§7). No I/O here.
//!
//! | step                    | method            | params                                              |
//! |-------------------------|-------------------|-----------------------------------------------------|
//! | 1                       | `initialize`      | `clientInfo` = codexd                               |
//! | 2                       | `initialized`     | (a notification)                                    |
//! | 3a, a thread id is kept | `thread/resume`   | `threadId`, `excludeTurns: true`, the thread config |
//! | 3b, none or resume fails| `thread/start`    | the thread config                                   |
//! | per prompt              | `turn/start`      | `threadId`, one text input                          |
//! | on timeout              | `turn/interrupt`  | `threadId`, `turnId`                                |
//! | IPC `compact`           | `thread/compact/start` | `threadId`                                     |
//!
//! The thread config (cwd, model, approval policy, sandbox, instructions) is sent on every
//! start **and** resume: codex does not persist it across processes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::codex::jsonrpc::{Outgoing, RequestId, RpcError};

/// How codexd answers codex's approval requests (`approvals:` in `codex:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approvals {
    /// Run it.
    Accept,
    /// Refuse it; the model is told and the turn goes on (the safe default).
    #[default]
    Decline,
    /// Run it, and identical requests later in the thread without asking.
    AcceptForSession,
}

impl Approvals {
    /// The config spelling: `accept`, `decline`, `accept_for_session`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "accept" => Some(Self::Accept),
            "decline" => Some(Self::Decline),
            "accept_for_session" => Some(Self::AcceptForSession),
            _ => None,
        }
    }

    /// codex's decision string (the same for commands and file changes).
    pub fn decision(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::AcceptForSession => "acceptForSession",
        }
    }
}

/// What every `thread/start` and `thread/resume` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadConfig {
    /// The agent's directory.
    pub cwd: PathBuf,
    /// The model; empty leaves codex's default (and, on resume, the thread's own).
    pub model: String,
    /// `never`, `on-request` or `untrusted`.
    pub approval_policy: String,
    /// `read-only`, `workspace-write`, `danger-full-access`; `None` leaves codex's default.
    pub sandbox: Option<String>,
    /// The system prompt, sent as `baseInstructions` (it replaces codex's own, §7.7).
    pub instructions: String,
    /// The environment of the agent's shell commands: codex's `core` variables (HOME, PATH,
    /// SHELL, USER, TMPDIR, …) plus these (`CULTURE_NICK`, …). Nothing else of the app-server's
    /// environment (the model provider's API key, `codex.env`) reaches the agent's tools.
    pub shell_env: BTreeMap<String, String>,
}

impl ThreadConfig {
    fn params(&self) -> serde_json::Map<String, Value> {
        let mut params = serde_json::Map::new();
        params.insert("cwd".into(), json!(self.cwd.display().to_string()));
        if !self.model.is_empty() {
            params.insert("model".into(), json!(self.model));
        }
        params.insert("approvalPolicy".into(), json!(self.approval_policy));
        if let Some(sandbox) = &self.sandbox {
            params.insert("sandbox".into(), json!(sandbox));
        }
        if !self.instructions.is_empty() {
            params.insert("baseInstructions".into(), json!(self.instructions));
        }
        // Per thread, and not persisted by codex: sent on every start and resume.
        params.insert(
            "config".into(),
            json!({"shell_environment_policy": {"inherit": "core", "set": self.shell_env}}),
        );
        params
    }

    /// `thread/start` params.
    pub fn start(&self) -> Value {
        Value::Object(self.params())
    }

    /// `thread/start` params of a short-lived thread codex keeps no history of.
    pub fn start_ephemeral(&self) -> Value {
        let mut params = self.params();
        params.insert("ephemeral".into(), json!(true));
        Value::Object(params)
    }

    /// `thread/resume` params for `thread_id`, without the full history.
    pub fn resume(&self, thread_id: &str) -> Value {
        let mut params = self.params();
        params.insert("threadId".into(), json!(thread_id));
        params.insert("excludeTurns".into(), json!(true));
        Value::Object(params)
    }
}

/// `initialize` params.
pub fn initialize() -> Value {
    crate::codex::initialize_params()
}

/// `turn/start` params: one text input.
pub fn turn_start(thread_id: &str, text: &str) -> Value {
    json!({"threadId": thread_id, "input": [{"type": "text", "text": text}]})
}

/// `turn/steer` params: one text input into turn `turn_id`, which must still be running.
pub fn turn_steer(thread_id: &str, turn_id: &str, text: &str) -> Value {
    json!({"threadId": thread_id, "expectedTurnId": turn_id, "input": [{"type": "text", "text": text}]})
}

/// `thread/unsubscribe` params (a finished short-lived thread is unloaded).
pub fn unsubscribe(thread_id: &str) -> Value {
    json!({"threadId": thread_id})
}

/// `turn/interrupt` params.
pub fn turn_interrupt(thread_id: &str, turn_id: &str) -> Value {
    json!({"threadId": thread_id, "turnId": turn_id})
}

/// `thread/compact/start` params.
pub fn compact(thread_id: &str) -> Value {
    json!({"threadId": thread_id})
}

/// The thread id in a `thread/start` or `thread/resume` result.
pub fn thread_id(result: &Value) -> Option<String> {
    result
        .pointer("/thread/id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// The turn id in a `turn/start` result or a `turn/started`/`turn/completed` notification.
pub fn turn_id(value: &Value) -> Option<String> {
    value
        .pointer("/turn/id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The answer to a server request: approvals get `{decision}` per policy, anything else a
/// JSON-RPC error, so that nothing in codex ever waits on codexd.
pub fn answer(id: RequestId, method: &str, approvals: Approvals) -> Outgoing {
    match method {
        "item/commandExecution/requestApproval" | "item/fileChange/requestApproval" => {
            Outgoing::Response {
                id,
                outcome: Ok(json!({"decision": approvals.decision()})),
            }
        }
        _ => Outgoing::method_not_found(id, method),
    }
}

/// A failed request's error for logs and status: `thread/start failed: … (code …)`.
pub fn failure(method: &str, error: &RpcError) -> String {
    format!("{method} failed: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ThreadConfig {
        ThreadConfig {
            cwd: PathBuf::from("/work/a"),
            model: "gpt-5.4".into(),
            approval_policy: "never".into(),
            sandbox: Some("workspace-write".into()),
            instructions: "You are spark-a.".into(),
            shell_env: BTreeMap::from([("CULTURE_NICK".into(), "spark-a".into())]),
        }
    }

    #[test]
    fn start_and_resume_carry_the_same_thread_config() {
        let start = config().start();
        assert_eq!(
            start,
            json!({"cwd": "/work/a", "model": "gpt-5.4", "approvalPolicy": "never",
                   "sandbox": "workspace-write", "baseInstructions": "You are spark-a.",
                   "config": {"shell_environment_policy":
                       {"inherit": "core", "set": {"CULTURE_NICK": "spark-a"}}}})
        );
        let resume = config().resume("t-1");
        assert_eq!(resume["threadId"], "t-1");
        assert_eq!(resume["excludeTurns"], true);
        for key in [
            "cwd",
            "model",
            "approvalPolicy",
            "sandbox",
            "baseInstructions",
            "config",
        ] {
            assert_eq!(resume[key], start[key], "{key}");
        }
    }

    #[test]
    fn empty_settings_are_left_to_codex() {
        let bare = ThreadConfig {
            model: String::new(),
            sandbox: None,
            instructions: String::new(),
            ..config()
        };
        assert_eq!(
            bare.start(),
            json!({"cwd": "/work/a", "approvalPolicy": "never",
                   "config": {"shell_environment_policy":
                       {"inherit": "core", "set": {"CULTURE_NICK": "spark-a"}}}})
        );
    }

    #[test]
    fn approvals_answer_by_policy_and_unknown_requests_get_an_error() {
        let table = [
            (Approvals::Accept, "accept"),
            (Approvals::Decline, "decline"),
            (Approvals::AcceptForSession, "acceptForSession"),
        ];
        for (policy, decision) in table {
            for method in [
                "item/commandExecution/requestApproval",
                "item/fileChange/requestApproval",
            ] {
                let line = answer(RequestId::Int(0), method, policy).encode();
                assert_eq!(
                    line,
                    format!(r#"{{"id":0,"result":{{"decision":"{decision}"}}}}"#)
                );
            }
        }
        let line = answer(
            RequestId::Int(7),
            "item/tool/requestUserInput",
            Approvals::Accept,
        )
        .encode();
        assert!(
            line.starts_with(r#"{"id":7,"error":{"code":-32601"#),
            "{line}"
        );
        assert_eq!(
            Approvals::parse("accept_for_session"),
            Some(Approvals::AcceptForSession)
        );
        assert_eq!(Approvals::parse("yes"), None);
    }

    #[test]
    fn ids_are_read_from_results_and_notifications() {
        let result = json!({"thread": {"id": "019a-thread"}, "model": "m"});
        assert_eq!(thread_id(&result).as_deref(), Some("019a-thread"));
        assert_eq!(thread_id(&json!({"thread": {"id": ""}})), None);
        assert_eq!(thread_id(&json!({"error": 1})), None);
        let started = json!({"threadId": "t", "turn": {"id": "u", "status": "inProgress"}});
        assert_eq!(turn_id(&started).as_deref(), Some("u"));
        assert_eq!(
            turn_start("t", "hi"),
            json!({"threadId": "t", "input": [{"type": "text", "text": "hi"}]})
        );
    }
}
