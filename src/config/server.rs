//! `server:` — Culture's three keys plus codexd's connection settings for the `irc` actor.
//!
//! | key                         | default     | rule                                           |
//! |-----------------------------|-------------|------------------------------------------------|
//! | `name`                      | `culture`   | nick characters; every nick starts `name-`     |
//! | `host`                      | `localhost` | non-empty, no whitespace                       |
//! | `port`                      | `6667`      | integer 1..=65535                              |
//! | `tls`                       | `false`     | TLS with verified certificates                 |
//! | `tls_ca_file`               | none        | PEM file of extra CAs to trust (`~` expanded)  |
//! | `sasl.username`/`.password` | none        | SASL PLAIN; both or neither; never logged      |
//! | `sasl.password_file`        | none        | the password from a file (see `secrets`)       |
//! | `trace_tag`                 | `auto`      | `auto` or a tag name ending in `traceparent`   |
//! | `keepalive`                 | `90s`       | our PING after this much silence               |
//! | `keepalive_timeout`         | `60s`       | no answer to it this long → dead link          |
//! | `registration_timeout`      | `30s`       | connect + register deadline                    |
//! | `reconnect_max`             | `60s`       | backoff cap (it starts at 1 s and doubles)     |
//! | `flood_burst`               | `10`        | lines sent back to back, integer >= 1          |
//! | `flood_rate`                | `2`         | sustained lines per second, `0` = unlimited    |
//! | `send_queue`                | `200`       | lines held while disconnected, integer >= 1    |

use std::time::Duration;

use codexd_actors::irc::SaslPlain;

use super::reader::{Ignored, Keys, Node, Report};
use super::{ServerConfig, names, paths, secrets};
use crate::env::Env;

const SERVER_KEYS: Keys = Keys {
    known: &[
        "name",
        "host",
        "port",
        "tls",
        "tls_ca_file",
        "sasl",
        "trace_tag",
        "keepalive",
        "keepalive_timeout",
        "registration_timeout",
        "reconnect_max",
        "flood_burst",
        "flood_rate",
        "send_queue",
    ],
    ignored: &[
        Ignored {
            key: "archived",
            why: "Culture's archive flag; codexd hosts every listed agent",
        },
        Ignored {
            key: "archived_at",
            why: "Culture archive metadata",
        },
        Ignored {
            key: "archived_reason",
            why: "Culture archive metadata",
        },
    ],
};

const SASL_KEYS: Keys = Keys {
    known: &["username", "password", "password_file"],
    ignored: &[],
};

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            name: "culture".to_owned(),
            host: "localhost".to_owned(),
            port: 6667,
            tls: false,
            tls_ca_file: None,
            sasl: None,
            trace_tag: None,
            keepalive: Duration::from_secs(90),
            keepalive_timeout: Duration::from_secs(60),
            registration_timeout: Duration::from_secs(30),
            reconnect_max: Duration::from_secs(60),
            flood_burst: 10,
            flood_rate: 2.0,
            send_queue: 200,
        }
    }
}

/// `server:`.
pub(super) fn server(node: &Node<'_>, env: &Env, report: &mut Report) -> ServerConfig {
    let fields = node.mapping(report, &SERVER_KEYS);
    let d = ServerConfig::default();
    let count = |key: &str, report: &mut Report, max: i64| {
        fields
            .get(key)
            .integer(report, 1, max, &format!("an integer from 1 to {max}"))
    };
    let duration = |key: &str, report: &mut Report, fallback: Duration| {
        fields.get(key).duration(report).unwrap_or(fallback)
    };
    ServerConfig {
        name: fields
            .get("name")
            .string_where(report, names::server_name)
            .map_or(d.name, str::to_owned),
        host: fields
            .get("host")
            .string_where(report, host)
            .map_or(d.host, str::to_owned),
        port: count("port", report, 65535)
            .and_then(|port| u16::try_from(port).ok())
            .unwrap_or(d.port),
        tls: fields.get("tls").boolean(report).unwrap_or(d.tls),
        tls_ca_file: paths::path(&fields.get("tls_ca_file"), env, report),
        sasl: sasl(&fields.get("sasl"), env, report),
        trace_tag: fields
            .get("trace_tag")
            .string_where(report, trace_tag)
            .filter(|tag| *tag != "auto")
            .map(str::to_owned),
        keepalive: duration("keepalive", report, d.keepalive),
        keepalive_timeout: duration("keepalive_timeout", report, d.keepalive_timeout),
        registration_timeout: duration("registration_timeout", report, d.registration_timeout),
        reconnect_max: duration("reconnect_max", report, d.reconnect_max),
        flood_burst: count("flood_burst", report, 10_000)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(d.flood_burst),
        flood_rate: flood_rate(&fields.get("flood_rate"), report).unwrap_or(d.flood_rate),
        send_queue: count("send_queue", report, 100_000)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(d.send_queue),
    }
}

fn host(host: &str) -> Option<String> {
    match host.is_empty() {
        true => Some("must not be empty".to_owned()),
        false => host
            .chars()
            .any(|c| c.is_whitespace() || c == '\0')
            .then(|| "must not contain whitespace or NUL".to_owned()),
    }
}

/// `auto`, or an IRCv3 tag name (optionally `+`-prefixed) ending in `traceparent`.
fn trace_tag(tag: &str) -> Option<String> {
    if tag == "auto" {
        return None;
    }
    let name = tag.strip_prefix('+').unwrap_or(tag);
    let legal = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/'));
    match legal && name.ends_with("traceparent") {
        true => None,
        false => Some(
            "must be \"auto\" or a tag name ending in \"traceparent\" \
             (e.g. \"+culture.dev/traceparent\")"
                .to_owned(),
        ),
    }
}

fn flood_rate(node: &Node<'_>, report: &mut Report) -> Option<f64> {
    let rate = node.number(report)?;
    if rate < 0.0 {
        report.error(node.at(), "must be 0 (unlimited) or more lines per second");
        return None;
    }
    Some(rate)
}

/// `sasl: {username, password | password_file}`: both non-empty single lines. The password
/// may come from `${VAR}` or a file ([`secrets`]).
fn sasl(node: &Node<'_>, env: &Env, report: &mut Report) -> Option<SaslPlain> {
    if !node.is_present() {
        return None;
    }
    let fields = node.mapping(report, &SASL_KEYS);
    let missing = |key: &str, report: &mut Report| {
        report.error(
            node.at(),
            format!("needs both username and password (missing {key})"),
        );
    };
    let username = match fields.has("username") {
        false => {
            missing("username", report);
            None
        }
        true => username(&fields.get("username"), report),
    };
    let given = match fields.has("password") {
        true => fields.get("password"),
        false => fields.get("password_file"),
    };
    let password = match (secrets::has(&fields, "password"), given.given()) {
        (false, _) => {
            missing("password", report);
            None
        }
        (true, None) => {
            report.error(given.at(), "must be a string");
            None
        }
        (true, Some(_)) => secrets::secret(&fields, "password", env, report),
    };
    // Never echo the password: the problem names only what is wrong with it.
    let password = password.filter(|text| match names::line(text) {
        Some(problem) => {
            report.error(given.at(), problem);
            false
        }
        None => true,
    });
    Some(SaslPlain {
        username: username?,
        password: password?,
    })
}

fn username(node: &Node<'_>, report: &mut Report) -> Option<String> {
    match node.given() {
        Some(serde_yaml_ng::Value::String(text)) => match names::line(text) {
            Some(problem) => {
                report.error(node.at(), problem);
                None
            }
            None => Some(text.clone()),
        },
        _ => {
            report.error(node.at(), "must be a string");
            None
        }
    }
}
