//! `codex:` — how the runner starts `codex app-server` (codexd). An agent's partial `codex:`
//! overlays the daemon's: `binary` and `args` replace, `env` merges key by key.
//!
//! | key      | default | rule                                                          |
//! |----------|---------|---------------------------------------------------------------|
//! | `binary` | `codex` | non-empty string without NUL; `~` expanded; else PATH lookup  |
//! | `args`   | `[]`    | list of strings without NUL (after `app-server`)              |
//! | `env`    | `{}`    | mapping of `[A-Za-z_][A-Za-z0-9_]*` → string without NUL      |
//! | `shell_env` | `{}` | as `env`: extra variables for the agent's shell commands only  |
//! | `approval_policy` | `never` | when codex asks: `never`, `on-request`, `untrusted`  |
//! | `approvals` | `decline` | how codexd answers when it asks: `accept`, `decline`, `accept_for_session` |
//! | `sandbox` | codex's own | `read-only`, `workspace-write`, `danger-full-access`     |
//! | `model` | codex's own | non-empty single line: the model of `codexd repo run` (agents use their `model`) |
//! | `agents_per_process` | `10` | integer 1..=1000, daemon level only: agents sharing one `codex app-server` |
//! | `request_timeout` | `30s` | duration > 0: an unanswered request means codex is wedged |
//! | `interrupt_timeout` | `10s` | duration > 0: an interrupted turn that does not end means codex is wedged |
//! | `tool_timeout` | `30s` | duration > 0: a tool call of the model taking longer is answered "timed out" |

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use codexd_actors::runner::session::Approvals;

use super::reader::{Keys, Node, Report};
use super::{CodexConfig, names, paths};
use crate::env::Env;

const KEYS: Keys = Keys {
    known: &[
        "binary",
        "args",
        "env",
        "shell_env",
        "approval_policy",
        "approvals",
        "sandbox",
        "model",
        "agents_per_process",
        "request_timeout",
        "interrupt_timeout",
        "tool_timeout",
    ],
    ignored: &[],
};

impl Default for CodexConfig {
    fn default() -> Self {
        CodexConfig {
            binary: PathBuf::from("codex"),
            args: Vec::new(),
            env: BTreeMap::new(),
            shell_env: BTreeMap::new(),
            approval_policy: "never".to_owned(),
            approvals: Approvals::Decline,
            sandbox: None,
            model: String::new(),
            agents_per_process: DEFAULT_AGENTS_PER_PROCESS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            interrupt_timeout: DEFAULT_INTERRUPT_TIMEOUT,
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
        }
    }
}

/// How long codex may leave a request unanswered before the runner treats it as wedged
/// (and kills it, for every agent on a shared process).
pub(super) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an interrupted turn may take to end before codex is treated as wedged.
pub(super) const DEFAULT_INTERRUPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a tool call of the model may take (an IRC query answers within 10 s).
pub(super) const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Agents per shared codex process by default: one more agent costs about 2.2 MiB Pss as a
/// thread of a shared process against about 21 MiB as a process of its own (`cargo bench
/// --bench pool`), while one process's crash restarts every agent on it; ten keeps most of
/// the saving with a bounded blast radius.
pub(super) const DEFAULT_AGENTS_PER_PROCESS: usize = 10;

const APPROVAL_POLICIES: [&str; 3] = ["never", "on-request", "untrusted"];
const APPROVALS: [&str; 3] = ["accept", "decline", "accept_for_session"];
const SANDBOXES: [&str; 3] = ["read-only", "workspace-write", "danger-full-access"];

/// `None` when `text` is one of `allowed`, else the problem, naming them.
fn one_of(allowed: &'static [&'static str]) -> impl Fn(&str) -> Option<String> {
    move |text| {
        (!allowed.contains(&text)).then(|| {
            let list: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
            format!("expected one of {}, got \"{text}\"", list.join(", "))
        })
    }
}

/// `codex:` overlaid on `base`; `agents_per_process` only at the daemon level
/// (`daemon_level`), where placement is decided.
pub(super) fn section(
    node: &Node<'_>,
    base: &CodexConfig,
    env: &Env,
    daemon_level: bool,
    report: &mut Report,
) -> CodexConfig {
    let fields = node.mapping(report, &KEYS);
    let per_process = fields.get("agents_per_process");
    let agents_per_process = match (daemon_level, per_process.given().is_some()) {
        (true, true) => per_process
            .integer(report, 1, 1000, "an integer from 1 to 1000")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(base.agents_per_process),
        (false, true) => {
            let message =
                "ignored: placement is daemon-wide; set codex.agents_per_process at the top level";
            report.warn(per_process.at(), message);
            base.agents_per_process
        }
        (_, false) => base.agents_per_process,
    };
    let mut merged_env = base.env.clone();
    merged_env.extend(variables(&fields.get("env"), report));
    let mut merged_shell_env = base.shell_env.clone();
    merged_shell_env.extend(variables(&fields.get("shell_env"), report));
    CodexConfig {
        binary: paths::path(&fields.get("binary"), env, report)
            .unwrap_or_else(|| base.binary.clone()),
        args: args(&fields.get("args"), report).unwrap_or_else(|| base.args.clone()),
        env: merged_env,
        shell_env: merged_shell_env,
        approval_policy: fields
            .get("approval_policy")
            .string_where(report, one_of(&APPROVAL_POLICIES))
            .map_or_else(|| base.approval_policy.clone(), str::to_owned),
        approvals: fields
            .get("approvals")
            .string_where(report, one_of(&APPROVALS))
            .and_then(Approvals::parse)
            .unwrap_or(base.approvals),
        sandbox: fields
            .get("sandbox")
            .string_where(report, one_of(&SANDBOXES))
            .map(str::to_owned)
            .or_else(|| base.sandbox.clone()),
        model: fields
            .get("model")
            .string_where(report, single_line)
            .map_or_else(|| base.model.clone(), str::to_owned),
        agents_per_process,
        request_timeout: fields
            .get("request_timeout")
            .duration(report)
            .unwrap_or(base.request_timeout),
        interrupt_timeout: fields
            .get("interrupt_timeout")
            .duration(report)
            .unwrap_or(base.interrupt_timeout),
        tool_timeout: fields
            .get("tool_timeout")
            .duration(report)
            .unwrap_or(base.tool_timeout),
    }
}

/// `None` for a non-empty line without control characters, else the problem.
fn single_line(text: &str) -> Option<String> {
    let bad = text.trim().is_empty() || text.chars().any(char::is_control);
    bad.then(|| "expected a non-empty single line".to_owned())
}

fn args(node: &Node<'_>, report: &mut Report) -> Option<Vec<String>> {
    let items = node.strings(report)?;
    let args = items.into_iter().map(|(arg, at)| {
        if let Some(problem) = names::nul(arg) {
            report.error(&at, problem);
        }
        arg.to_owned()
    });
    Some(args.collect())
}

fn variables(node: &Node<'_>, report: &mut Report) -> BTreeMap<String, String> {
    let fields = node.fields(report);
    let mut variables = BTreeMap::new();
    for (name, value) in fields.entries() {
        if let Some(problem) = names::env_name(name) {
            report.error(value.at(), problem);
            continue;
        }
        let Some(text) = value.string(report) else {
            if value.given().is_none() {
                value.expected::<()>(report, "a string");
            }
            continue;
        };
        match names::nul(text) {
            Some(problem) => report.error(value.at(), problem),
            None => _ = variables.insert(name.to_owned(), text.to_owned()),
        }
    }
    variables
}
