//! `restart:` — the restart / circuit-breaker policy (codexd). At daemon level it overlays the
//! defaults; an agent's partial `restart:` overlays the daemon's, key by key.
//!
//! | key               | default | rule                           |
//! |-------------------|---------|--------------------------------|
//! | `backoff_base`    | `5s`    | duration > 0                   |
//! | `backoff_factor`  | `2.0`   | number >= 1                    |
//! | `backoff_cap`     | `60s`   | duration > 0, >= backoff_base  |
//! | `jitter`          | `0.1`   | number from 0 to 1             |
//! | `max_restarts`    | `3`     | integer >= 1                   |
//! | `window`          | `300s`  | duration > 0                   |
//! | `cooldown`        | `60s`   | duration > 0                   |
//! | `cooldown_cap`    | `30m`   | duration > 0, >= cooldown      |
//! | `stable_after`    | `60s`   | duration > 0                   |
//! | `health_interval` | `24.576s` | duration > 0                 |
//! | `health_timeout`  | `5s`    | duration > 0                   |
//!
//! Durations are humantime strings (`"300s"`, `"5m"`, `"1m 30s"`), at most 30 days.

use std::time::Duration;

use super::RestartConfig;
use super::reader::{Fields, Keys, Node, Report};

const KEYS: Keys = Keys {
    known: &[
        "backoff_base",
        "backoff_factor",
        "backoff_cap",
        "jitter",
        "max_restarts",
        "window",
        "cooldown",
        "cooldown_cap",
        "stable_after",
        "health_interval",
        "health_timeout",
    ],
    ignored: &[],
};

/// Two keys whose merged values must satisfy `low <= high`.
struct Ordered {
    low: &'static str,
    high: &'static str,
    values: fn(&RestartConfig) -> (Duration, Duration),
}

const ORDERED: [Ordered; 2] = [
    Ordered {
        low: "backoff_base",
        high: "backoff_cap",
        values: |c| (c.backoff_base, c.backoff_cap),
    },
    Ordered {
        low: "cooldown",
        high: "cooldown_cap",
        values: |c| (c.cooldown, c.cooldown_cap),
    },
];

/// `restart:` overlaid on `base`. The ordering rules are checked for every pair this map
/// sets at least one key of, on the merged values.
pub(super) fn section(node: &Node<'_>, base: &RestartConfig, report: &mut Report) -> RestartConfig {
    let fields = node.mapping(report, &KEYS);
    let before = report.error_count();
    let duration = |key: &str, report: &mut Report, fallback| {
        fields.get(key).duration(report).unwrap_or(fallback)
    };
    let config = RestartConfig {
        backoff_base: duration("backoff_base", report, base.backoff_base),
        backoff_factor: factor(&fields.get("backoff_factor"), report)
            .unwrap_or(base.backoff_factor),
        backoff_cap: duration("backoff_cap", report, base.backoff_cap),
        jitter: jitter(&fields.get("jitter"), report).unwrap_or(base.jitter),
        max_restarts: max_restarts(&fields.get("max_restarts"), report)
            .unwrap_or(base.max_restarts),
        window: duration("window", report, base.window),
        cooldown: duration("cooldown", report, base.cooldown),
        cooldown_cap: duration("cooldown_cap", report, base.cooldown_cap),
        stable_after: duration("stable_after", report, base.stable_after),
        health_interval: duration("health_interval", report, base.health_interval),
        health_timeout: duration("health_timeout", report, base.health_timeout),
    };
    if report.error_count() == before {
        check_order(&config, &fields, report);
    }
    config
}

fn factor(node: &Node<'_>, report: &mut Report) -> Option<f64> {
    let value = node.number(report)?;
    match value >= 1.0 {
        true => Some(value),
        false => node.expected(report, "a number >= 1"),
    }
}

fn jitter(node: &Node<'_>, report: &mut Report) -> Option<f64> {
    let value = node.number(report)?;
    match (0.0..=1.0).contains(&value) {
        true => Some(value),
        false => node.expected(report, "a number from 0 to 1"),
    }
}

fn max_restarts(node: &Node<'_>, report: &mut Report) -> Option<u32> {
    let value = node.integer(report, 1, i64::from(u32::MAX), "an integer >= 1")?;
    u32::try_from(value).ok()
}

fn check_order(config: &RestartConfig, fields: &Fields<'_>, report: &mut Report) {
    for Ordered { low, high, values } in ORDERED {
        let (low_value, high_value) = values(config);
        if low_value <= high_value {
            continue;
        }
        let (low_text, high_text) = (
            humantime::format_duration(low_value),
            humantime::format_duration(high_value),
        );
        if fields.has(high) {
            report.error(
                fields.get(high).at(),
                format!("must be >= {low} ({low_text}), got {high_text}"),
            );
        } else if fields.has(low) {
            report.error(
                fields.get(low).at(),
                format!("must be <= {high} ({high_text}), got {low_text}"),
            );
        }
    }
}
