//! `agents:` — a list of agent mappings, each resolved against the daemon level.
//!
//! | key                    | default       | rule                                                   |
//! |------------------------|---------------|--------------------------------------------------------|
//! | `nick`                 | required      | legal IRC nick starting with `<server.name>-`; unique  |
//! | `agent`                | `codex`       | single line; anything but `codex` draws a warning      |
//! | `directory`            | `.`           | path, `~` expanded                                     |
//! | `channels`             | `["#general"]`| list of channels (`#…`); a repeat draws a warning      |
//! | `model`                | `gpt-5.4`     | non-empty single line                                  |
//! | `system_prompt`        | `""`          | string without NUL (newlines allowed)                  |
//! | `tags`                 | `[]`          | list of tags (no space, comma, CR, LF, NUL)            |
//! | `icon`                 | none          | single line; `""` or null → none                       |
//! | `turn_timeout_seconds` | `600`         | number; `<= 0` → no timeout                            |
//! | `attention`            | daemon's      | partial attention map (`attention_overrides` alias)    |
//! | `restart`              | daemon's      | partial restart map                                    |
//! | `codex`                | daemon's      | partial codex map                                      |
//! | `admission`            | daemon's      | partial admission map                                  |
//! | `conversations`        | daemon's      | partial conversations map                              |
//! | `test_children`        | `[]`          | child names, no repeats                                |
//! | `tools`                | `true`        | `true` (every IRC tool), `false` (none), or a list of tool names, no repeats |
//! | `repo`                 | none          | repository jobs (`config/repo.rs`): `remotes`, `max_jobs`, `git_timeout`, `turn_timeout` |

use std::time::Duration;

use serde_yaml_ng::Value;

use super::reader::{At, Fields, Ignored, Keys, Node, Report, did_you_mean, quote};
use super::{
    AgentConfig, AttentionConfig, CodexConfig, RestartConfig, admission, attention, codex,
    conversations, names, paths, repo, restart,
};
use crate::env::Env;
use codexd_actors::runner::admission::AdmissionSettings;
use codexd_actors::runner::conversation::ConversationSettings;
use codexd_actors::tools::ToolChoice;

const KEYS: Keys = Keys {
    known: &[
        "nick",
        "agent",
        "directory",
        "channels",
        "model",
        "system_prompt",
        "tags",
        "icon",
        "turn_timeout_seconds",
        "attention",
        "attention_overrides",
        "restart",
        "codex",
        "admission",
        "conversations",
        "test_children",
        "tools",
        "repo",
    ],
    ignored: &[
        Ignored {
            key: "archived",
            why: "not true or false; only \"archived: true\" takes an agent out (not hosted)",
        },
        Ignored {
            key: "archived_at",
            why: "Culture archive metadata",
        },
        Ignored {
            key: "archived_reason",
            why: "Culture archive metadata",
        },
        Ignored {
            key: "suffix",
            why: "Culture manifest key; codexd names agents by nick",
        },
        Ignored {
            key: "backend",
            why: "Culture manifest key; codexd runs every agent with codex",
        },
        Ignored {
            key: "thinking",
            why: "a claude-backend key",
        },
        Ignored {
            key: "acp_command",
            why: "an ACP-backend key",
        },
        Ignored {
            key: "token_budget*",
            why: "token budgets are not implemented by codexd",
        },
    ],
};

/// The children of an agent, by the names used in config, status and fault injection.
pub(super) const CHILDREN: &[&str] = &codexd_actors::agent::CHILD_NAMES;
/// The model agents and the overseer use unless told otherwise.
pub(super) const DEFAULT_MODEL: &str = "gpt-5.4";
/// Culture's outer turn timeout.
pub(super) const DEFAULT_TURN_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_CHANNEL: &str = "#general";
const BACKEND: &str = "codex";

/// What every agent inherits from the daemon level.
pub(super) struct Inherited<'c> {
    pub(super) server_name: &'c str,
    pub(super) attention: &'c AttentionConfig,
    /// Whether the daemon's attention had no errors (only then are overlays validated).
    pub(super) attention_valid: bool,
    pub(super) restart: &'c RestartConfig,
    pub(super) codex: &'c CodexConfig,
    pub(super) admission: &'c AdmissionSettings,
    pub(super) conversations: &'c ConversationSettings,
}

/// Reads `agents:`. Absent means no agents; null or a mapping is an error with a hint.
pub(super) fn list(
    node: &Node<'_>,
    inherited: &Inherited<'_>,
    env: &Env,
    report: &mut Report,
) -> Vec<AgentConfig> {
    if !node.is_present() {
        return Vec::new();
    }
    let items = match node.given() {
        None => not_a_list(
            node,
            "got null; remove the key or write \"agents: []\" for no agents",
            report,
        ),
        Some(Value::Mapping(_)) => {
            let hint = "this looks like Culture's manifest format (suffix: /dir), which codexd does not read";
            not_a_list(node, &format!("got a mapping; {hint}"), report)
        }
        Some(_) => node.items(report),
    };
    let agents: Vec<(AgentConfig, At)> = items
        .unwrap_or_default()
        .iter()
        .filter_map(|item| agent(item, inherited, env, report))
        .collect();
    check_unique(&agents, report);
    agents.into_iter().map(|(agent, _)| agent).collect()
}

fn not_a_list<'a>(node: &Node<'a>, detail: &str, report: &mut Report) -> Option<Vec<Node<'a>>> {
    let message = format!("expected a list of agent mappings (\"- nick: ...\"), {detail}");
    report.error(node.at(), message);
    None
}

/// One agent and the place of its nick.
fn agent(
    item: &Node<'_>,
    inherited: &Inherited<'_>,
    env: &Env,
    report: &mut Report,
) -> Option<(AgentConfig, At)> {
    if !item.given().is_some_and(Value::is_mapping) {
        return item.expected(report, "an agent mapping (nick:, channels:, ...)");
    }
    let fields = item.mapping(report, &KEYS);
    let nick = fields.get("nick");
    let agent = AgentConfig {
        nick: nick_of(&nick, inherited.server_name, report).unwrap_or_default(),
        backend: backend(&fields.get("agent"), report),
        directory: paths::path(&fields.get("directory"), env, report).unwrap_or_else(|| ".".into()),
        channels: channels(&fields.get("channels"), report)
            .unwrap_or_else(|| vec![DEFAULT_CHANNEL.to_owned()]),
        model: fields
            .get("model")
            .string_where(report, names::line)
            .unwrap_or(DEFAULT_MODEL)
            .to_owned(),
        system_prompt: fields
            .get("system_prompt")
            .string_where(report, names::nul)
            .unwrap_or_default()
            .to_owned(),
        tags: tags(&fields.get("tags"), report).unwrap_or_default(),
        icon: icon(&fields.get("icon"), report),
        turn_timeout: turn_timeout(&fields.get("turn_timeout_seconds"), report),
        attention: attention::agent(
            &attention_node(&fields, report),
            inherited.attention,
            inherited.attention_valid,
            report,
        ),
        restart: restart::section(&fields.get("restart"), inherited.restart, report),
        codex: codex::section(&fields.get("codex"), inherited.codex, env, false, report),
        admission: admission::section(&fields.get("admission"), inherited.admission, report),
        conversations: conversations::section(
            &fields.get("conversations"),
            inherited.conversations,
            report,
        ),
        test_children: test_children(&fields.get("test_children"), report),
        tools: tools(&fields.get("tools"), report),
        repo: repo::section(&fields.get("repo"), report),
    };
    Some((agent, nick.at().clone()))
}

fn nick_of(node: &Node<'_>, server_name: &str, report: &mut Report) -> Option<String> {
    if node.given().is_none() {
        report.error(node.at(), "required");
        return None;
    }
    node.string_where(report, |nick| names::nick(nick, server_name))
        .map(str::to_owned)
}

fn backend(node: &Node<'_>, report: &mut Report) -> String {
    let backend = node.string_where(report, names::line).unwrap_or(BACKEND);
    if backend != BACKEND {
        report.warn(
            node.at(),
            format!(
                "{} is not \"{BACKEND}\"; codexd runs this agent with codex anyway",
                quote(backend)
            ),
        );
    }
    backend.to_owned()
}

fn channels(node: &Node<'_>, report: &mut Report) -> Option<Vec<String>> {
    let mut channels: Vec<String> = Vec::new();
    for (channel, at) in node.strings(report)? {
        if let Some(problem) = names::channel(channel) {
            report.error(&at, problem);
        } else if channels
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(channel))
        {
            report.warn(&at, format!("{} is listed twice", quote(channel)));
        } else {
            channels.push(channel.to_owned());
        }
    }
    Some(channels)
}

fn tags(node: &Node<'_>, report: &mut Report) -> Option<Vec<String>> {
    let tags = node
        .strings(report)?
        .into_iter()
        .filter_map(|(tag, at)| match names::tag(tag) {
            Some(problem) => {
                report.error(&at, problem);
                None
            }
            None => Some(tag.to_owned()),
        });
    Some(tags.collect())
}

fn icon(node: &Node<'_>, report: &mut Report) -> Option<String> {
    let icon = node.string_where(report, names::multi_line)?;
    (!icon.is_empty()).then(|| icon.to_owned())
}

/// `turn_timeout_seconds`: absent → 600 s; `<= 0` → no timeout.
fn turn_timeout(node: &Node<'_>, report: &mut Report) -> Option<Duration> {
    if node.given().is_none() {
        return Some(DEFAULT_TURN_TIMEOUT);
    }
    let seconds = node.number(report)?;
    if seconds <= 0.0 {
        return None;
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(timeout) => Some(timeout),
        Err(_) => node.expected(report, "a number of seconds"),
    }
}

/// `attention` wins over `attention_overrides` (Culture's round-trip spelling).
fn attention_node<'a>(fields: &Fields<'a>, report: &mut Report) -> Node<'a> {
    let overrides = fields.get("attention_overrides");
    if !fields.has("attention") {
        return overrides;
    }
    if overrides.given().is_some() {
        report.warn(
            overrides.at(),
            "ignored: \"attention\" is also set and wins",
        );
    }
    fields.get("attention")
}

fn test_children(node: &Node<'_>, report: &mut Report) -> Vec<String> {
    let mut children: Vec<String> = Vec::new();
    for (child, at) in node.strings(report).unwrap_or_default() {
        if !CHILDREN.contains(&child) {
            let hint = did_you_mean(child, CHILDREN)
                .map(|close| format!(" (did you mean \"{close}\"?)"))
                .unwrap_or_default();
            report.error(
                &at,
                format!(
                    "unknown child {}; expected one of {}{hint}",
                    quote(child),
                    CHILDREN.join(", ")
                ),
            );
        } else if children.iter().any(|seen| seen == child) {
            report.error(&at, format!("{} is listed twice", quote(child)));
        } else {
            children.push(child.to_owned());
        }
    }
    children
}

/// `tools`: `true`/absent → every tool, `false` → none, a list → those (known, no repeats).
fn tools(node: &Node<'_>, report: &mut Report) -> ToolChoice {
    match node.given() {
        None => return ToolChoice::All,
        Some(serde_yaml_ng::Value::Bool(true)) => return ToolChoice::All,
        Some(serde_yaml_ng::Value::Bool(false)) => return ToolChoice::Off,
        Some(serde_yaml_ng::Value::Sequence(_)) => {}
        Some(_) => {
            node.expected::<()>(report, "true, false or a list of tool names");
            return ToolChoice::All;
        }
    }
    let known = codexd_actors::tools::names();
    let mut chosen: Vec<String> = Vec::new();
    for (tool, at) in node.strings(report).unwrap_or_default() {
        if !known.contains(&tool) {
            let hint = did_you_mean(tool, &known)
                .map(|close| format!(" (did you mean \"{close}\"?)"))
                .unwrap_or_default();
            let message = format!(
                "unknown tool {}; expected one of {}{hint}",
                quote(tool),
                known.join(", ")
            );
            report.error(&at, message);
        } else if chosen.iter().any(|seen| seen == tool) {
            report.error(&at, format!("{} is listed twice", quote(tool)));
        } else {
            chosen.push(tool.to_owned());
        }
    }
    ToolChoice::Only(chosen)
}

/// Nicks must be unique under IRC case folding; the later entry is the one reported.
fn check_unique(agents: &[(AgentConfig, At)], report: &mut Report) {
    for (index, (agent, at)) in agents.iter().enumerate() {
        let folded = names::fold_nick(&agent.nick);
        let earlier = agents[..index]
            .iter()
            .find(|(other, _)| names::fold_nick(&other.nick) == folded);
        if let Some((other, other_at)) = earlier.filter(|_| !agent.nick.is_empty()) {
            report.error(
                at,
                format!(
                    "duplicate nick: {} is already used by {}",
                    quote(&other.nick),
                    other_at.path()
                ),
            );
        }
    }
}
