//! `attention:` at daemon level (with Culture's legacy `poll_interval` migration) and the
//! per-agent `attention:` / `attention_overrides:` overlay, both validated at load time.
//!
//! ```yaml
//! attention:
//!   enabled: true          # default true
//!   tick_s: 5              # default 5, > 0, <= the smallest band interval
//!   thread_window_s: 1800  # default 1800, >= 0
//!   bands:                 # any subset; each band given REPLACES that band
//!     hot:  { interval_s: 30,  hold_s: 120 }
//!     warm: { interval_s: 120, hold_s: 300 }
//!     cool: { interval_s: 300, hold_s: 600 }
//!     idle: { interval_s: 600 }   # hold_s: null or absent (ignored with a warning otherwise)
//! ```

use std::time::Duration;

use super::reader::{Fields, Keys, MAX_DURATION, Node, Report};
use super::{AttentionConfig, Band, Bands};

const KEYS: Keys = Keys {
    known: &["enabled", "tick_s", "thread_window_s", "bands"],
    ignored: &[],
};
const BAND_NAMES: Keys = Keys {
    known: &["hot", "warm", "cool", "idle"],
    ignored: &[],
};
const BAND_KEYS: Keys = Keys {
    known: &["interval_s", "hold_s"],
    ignored: &[],
};

/// Culture's legacy `poll_interval` default.
pub(super) const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

impl Default for Bands {
    /// HOT 30/120, WARM 120/300, COOL 300/600, IDLE 600.
    fn default() -> Self {
        let band = |interval, hold: Option<u64>| Band {
            interval: Duration::from_secs(interval),
            hold: hold.map(Duration::from_secs),
        };
        Bands {
            hot: band(30, Some(120)),
            warm: band(120, Some(300)),
            cool: band(300, Some(600)),
            idle: band(600, None),
        }
    }
}

impl Default for AttentionConfig {
    /// Enabled, tick 5 s, thread window 1800 s, default bands.
    fn default() -> Self {
        AttentionConfig {
            enabled: true,
            tick: Duration::from_secs(5),
            thread_window: Duration::from_secs(1800),
            bands: Bands::default(),
        }
    }
}

/// The daemon-level attention. When the top level has no `attention` key at all (an explicit
/// `attention: null` or `{}` does not count), the legacy poll interval is migrated into the
/// default bands; `legacy` is `None` when `poll_interval <= 0`, which leaves them as they are.
pub(super) fn daemon(
    node: &Node<'_>,
    poll_interval: &Node<'_>,
    legacy: Option<Duration>,
    report: &mut Report,
) -> AttentionConfig {
    let defaults = AttentionConfig::default();
    if node.is_present() {
        let before = report.error_count();
        let fields = node.mapping(report, &KEYS);
        let config = overlay(&fields, &defaults, report);
        if report.error_count() == before {
            check(&config, &fields, report);
        }
        return config;
    }
    let Some(legacy) = legacy else {
        return defaults;
    };
    let config = AttentionConfig {
        bands: migrate(defaults.bands, legacy),
        ..defaults
    };
    if config.tick > smallest_interval(&config.bands) {
        let message = format!(
            "{} s is shorter than the default attention tick_s ({} s); use at least {} (0 disables legacy polling) or add an attention: block",
            seconds(legacy),
            seconds(config.tick),
            seconds(config.tick),
        );
        report.error(poll_interval.at(), message);
    }
    config
}

/// One agent's attention: the daemon's, overlaid with the agent's map when it has one. The
/// result is validated unless the daemon's own attention was already reported invalid.
pub(super) fn agent(
    node: &Node<'_>,
    daemon: &AttentionConfig,
    daemon_valid: bool,
    report: &mut Report,
) -> AttentionConfig {
    let before = report.error_count();
    let fields = node.mapping(report, &KEYS);
    if fields.is_empty() {
        return *daemon;
    }
    let config = overlay(&fields, daemon, report);
    if daemon_valid && report.error_count() == before {
        check(&config, &fields, report);
    }
    config
}

/// Culture's migration of the legacy poll interval `L` into the bands:
///
/// | band            | after                                       |
/// |-----------------|---------------------------------------------|
/// | hot, warm, cool | `interval = min(interval, L)`, hold kept    |
/// | idle            | `interval = L`                              |
pub(super) fn migrate(bands: Bands, legacy: Duration) -> Bands {
    let clamp = |band: Band| Band {
        interval: band.interval.min(legacy),
        ..band
    };
    Bands {
        hot: clamp(bands.hot),
        warm: clamp(bands.warm),
        cool: clamp(bands.cool),
        idle: Band {
            interval: legacy,
            hold: None,
        },
    }
}

fn overlay(fields: &Fields<'_>, base: &AttentionConfig, report: &mut Report) -> AttentionConfig {
    AttentionConfig {
        enabled: fields
            .get("enabled")
            .boolean(report)
            .unwrap_or(base.enabled),
        tick: fields.get("tick_s").seconds(report).unwrap_or(base.tick),
        thread_window: thread_window(&fields.get("thread_window_s"), report)
            .unwrap_or(base.thread_window),
        bands: bands(&fields.get("bands"), &base.bands, report),
    }
}

fn thread_window(node: &Node<'_>, report: &mut Report) -> Option<Duration> {
    let seconds = node.number(report)?;
    match Duration::try_from_secs_f64(seconds) {
        Ok(window) if window <= MAX_DURATION => Some(window),
        Ok(_) => node.expected(report, "a number of seconds up to 30 days"),
        Err(_) => node.expected(report, "a number of seconds >= 0"),
    }
}

fn bands(node: &Node<'_>, base: &Bands, report: &mut Report) -> Bands {
    let fields = node.mapping(report, &BAND_NAMES);
    Bands {
        hot: band(&fields.get("hot"), base.hot, "hot", report),
        warm: band(&fields.get("warm"), base.warm, "warm", report),
        cool: band(&fields.get("cool"), base.cool, "cool", report),
        idle: band(&fields.get("idle"), base.idle, "idle", report),
    }
}

/// A band entry replaces the band whole: `interval_s` is required, and `hold_s` too except
/// for `idle`, which has no hold.
fn band(node: &Node<'_>, base: Band, name: &str, report: &mut Report) -> Band {
    match node.given() {
        None => return base,
        Some(value) if !value.is_mapping() => {
            return node
                .expected(report, "a mapping with interval_s and hold_s")
                .unwrap_or(base);
        }
        Some(_) => {}
    }
    let fields = node.mapping(report, &BAND_KEYS);
    let interval = required_seconds(&fields.get("interval_s"), name, report);
    let hold_node = fields.get("hold_s");
    if name == "idle" {
        if hold_node.given().is_some() {
            report.warn(hold_node.at(), "ignored: the idle band has no hold");
        }
        return interval.map_or(base, |interval| Band {
            interval,
            hold: None,
        });
    }
    match (interval, required_seconds(&hold_node, name, report)) {
        (Some(interval), Some(hold)) => Band {
            interval,
            hold: Some(hold),
        },
        _ => base,
    }
}

fn required_seconds(node: &Node<'_>, band: &str, report: &mut Report) -> Option<Duration> {
    if node.given().is_none() {
        report.error(
            node.at(),
            format!("required for the {band} band (a number of seconds greater than 0)"),
        );
        return None;
    }
    node.seconds(report)
}

/// Culture's whole-config rules: intervals non-decreasing hot → idle, and the tick no longer
/// than the smallest interval.
fn check(config: &AttentionConfig, fields: &Fields<'_>, report: &mut Report) {
    let b = &config.bands;
    let intervals = [
        b.hot.interval,
        b.warm.interval,
        b.cool.interval,
        b.idle.interval,
    ];
    if !intervals.is_sorted() {
        let listed: Vec<String> = intervals.iter().map(|i| seconds(*i)).collect();
        let message = format!(
            "must be monotonic (hot <= warm <= cool <= idle); got intervals [{}]",
            listed.join(", ")
        );
        report.error(fields.get("bands").at(), message);
    }
    let smallest = smallest_interval(b);
    if config.tick > smallest {
        let message = format!(
            "must be <= the smallest band interval ({} s), got {}",
            seconds(smallest),
            seconds(config.tick)
        );
        report.error(fields.get("tick_s").at(), message);
    }
}

fn smallest_interval(bands: &Bands) -> Duration {
    [bands.hot, bands.warm, bands.cool, bands.idle]
        .iter()
        .map(|band| band.interval)
        .min()
        .unwrap_or_default()
}

/// Seconds as written in a config: `30`, or `2.5` when fractional.
fn seconds(duration: Duration) -> String {
    match duration.subsec_nanos() {
        0 => duration.as_secs().to_string(),
        _ => duration.as_secs_f64().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn migration_clamps_warm_bands_and_sets_idle() {
        let cases = [
            // (legacy, hot, warm, cool, idle)
            (60, 30, 60, 60, 60),
            (90, 30, 90, 90, 90),
            (45, 30, 45, 45, 45),
            (10, 10, 10, 10, 10),
            (900, 30, 120, 300, 900),
        ];
        for (legacy, hot, warm, cool, idle) in cases {
            let bands = migrate(Bands::default(), secs(legacy));
            let got = [
                bands.hot.interval,
                bands.warm.interval,
                bands.cool.interval,
                bands.idle.interval,
            ];
            assert_eq!(
                got,
                [secs(hot), secs(warm), secs(cool), secs(idle)],
                "legacy {legacy}"
            );
            assert_eq!(bands.hot.hold, Some(secs(120)));
            assert_eq!(bands.idle.hold, None);
        }
    }

    #[test]
    fn seconds_print_like_the_config() {
        assert_eq!(seconds(secs(30)), "30");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5");
    }
}
