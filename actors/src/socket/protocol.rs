//! Culture's IPC wire format, as pure functions: one request line becomes a typed
//! [`Request`] or an error [`Response`]; responses and whispers become one JSON line.
//!
//! | line                               | outcome                                              |
//! |------------------------------------|------------------------------------------------------|
//! | blank, or JSON `null`              | ignored (no answer), as Culture does                 |
//! | not JSON                           | `ok:false`, `invalid JSON: …` (Culture: hang-up)     |
//! | JSON but not an object             | `ok:false`, `request must be a JSON object, got …`   |
//! | unknown or missing `type`          | `ok:false`, `Unknown message type: '<type>'`         |
//! | a field missing (falsy)            | Culture's exact error, e.g. `Missing 'channel'`      |
//! | a field of the wrong type          | `ok:false`, `'<field>' must be …`                    |
//!
//! `id` is echoed verbatim (missing → `""`). Output is compact and ASCII-only, with
//! non-ASCII escaped as `\uXXXX`, byte for byte what Python's `json.dumps` writes.

use serde::Serialize;
use serde_json::{Map, Value};

/// Culture's default `limit` for reads.
const DEFAULT_LIMIT: usize = 50;

/// Culture's error strings.
pub(crate) const MISSING_CHANNEL: &str = "Missing 'channel'";
pub(crate) const MISSING_MESSAGE: &str = "Missing 'message'";
const MISSING_TARGET: &str = "Missing 'target'";
const MISSING_CHANNEL_THREAD: &str = "Missing 'channel' or 'thread'";
const MISSING_CHANNEL_THREAD_MESSAGE: &str = "Missing 'channel', 'thread', or 'message'";
const CHANNEL_PREFIX: &str = "Channel name must start with '#'";

/// One request, validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// Echoed in the response.
    pub(crate) id: Value,
    /// What to do.
    pub(crate) verb: Verb,
}

/// Every request type of Culture's IPC, with its fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verb {
    IrcSend {
        channel: String,
        message: String,
    },
    IrcRead {
        channel: String,
        limit: usize,
    },
    IrcJoin {
        channel: String,
    },
    IrcPart {
        channel: String,
    },
    IrcChannels,
    IrcWho {
        target: String,
    },
    IrcTopic {
        channel: String,
        topic: Option<String>,
    },
    IrcAsk {
        channel: String,
        message: String,
    },
    ThreadCreate {
        channel: String,
        thread: String,
        message: String,
    },
    ThreadReply {
        channel: String,
        thread: String,
        message: String,
    },
    Threads {
        channel: String,
    },
    ThreadClose {
        channel: String,
        thread: String,
        summary: String,
    },
    ThreadRead {
        channel: String,
        thread: String,
        limit: usize,
    },
    /// `conversation`: `#dev`, `#dev thread:x`, `DM:ori`; none: the caller's (module docs
    /// of `verbs`).
    Compact {
        conversation: Option<String>,
    },
    Clear {
        conversation: Option<String>,
    },
    Status {
        query: bool,
    },
    Pause,
    Resume,
    Shutdown,
    /// codexd: start a repository job (the agent's `repo` child).
    RepoRun(RepoRun),
    /// codexd: stop a repository job.
    RepoCancel {
        job: u64,
    },
    /// codexd: the repository jobs queued and running.
    RepoJobs,
}

/// `repo_run`'s fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepoRun {
    pub(crate) remote: String,
    pub(crate) branch: String,
    pub(crate) task: String,
    pub(crate) base: Option<String>,
    /// Where progress and the result go.
    pub(crate) channel: String,
}

impl Verb {
    /// The wire name (`type`).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Verb::IrcSend { .. } => "irc_send",
            Verb::IrcRead { .. } => "irc_read",
            Verb::IrcJoin { .. } => "irc_join",
            Verb::IrcPart { .. } => "irc_part",
            Verb::IrcChannels => "irc_channels",
            Verb::IrcWho { .. } => "irc_who",
            Verb::IrcTopic { .. } => "irc_topic",
            Verb::IrcAsk { .. } => "irc_ask",
            Verb::ThreadCreate { .. } => "irc_thread_create",
            Verb::ThreadReply { .. } => "irc_thread_reply",
            Verb::Threads { .. } => "irc_threads",
            Verb::ThreadClose { .. } => "irc_thread_close",
            Verb::ThreadRead { .. } => "irc_thread_read",
            Verb::Compact { .. } => "compact",
            Verb::Clear { .. } => "clear",
            Verb::Status { .. } => "status",
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Shutdown => "shutdown",
            Verb::RepoRun(_) => "repo_run",
            Verb::RepoCancel { .. } => "repo_cancel",
            Verb::RepoJobs => "repo_jobs",
        }
    }
}

/// What a request line turned into.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    /// Nothing to answer (blank line or `null`).
    Ignore,
    /// A valid request.
    Request(Request),
    /// An error answer for a line that is not a valid request.
    Reject(Response),
}

/// One answer line: `{"type":"response","id":…,"ok":…,"data"?,"error"?,"warnings"?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Response {
    #[serde(rename = "type")]
    kind: &'static str,
    id: Value,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

impl Response {
    /// `ok: true`, with `data` when given.
    pub(crate) fn ok(id: Value, data: Option<Value>) -> Self {
        Self {
            kind: "response",
            id,
            ok: true,
            data,
            error: None,
            warnings: None,
        }
    }

    /// `ok: false` with `error`.
    pub(crate) fn error(id: Value, error: impl Into<String>) -> Self {
        Self {
            kind: "response",
            id,
            ok: false,
            data: None,
            error: Some(error.into()),
            warnings: None,
        }
    }

    /// Adds `warnings` (only when there are any, as Culture does).
    pub(crate) fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        if !warnings.is_empty() {
            self.warnings = Some(warnings);
        }
        self
    }

    /// Whether it reports success.
    pub(crate) fn is_ok(&self) -> bool {
        self.ok
    }

    /// The error text, if it failed.
    pub(crate) fn error_text(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The payload, if any.
    pub(crate) fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }

    /// The warnings, if any.
    pub(crate) fn warnings(&self) -> &[String] {
        self.warnings.as_deref().unwrap_or_default()
    }
}

/// A whisper line: `{"type":"whisper","message":…,"whisper_type":…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WhisperLine<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) message: &'a str,
    pub(crate) whisper_type: &'a str,
}

/// Serialises `value` as one line the way Python's `json.dumps(…, separators=(",", ":"))`
/// does: compact, non-ASCII as `\uXXXX` (UTF-16 surrogate pairs above U+FFFF), then `\n`.
pub(crate) fn encode_line(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    // Serialising our own structs of strings, numbers and JSON values cannot fail.
    let _ = value.serialize(&mut serializer);
    out.push(b'\n');
    out
}

/// serde_json's compact formatter with Python's `ensure_ascii=True`.
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (at, ch) in fragment.char_indices() {
            if ch.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..at])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = at + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Parses one line (without its `\n`).
pub(crate) fn parse(line: &[u8]) -> Parsed {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Ignore;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => return Parsed::Reject(Response::error("".into(), invalid_json(&error))),
    };
    let object = match value {
        Value::Null => return Parsed::Ignore,
        Value::Object(object) => object,
        other => {
            let message = format!("request must be a JSON object, got {}", kind_of(&other));
            return Parsed::Reject(Response::error("".into(), message));
        }
    };
    let id = object.get("id").cloned().unwrap_or_else(|| "".into());
    match verb(&object) {
        Ok(verb) => Parsed::Request(Request { id, verb }),
        Err(error) => Parsed::Reject(Response::error(id, error)),
    }
}

fn invalid_json(error: &serde_json::Error) -> String {
    format!("invalid JSON: {error}")
}

/// A JSON value's kind, for error messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The request fields of one object, checked the way Culture's handlers check them.
pub(crate) fn verb(object: &Map<String, Value>) -> Result<Verb, String> {
    let f = Fields(object);
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        None | Some(Value::Null) => "",
        Some(other) => return Err(format!("Unknown message type: {}", py_repr(other))),
    };
    Ok(match kind {
        "irc_send" | "irc_ask" => {
            let channel = f.required("channel", MISSING_CHANNEL)?;
            let message = f.text("message")?.filter(|m| !m.trim().is_empty());
            let message = message.ok_or(MISSING_MESSAGE)?;
            match kind {
                "irc_send" => Verb::IrcSend { channel, message },
                _ => Verb::IrcAsk { channel, message },
            }
        }
        "irc_read" => {
            let limit = f.limit()?;
            let channel = f.required("channel", MISSING_CHANNEL)?;
            Verb::IrcRead { channel, limit }
        }
        "irc_join" => Verb::IrcJoin {
            channel: f.channel()?,
        },
        "irc_part" => Verb::IrcPart {
            channel: f.channel()?,
        },
        "irc_channels" => Verb::IrcChannels,
        "irc_who" => Verb::IrcWho {
            target: f.required("target", MISSING_TARGET)?,
        },
        "irc_topic" => Verb::IrcTopic {
            channel: f.channel()?,
            topic: f.text_or_null("topic")?,
        },
        "irc_thread_create" | "irc_thread_reply" => {
            let (channel, thread, message) =
                (f.text("channel")?, f.text("thread")?, f.text("message")?);
            let (Some(channel), Some(thread), Some(message)) = (channel, thread, message) else {
                return Err(MISSING_CHANNEL_THREAD_MESSAGE.to_owned());
            };
            match kind {
                "irc_thread_create" => Verb::ThreadCreate {
                    channel,
                    thread,
                    message,
                },
                _ => Verb::ThreadReply {
                    channel,
                    thread,
                    message,
                },
            }
        }
        "irc_threads" => Verb::Threads {
            channel: f.required("channel", MISSING_CHANNEL)?,
        },
        "irc_thread_close" => {
            let (channel, thread) = f.channel_and_thread()?;
            let summary = f.text_or_null("summary")?.unwrap_or_default();
            Verb::ThreadClose {
                channel,
                thread,
                summary,
            }
        }
        "irc_thread_read" => {
            let limit = f.limit()?;
            let (channel, thread) = f.channel_and_thread()?;
            Verb::ThreadRead {
                channel,
                thread,
                limit,
            }
        }
        "compact" => Verb::Compact {
            conversation: f.text_or_null("conversation")?,
        },
        "clear" => Verb::Clear {
            conversation: f.text_or_null("conversation")?,
        },
        "status" => Verb::Status {
            query: f.flag("query")?,
        },
        "pause" => Verb::Pause,
        "resume" => Verb::Resume,
        "shutdown" => Verb::Shutdown,
        "repo_run" => Verb::RepoRun(RepoRun {
            remote: f.required("remote", "Missing 'remote'")?,
            branch: f.required("branch", "Missing 'branch'")?,
            task: f.required("task", "Missing 'task'")?,
            base: f.text("base")?,
            channel: f.required("channel", MISSING_CHANNEL)?,
        }),
        "repo_cancel" => Verb::RepoCancel { job: f.job()? },
        "repo_jobs" => Verb::RepoJobs,
        other => return Err(format!("Unknown message type: {}", py_str_repr(other))),
    })
}

/// Field access with Culture's truthiness rules and clear type errors.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    /// A text field: `None` when absent or falsy (`null`, `""`, `false`, `0`, `[]`, `{}`),
    /// an error when truthy but not a string.
    fn text(&self, name: &str) -> Result<Option<String>, String> {
        match self.0.get(name) {
            Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
            None => Ok(None),
            Some(value) if is_falsy(value) => Ok(None),
            Some(value) => Err(format!("'{name}' must be a string, got {}", kind_of(value))),
        }
    }

    /// A text field that must be present (truthy).
    fn required(&self, name: &str, missing: &str) -> Result<String, String> {
        self.text(name)?.ok_or_else(|| missing.to_owned())
    }

    /// `channel`, which must start with `#` (join, part, topic).
    fn channel(&self) -> Result<String, String> {
        let channel = self.required("channel", MISSING_CHANNEL)?;
        match channel.starts_with('#') {
            true => Ok(channel),
            false => Err(CHANNEL_PREFIX.to_owned()),
        }
    }

    fn channel_and_thread(&self) -> Result<(String, String), String> {
        match (self.text("channel")?, self.text("thread")?) {
            (Some(channel), Some(thread)) => Ok((channel, thread)),
            _ => Err(MISSING_CHANNEL_THREAD.to_owned()),
        }
    }

    /// An optional string where `null` means absent (`topic`, `summary`); `""` is kept.
    fn text_or_null(&self, name: &str) -> Result<Option<String>, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(value) => Err(format!("'{name}' must be a string, got {}", kind_of(value))),
        }
    }

    /// `limit`: a positive integer (or a string of one, which Python's `int()` accepts);
    /// absent or `null` means 50.
    fn limit(&self) -> Result<usize, String> {
        let value = match self.0.get("limit") {
            None | Some(Value::Null) => return Ok(DEFAULT_LIMIT),
            Some(value) => value,
        };
        let parsed = match value {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 1.0)
                    .map(|f| f as u64)
            }),
            Value::String(text) => text.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed.filter(|n| *n >= 1) {
            Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            None => Err(format!("'limit' must be a positive integer, got {value}")),
        }
    }

    /// `job`: a job id, as a number or a string of one.
    fn job(&self) -> Result<u64, String> {
        let value = self.0.get("job").ok_or("Missing 'job'")?;
        let id = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        id.ok_or_else(|| format!("'job' must be a job id (a positive integer), got {value}"))
    }

    /// A boolean flag (`query`); absent or `null` is false.
    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(value) => Err(format!("'{name}' must be true or false, got {value}")),
        }
    }
}

/// Python's truthiness for JSON values.
fn is_falsy(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Python's `repr()` of a JSON value, for `Unknown message type: …`.
fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::String(text) => py_str_repr(text),
        other => other.to_string(),
    }
}

/// Python's `repr()` of a string: single quotes unless the text has a `'` and no `"`;
/// backslash, the quote and control characters escaped.
fn py_str_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
