//! The top level of the file: Culture's keys plus codexd's own sections, assembled into a
//! [`Config`].
//!
//! | key              | default            | rule                                                 |
//! |------------------|--------------------|------------------------------------------------------|
//! | `buffer_size`    | `500`              | integer 0..=1000000                                  |
//! | `poll_interval`  | `60`               | number of seconds; `<= 0` disables legacy polling    |
//! | `sleep_start`    | none (`"23:00"`)   | `H:MM` / `HH:MM`, hour 0-23, minute 0-59             |
//! | `sleep_end`      | none (`"08:00"`)   | as `sleep_start`; equal start and end: never sleeps  |
//! | `shutdown_grace` | `10s`              | duration                                             |
//!
//! Sleep schedule: codexd's agents never sleep unless the file sets `sleep_start` or
//! `sleep_end` (Culture's daemon slept 23:00-08:00 by default, which silently idles an
//! always-on agent for nine hours a day). When only one is set, the other takes Culture's
//! default in brackets.
//!
//! Sections (`server`, `supervisor`, `webhooks`, `telemetry`, `attention`, `restart`, `codex`,
//! `admission`, `conversations`, `agents`) and paths (`state_dir`, `control_socket`,
//! `ipc_dir`) are read by their own modules.

use std::time::Duration;

use serde_yaml_ng::Value;

use codexd_actors::runner::admission::AdmissionSettings;
use codexd_actors::runner::conversation::ConversationSettings;

use super::agents::{self, Inherited};
use super::reader::{Keys, MAX_DURATION, Node, Report};
use super::{
    CodexConfig, Config, RestartConfig, SleepWindow, admission, attention, codex, conversations,
    paths, restart, sections, server, telemetry,
};
use crate::env::Env;

const KEYS: Keys = Keys {
    known: &[
        "server",
        "supervisor",
        "webhooks",
        "telemetry",
        "buffer_size",
        "poll_interval",
        "sleep_start",
        "sleep_end",
        "attention",
        "agents",
        "restart",
        "codex",
        "admission",
        "conversations",
        "state_dir",
        "control_socket",
        "ipc_dir",
        "shutdown_grace",
    ],
    ignored: &[],
};

const DEFAULT_BUFFER_SIZE: usize = 500;
const MAX_BUFFER_SIZE: i64 = 1_000_000;
const DEFAULT_SLEEP_START: &str = "23:00";
const DEFAULT_SLEEP_END: &str = "08:00";
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

static EMPTY: Value = Value::Null;

/// Walks the whole document. Always returns a config (defaults where values were wrong);
/// it is only valid when `report` holds no errors.
pub(super) fn config(root: &Node<'_>, env: &Env, report: &mut Report) -> Config {
    let root = match root.given() {
        None | Some(Value::Mapping(_)) => root.clone(),
        Some(_) => {
            let message = "a mapping of top-level keys (server:, agents:, ...)";
            root.expected::<()>(report, message);
            Node::root(&EMPTY)
        }
    };
    let top = root.mapping(report, &KEYS);
    let poll_interval = poll_interval(&top.get("poll_interval"), report);
    let attention_errors = report.error_count();
    let attention = attention::daemon(
        &top.get("attention"),
        &top.get("poll_interval"),
        poll_interval,
        report,
    );
    let attention_valid = report.error_count() == attention_errors;
    let server = server::server(&top.get("server"), env, report);
    let restart = restart::section(&top.get("restart"), &RestartConfig::default(), report);
    let codex = codex::section(
        &top.get("codex"),
        &CodexConfig::default(),
        env,
        true,
        report,
    );
    let admission =
        admission::section(&top.get("admission"), &AdmissionSettings::default(), report);
    let conversations = conversations::section(
        &top.get("conversations"),
        &ConversationSettings::default(),
        report,
    );
    let inherited = Inherited {
        server_name: &server.name,
        admission: &admission,
        conversations: &conversations,
        attention: &attention,
        attention_valid,
        restart: &restart,
        codex: &codex,
    };
    let agents = agents::list(&top.get("agents"), &inherited, env, report);
    Config {
        overseer: sections::overseer(&top.get("supervisor"), report),
        webhooks: sections::webhooks(&top.get("webhooks"), report),
        telemetry: telemetry::section(&top.get("telemetry"), env, report),
        buffer_size: buffer_size(&top.get("buffer_size"), report),
        poll_interval,
        sleep: sleep_window(&top.get("sleep_start"), &top.get("sleep_end"), report),
        state_dir: paths::state_dir(&top.get("state_dir"), env, report),
        control_socket: paths::control_socket(&top.get("control_socket"), env, report),
        ipc_dir: paths::ipc_dir(&top.get("ipc_dir"), env, report),
        shutdown_grace: top
            .get("shutdown_grace")
            .duration(report)
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE),
        server,
        attention,
        restart,
        codex,
        admission,
        conversations,
        agents,
    }
}

fn buffer_size(node: &Node<'_>, report: &mut Report) -> usize {
    let size = node.integer(report, 0, MAX_BUFFER_SIZE, "an integer from 0 to 1000000");
    size.and_then(|size| usize::try_from(size).ok())
        .unwrap_or(DEFAULT_BUFFER_SIZE)
}

/// `poll_interval`: absent → 60 s; `<= 0` → `None` (legacy polling off).
fn poll_interval(node: &Node<'_>, report: &mut Report) -> Option<Duration> {
    if node.given().is_none() {
        return Some(attention::DEFAULT_POLL_INTERVAL);
    }
    let Some(seconds) = node.number(report) else {
        return Some(attention::DEFAULT_POLL_INTERVAL);
    };
    if seconds <= 0.0 {
        return None;
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(interval) if interval <= MAX_DURATION => Some(interval),
        _ => node
            .expected(report, "a number of seconds up to 30 days")
            .or(Some(attention::DEFAULT_POLL_INTERVAL)),
    }
}

fn sleep_window(start: &Node<'_>, end: &Node<'_>, report: &mut Report) -> Option<SleepWindow> {
    if start.given().is_none() && end.given().is_none() {
        return None;
    }
    let start_minute = clock_time(start, DEFAULT_SLEEP_START, report)?;
    let end_minute = clock_time(end, DEFAULT_SLEEP_END, report)?;
    (start_minute != end_minute).then_some(SleepWindow {
        start_minute,
        end_minute,
    })
}

fn clock_time(node: &Node<'_>, default: &str, report: &mut Report) -> Option<u16> {
    const WHAT: &str = "a time of day \"HH:MM\" (hour 0-23, minute 0-59)";
    let Some(value) = node.given() else {
        return minutes_after_midnight(default);
    };
    match value.as_str().and_then(minutes_after_midnight) {
        Some(minutes) => Some(minutes),
        None => node.expected(report, WHAT),
    }
}

/// Minutes after midnight of `H:MM` or `HH:MM` (1-2 digit hour 0-23, 1-2 digit minute 0-59).
///
/// | text     | result    |
/// |----------|-----------|
/// | `23:00`  | 1380      |
/// | `8:05`   | 485       |
/// | `24:00`  | none      |
/// | `23:60`  | none      |
/// | `2300`   | none      |
pub(super) fn minutes_after_midnight(text: &str) -> Option<u16> {
    let (hour, minute) = text.trim().split_once(':')?;
    let number = |part: &str, max: u16| {
        let digits_ok = (1..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
        digits_ok
            .then(|| part.parse::<u16>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    Some(number(hour, 23)? * 60 + number(minute, 59)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times() {
        let cases = [
            ("23:00", Some(1380)),
            ("08:00", Some(480)),
            ("8:05", Some(485)),
            ("0:0", Some(0)),
            ("23:59", Some(1439)),
            ("24:00", None),
            ("23:60", None),
            ("2300", None),
            ("23:00:00", None),
            ("-1:00", None),
            ("+1:00", None),
            ("ab:cd", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(minutes_after_midnight(text), want, "{text:?}");
        }
    }
}
