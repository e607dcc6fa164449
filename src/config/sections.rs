//! Culture's small sections: `supervisor:` (codexd's overseer) and `webhooks:`.
//! (`server:` has its own module, [`super::server`].)
//!
//! | key                               | default        | rule                                        |
//! |-----------------------------------|----------------|---------------------------------------------|
//! | `supervisor.model`                | `gpt-5.4`      | single line, not starting with `-`          |
//! | `supervisor.window_size`          | `20`           | integer >= 1                                |
//! | `supervisor.eval_interval`        | `5`            | integer >= 1                                |
//! | `supervisor.escalation_threshold` | `3`            | integer >= 1                                |
//! | `supervisor.prompt_override`      | `""`           | no NUL; a template whose only field is `{transcript}` |
//! | `supervisor.enabled`              | block present  | boolean (codexd): force the overseer on/off |
//! | `supervisor.timeout`              | `60s`          | duration (codexd): an evaluation's budget   |
//! | `webhooks.url`                    | none           | `http://` / `https://` URL                  |
//! | `webhooks.url_file`               | none           | the URL from a file (see `secrets`)         |
//! | `webhooks.irc_channel`            | `#alerts`      | channel name                                |
//! | `webhooks.events`                 | see below      | list; unknown names draw a warning          |
//! | `webhooks.format` (codexd)        | `discord`      | `discord`, `slack` or `generic`             |
//! | `webhooks.timeout` (codexd)       | `10s`          | duration: bound on one HTTP attempt         |
//! | `webhooks.max_attempts` (codexd)  | `4`            | integer 1..=20: HTTP attempts per alert     |
//! | `webhooks.queue_size` (codexd)    | `64`           | integer 1..=10000: HTTP deliveries waiting  |
//! | `webhooks.dedup_window` (codexd)  | `60s`          | duration, or `0` to suppress nothing        |
//! | `webhooks.join_channel` (codexd)  | `true`         | agents join `irc_channel` (agentirc, `+n`)  |
//!
//! Known events: Culture's `agent_spiraling`, `agent_error`, `agent_question`,
//! `agent_timeout`, `agent_complete` and codexd's `circuit_open`, `circuit_closed`,
//! `agent_restarted`. The default allow-list is all but `agent_restarted` (opt-in: noisy).

use std::time::Duration;

use codexd_actors::overseer::prompt::Template;
use codexd_actors::webhook::{AlertEvent, Endpoint, Format};

use super::reader::{Ignored, Keys, Node, Report, did_you_mean, quote};
use super::{OverseerConfig, WebhookConfig, agents, names, secrets};
use crate::env::Env;

const SUPERVISOR_KEYS: Keys = Keys {
    known: &[
        "model",
        "window_size",
        "eval_interval",
        "escalation_threshold",
        "prompt_override",
        "enabled",
        "timeout",
    ],
    ignored: &[
        Ignored {
            key: "thinking",
            why: "a claude-backend key",
        },
        Ignored {
            key: "agent",
            why: "another backend's key; codexd's overseer always uses codex",
        },
    ],
};

const WEBHOOK_KEYS: Keys = Keys {
    known: &[
        "url",
        "url_file",
        "irc_channel",
        "events",
        "format",
        "timeout",
        "max_attempts",
        "queue_size",
        "dedup_window",
        "join_channel",
    ],
    ignored: &[],
};

/// Every alert event codexd emits.
pub(super) const EVENTS: &[&str] = &[
    "agent_spiraling",
    "agent_error",
    "agent_question",
    "agent_timeout",
    "agent_complete",
    "circuit_open",
    "circuit_closed",
    "agent_restarted",
    "journal_error",
    "mesh_split",
    "mesh_healed",
];

/// How long an evaluation may run unless `supervisor.timeout` says otherwise.
pub(super) const DEFAULT_OVERSEER_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for OverseerConfig {
    /// Culture's defaults; off, as for a file without a `supervisor:` block.
    fn default() -> Self {
        OverseerConfig {
            model: agents::DEFAULT_MODEL.to_owned(),
            window_size: 20,
            eval_interval: 5,
            escalation_threshold: 3,
            prompt_override: String::new(),
            enabled: false,
            timeout: DEFAULT_OVERSEER_TIMEOUT,
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: None,
            irc_channel: "#alerts".to_owned(),
            events: AlertEvent::DEFAULTS
                .iter()
                .map(|e| e.name().to_owned())
                .collect(),
            format: Format::default(),
            timeout: Duration::from_secs(10),
            max_attempts: 4,
            queue_size: 64,
            dedup_window: Duration::from_secs(60),
            join_channel: true,
        }
    }
}

/// `supervisor:`.
pub(super) fn overseer(node: &Node<'_>, report: &mut Report) -> OverseerConfig {
    let fields = node.mapping(report, &SUPERVISOR_KEYS);
    let defaults = OverseerConfig::default();
    let count = |key: &str, report: &mut Report, fallback: u32| {
        let value = fields
            .get(key)
            .integer(report, 1, i64::from(u32::MAX), "an integer >= 1");
        value
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(fallback)
    };
    OverseerConfig {
        model: fields
            .get("model")
            .string_where(report, overseer_model)
            .map_or(defaults.model, str::to_owned),
        window_size: count("window_size", report, defaults.window_size),
        eval_interval: count("eval_interval", report, defaults.eval_interval),
        escalation_threshold: count(
            "escalation_threshold",
            report,
            defaults.escalation_threshold,
        ),
        prompt_override: fields
            .get("prompt_override")
            .string_where(report, prompt_override)
            .map_or(defaults.prompt_override, str::to_owned),
        enabled: fields
            .get("enabled")
            .boolean(report)
            .unwrap_or(node.is_present()),
        timeout: fields
            .get("timeout")
            .duration(report)
            .unwrap_or(defaults.timeout),
    }
}

/// `prompt_override`: no NUL, and a `str.format` template Culture would not reject.
fn prompt_override(template: &str) -> Option<String> {
    names::nul(template).or_else(|| {
        Template::parse(template)
            .err()
            .map(|error| format!("not a valid prompt template: {error}"))
    })
}

/// The overseer's model goes to `codex exec -m <model>`: one line, and not an option.
fn overseer_model(model: &str) -> Option<String> {
    match model.starts_with('-') {
        true => Some("must not start with \"-\"".to_owned()),
        false => names::line(model),
    }
}

/// `webhooks:`.
/// `url` may come from `${VAR}` or `url_file` ([`secrets`]).
pub(super) fn webhooks(node: &Node<'_>, env: &Env, report: &mut Report) -> WebhookConfig {
    let fields = node.mapping(report, &WEBHOOK_KEYS);
    let defaults = WebhookConfig::default();
    let url_at = match fields.has("url") {
        true => fields.get("url"),
        false => fields.get("url_file"),
    };
    // A URL written in the file may be quoted (by origin) in the error; one from outside not.
    let check = match secrets::is_from_outside(&fields, "url") {
        true => secret_webhook_url,
        false => webhook_url,
    };
    WebhookConfig {
        url: secrets::secret(&fields, "url", env, report).filter(|url| match check(url) {
            Some(problem) => {
                report.error(url_at.at(), problem);
                false
            }
            None => true,
        }),
        irc_channel: fields
            .get("irc_channel")
            .string_where(report, names::channel)
            .map_or(defaults.irc_channel, str::to_owned),
        events: events(&fields.get("events"), report).unwrap_or(defaults.events),
        format: fields
            .get("format")
            .string_where(report, format)
            .and_then(Format::from_name)
            .unwrap_or(defaults.format),
        timeout: fields
            .get("timeout")
            .duration(report)
            .unwrap_or(defaults.timeout),
        max_attempts: fields
            .get("max_attempts")
            .integer(report, 1, 20, "an integer from 1 to 20")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(defaults.max_attempts),
        queue_size: fields
            .get("queue_size")
            .integer(report, 1, 10_000, "an integer from 1 to 10000")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(defaults.queue_size),
        dedup_window: dedup_window(&fields.get("dedup_window"), report)
            .unwrap_or(defaults.dedup_window),
        join_channel: fields
            .get("join_channel")
            .boolean(report)
            .unwrap_or(defaults.join_channel),
    }
}

/// An http(s) URL the webhook client can use (no credentials, a host).
fn webhook_url(url: &str) -> Option<String> {
    names::http_url(url).or_else(|| Endpoint::parse(url).err())
}

/// [`webhook_url`] for a URL from `${VAR}` or a file: the problem never quotes it
/// ([`Endpoint::parse`] quotes nothing; it passing leaves `http_url` only the whitespace rule).
fn secret_webhook_url(url: &str) -> Option<String> {
    Endpoint::parse(url).err().or_else(|| names::http_url(url))
}

fn format(name: &str) -> Option<String> {
    Format::from_name(name).is_none().then(|| {
        let list: Vec<String> = Format::NAMES.iter().map(|n| format!("\"{n}\"")).collect();
        format!("expected one of {}, got {}", list.join(", "), quote(name))
    })
}

/// A duration, or `0` (no deduplication).
fn dedup_window(node: &Node<'_>, report: &mut Report) -> Option<Duration> {
    match node.given() {
        Some(value) if value.as_i64() == Some(0) || value.as_str() == Some("0") => {
            Some(Duration::ZERO)
        }
        _ => node.duration(report),
    }
}

fn events(node: &Node<'_>, report: &mut Report) -> Option<Vec<String>> {
    let mut events = Vec::new();
    for (event, at) in node.strings(report)? {
        if let Some(problem) = names::line(event) {
            report.error(&at, problem);
            continue;
        }
        if !EVENTS.contains(&event) {
            let hint = did_you_mean(event, EVENTS)
                .map(|close| format!("; did you mean \"{close}\"?"))
                .unwrap_or_default();
            report.warn(
                &at,
                format!(
                    "{} is not an event codexd emits, so it never fires{hint}",
                    quote(event)
                ),
            );
        }
        events.push(event.to_owned());
    }
    Some(events)
}
