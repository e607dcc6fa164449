//! `codexd watch [<nick>]`: follows the daemon's live audit records. Piped (or with
//! `--json`) each record is printed as the JSON line the daemon sent; on a terminal each
//! becomes a readable line ([`render`]), with every control character of its text escaped,
//! so nothing a remote user or the model wrote can drive the operator's terminal.
//!
//! Runs until interrupted; a daemon that goes away ends it with exit 3.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use jiff::tz::TimeZone;
use serde_json::Value;

use super::{REQUEST_TIMEOUT, exit, fail, refusal, unreachable};
use crate::control::{self, Request};

/// Longest text shown on a terminal line, in characters; the rest is counted.
const SHOWN_CHARS: usize = 200;

/// `codexd watch`: streams until the daemon goes (exit 3) or stdout closes (exit 0).
pub async fn watch(socket: &Path, nick: Option<String>, json: bool) -> ExitCode {
    let request = Request::Watch { nick: nick.clone() };
    let mut watching = match control::watch(socket, &request, REQUEST_TIMEOUT).await {
        Ok(watching) => watching,
        Err(error) => return unreachable(error),
    };
    if !watching.answer.ok {
        return refusal(watching.answer);
    }
    let readable = !json && std::io::stdout().is_terminal();
    if readable {
        let who = nick.as_deref().unwrap_or("every agent");
        eprintln!("watching {who} (Ctrl-C stops)");
    }
    let zone = TimeZone::system();
    loop {
        let line = match watching.next_line().await {
            Ok(line) => line,
            Err(error) => return fail(exit::UNREACHABLE, &[error.to_string()]),
        };
        let shown = match readable {
            true => render(&line, &zone),
            false => line,
        };
        let mut stdout = std::io::stdout();
        if writeln!(stdout, "{shown}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return ExitCode::from(exit::OK); // the reader went away (`| head`)
        }
    }
}

/// One streamed line as a terminal line: `HH:MM:SS <agent>  <what happened>`, the time in
/// `zone`.
///
/// | `event_type`    | shown                                                    |
/// |-----------------|----------------------------------------------------------|
/// | `message.in`    | `← ori in #dev: "…"` (a DM: `← ori (dm): "…"`; not journaled: `[refused_rate]`) |
/// | `turn.start`    | `turn start #dev`                                        |
/// | `tool.call`     | `tool irc_send ok 12ms`                                  |
/// | `message.out`   | `→ #dev "…"` (`notice`, `queued`, `3 lines` when so)     |
/// | `turn.end`      | `turn done #dev 3.2s, 1200 in / 80 out tokens` (`turn error …: why`, `turn timeout …`) |
/// | `watch.skipped` | `-- 12 events skipped (this watcher fell behind)`        |
/// | other, or not JSON | the event type and its payload, escaped               |
pub fn render(line: &str, zone: &TimeZone) -> String {
    let Ok(record) = serde_json::from_str::<Value>(line) else {
        return escape(line);
    };
    let time = clock_time(record["ts"].as_str().unwrap_or_default(), zone);
    let agent = escape(record["agent"].as_str().unwrap_or_default());
    let p = &record["payload"];
    let what = match record["event_type"].as_str().unwrap_or_default() {
        "message.in" => message_in(p),
        "turn.start" => format!("turn start {}", text(&p["conversation"])),
        "tool.call" => format!(
            "tool {} {} {}ms",
            text(&p["tool"]),
            text(&p["outcome"]),
            p["duration_ms"].as_u64().unwrap_or(0)
        ),
        "message.out" => message_out(p),
        "turn.end" => turn_end(p),
        "watch.skipped" => {
            let skipped = p["skipped"].as_u64().unwrap_or(0);
            return format!("{time} -- {skipped} events skipped (this watcher fell behind)");
        }
        other => format!("{} {}", escape(other), quoted(&p.to_string())),
    };
    format!("{time} {agent:<12} {what}")
}

fn message_in(p: &Value) -> String {
    let from = text(&p["from"]);
    let said = quoted(p["text"].as_str().unwrap_or_default());
    let mut shown = match p["kind"].as_str().unwrap_or_default() {
        "dm" => format!("← {from} (dm): {said}"),
        "invite" => format!("← {from} invites to {}: {said}", text(&p["target"])),
        _ => format!("← {from} in {}: {said}", text(&p["target"])),
    };
    match p["outcome"].as_str() {
        Some("journaled") | None => {}
        Some(outcome) => shown.push_str(&format!(" [{}]", escape(outcome))),
    }
    shown
}

fn message_out(p: &Value) -> String {
    let mut shown = format!("→ {}", text(&p["target"]));
    if p["command"] == "NOTICE" {
        shown.push_str(" notice");
    }
    shown.push(' ');
    shown.push_str(&quoted(p["text"].as_str().unwrap_or_default()));
    if let Some(lines @ 2..) = p["lines"].as_u64() {
        shown.push_str(&format!(" ({lines} lines)"));
    }
    if p["queued"] == true {
        shown.push_str(" (queued: IRC is down)");
    }
    shown
}

fn turn_end(p: &Value) -> String {
    let took = p["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let conversation = text(&p["conversation"]);
    match p["outcome"].as_str().unwrap_or_default() {
        "success" => {
            let tokens = match (p["tokens_input"].as_u64(), p["tokens_output"].as_u64()) {
                (Some(input), Some(output)) => format!("{input} in / {output} out tokens"),
                _ => "tokens not reported".to_owned(),
            };
            format!("turn done {conversation} {took:.1}s, {tokens}")
        }
        outcome => {
            let why = p["error"]
                .as_str()
                .map(|e| format!(": {}", escape(e)))
                .unwrap_or_default();
            format!("turn {} {conversation} {took:.1}s{why}", escape(outcome))
        }
    }
}

/// `ts` (RFC 3339) as `HH:MM:SS` in `zone`; `??:??:??` when it is not a timestamp.
fn clock_time(ts: &str, zone: &TimeZone) -> String {
    match ts.parse::<jiff::Timestamp>() {
        Ok(at) => at.to_zoned(zone.clone()).strftime("%H:%M:%S").to_string(),
        Err(_) => "??:??:??".to_owned(),
    }
}

/// A JSON string field, escaped (`-` when absent).
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| "-".to_owned(), escape)
}

/// `text` in double quotes: escaped, its first [`SHOWN_CHARS`] characters and a count of
/// the rest.
fn quoted(text: &str) -> String {
    let total = text.chars().count();
    let shown: String = text.chars().take(SHOWN_CHARS).collect();
    let more = match total.saturating_sub(SHOWN_CHARS) {
        0 => String::new(),
        rest => format!("… (+{rest} chars)"),
    };
    format!("\"{}\"{more}", escape(&shown).replace('"', "\\\""))
}

/// `text` safe for a terminal: control characters (C0, DEL, C1: CR, LF, ESC, CTCP's
/// `\x01`, …) and the bidirectional overrides that reorder what is shown become escapes;
/// a backslash is doubled so an escape cannot be faked.
///
/// | text             | shown           |
/// |------------------|-----------------|
/// | `a\r\nQUIT`      | `a\r\nQUIT`     (as four visible characters `\`, `r`, `\`, `n`) |
/// | `\x1b[2J`        | `\x1b[2J`       |
/// | `\x01VERSION\x01`| `\x01VERSION\x01` |
/// | `abc\u{202e}def` | `abc\u{202e}def` |
/// | `a\b`            | `a\\b`          |
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_bidi_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The invisible characters that reorder or hide text (Unicode bidi controls).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
