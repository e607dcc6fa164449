//! The HTTP body of one alert, byte for byte (pure).
//!
//! | format    | body                                                                  |
//! |-----------|-----------------------------------------------------------------------|
//! | `discord` | `{"content": "<message>"}` — Culture's body exactly                   |
//! | `slack`   | `{"text": "<message>"}`                                               |
//! | `generic` | `{"nick": …, "event": …, "message": …, "trace_id": …, "time": …}`     |
//!
//! Every body is written the way Culture's Python writes it (`json.dumps` defaults):
//! `", "` and `": "` separators and non-ASCII escaped as lowercase `\uXXXX` (surrogate
//! pairs above U+FFFF), so a Discord receiver sees exactly what the Python daemon sent.
//! `trace_id` is the alert's 32-hex trace id or `null`; `time` is RFC 3339 UTC (seconds).

use std::fmt::Write as _;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::Alert;

/// The body format of HTTP alerts (`webhooks.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{"content": msg}` (Culture's, and Discord's).
    #[default]
    Discord,
    /// `{"text": msg}` (Slack incoming webhooks).
    Slack,
    /// `{"nick", "event", "message", "trace_id", "time"}`.
    Generic,
}

impl Format {
    /// Every format's config name, in documentation order.
    pub const NAMES: [&'static str; 3] = ["discord", "slack", "generic"];

    /// The format named `name` (`discord`, `slack`, `generic`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "discord" => Some(Self::Discord),
            "slack" => Some(Self::Slack),
            "generic" => Some(Self::Generic),
            _ => None,
        }
    }
}

/// The body for `alert` in `format`; `time` is when it was raised (generic only).
pub fn body(format: Format, alert: &Alert, time: SystemTime) -> String {
    match format {
        Format::Discord => object(&[("content", Some(&alert.message))]),
        Format::Slack => object(&[("text", Some(&alert.message))]),
        Format::Generic => {
            let trace_id = trace_id(alert.trace.traceparent.as_deref());
            let time = humantime::format_rfc3339_seconds(time).to_string();
            object(&[
                ("nick", Some(&alert.nick)),
                ("event", Some(&alert.event.name().to_owned())),
                ("message", Some(&alert.message)),
                ("trace_id", trace_id.as_ref()),
                ("time", Some(&time)),
            ])
        }
    }
}

/// The trace id of a W3C traceparent (`00-<trace id>-<span id>-<flags>`).
fn trace_id(traceparent: Option<&str>) -> Option<String> {
    let id = traceparent?.split('-').nth(1)?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

/// `{"k": "v", "k2": null}` with Python's separators.
fn object(fields: &[(&str, Option<&String>)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        string(&mut out, key);
        out.push_str(": ");
        match value {
            Some(value) => string(&mut out, value),
            None => out.push_str("null"),
        }
    }
    out.push('}');
    out
}

/// A JSON string as Python's `json.dumps(ensure_ascii=True)` writes it.
fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::trace::TraceCtx;
    use crate::webhook::AlertEvent;

    fn alert(message: &str, traceparent: Option<&str>) -> Alert {
        Alert {
            event: AlertEvent::AgentError,
            nick: "spark-codex".to_owned(),
            message: message.to_owned(),
            trace: TraceCtx {
                traceparent: traceparent.map(str::to_owned),
                tracestate: None,
            },
        }
    }

    #[test]
    fn bodies_are_byte_exact() {
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let table: [(Format, &str, Option<&str>, &str); 7] = [
            (
                Format::Discord,
                "Agent spark-codex crashed (exit -15).",
                None,
                r#"{"content": "Agent spark-codex crashed (exit -15)."}"#,
            ),
            (
                Format::Discord,
                "Agent a has crashed 3 times in 300s — escalating",
                None,
                r#"{"content": "Agent a has crashed 3 times in 300s \u2014 escalating"}"#,
            ),
            (
                Format::Discord,
                "quote \" back \\ nl \n tab \t bell \u{7} emoji 😀",
                None,
                r#"{"content": "quote \" back \\ nl \n tab \t bell \u0007 emoji \ud83d\ude00"}"#,
            ),
            (Format::Slack, "hi", None, r#"{"text": "hi"}"#),
            (
                Format::Generic,
                "hi",
                None,
                r#"{"nick": "spark-codex", "event": "agent_error", "message": "hi", "trace_id": null, "time": "2026-01-01T00:00:00Z"}"#,
            ),
            (
                Format::Generic,
                "hi",
                Some(tp),
                r#"{"nick": "spark-codex", "event": "agent_error", "message": "hi", "trace_id": "0af7651916cd43dd8448eb211c80319c", "time": "2026-01-01T00:00:00Z"}"#,
            ),
            (
                Format::Generic,
                "hi",
                Some("garbage"),
                r#"{"nick": "spark-codex", "event": "agent_error", "message": "hi", "trace_id": null, "time": "2026-01-01T00:00:00Z"}"#,
            ),
        ];
        for (format, message, traceparent, want) in table {
            assert_eq!(
                body(format, &alert(message, traceparent), t),
                want,
                "{format:?} {message:?}"
            );
        }
    }

    #[test]
    fn bodies_are_valid_json_with_the_message() {
        let message = "ünïcode \"and\" 😀\u{0}";
        for format in [Format::Discord, Format::Slack, Format::Generic] {
            let text = body(format, &alert(message, None), SystemTime::now());
            let value: serde_json::Value = serde_json::from_str(&text).expect("json");
            let field = match format {
                Format::Discord => "content",
                Format::Slack => "text",
                Format::Generic => "message",
            };
            assert_eq!(value[field], message, "{format:?}");
        }
    }

    #[test]
    fn format_names_round_trip() {
        for name in Format::NAMES {
            let format = Format::from_name(name).expect(name);
            let json = serde_json::to_value(format).expect("serializes");
            assert_eq!(json, name);
        }
        assert_eq!(Format::from_name("teams"), None);
        assert_eq!(Format::default(), Format::Discord);
    }
}
