//! `telemetry.audit_*` — Culture's audit JSONL keys (agentirc's `TelemetryConfig`), read
//! beside the OTLP keys of [`super::telemetry`]. Audit is independent of `enabled`.
//!
//! | key                         | default            | accepts                         |
//! |-----------------------------|--------------------|---------------------------------|
//! | `audit_enabled`             | false (agentirc: true) | bool                        |
//! | `audit_dir`                 | `~/.culture/audit` | path, `~` expanded              |
//! | `audit_max_file_bytes`      | 268435456 (256 MiB) | integer ≥ 4096                 |
//! | `audit_rotate_utc_midnight` | true               | bool                            |
//! | `audit_queue_depth`         | 10000              | integer 1..=1000000             |
//!
//! codexd's `audit_enabled` defaults to off: Culture's agent daemons never wrote an audit
//! log (only agentirc does, where it defaults to on), so an existing config does not start
//! writing files unasked.

use std::path::PathBuf;

use super::paths;
use super::reader::{Fields, Report};
use super::types::AuditConfig;
use crate::env::Env;

/// Culture's default directory (agentirc writes there too; the file names differ).
const DEFAULT_DIR: &str = "~/.culture/audit";
/// Culture's default cap: 256 MiB.
const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Culture's default queue depth.
const DEFAULT_QUEUE_DEPTH: usize = 10_000;
/// The smallest file cap accepted: a record must fit a file.
const MIN_FILE_BYTES: i64 = 4096;
/// The largest queue accepted.
const MAX_QUEUE_DEPTH: i64 = 1_000_000;

impl Default for AuditConfig {
    /// Off, with Culture's defaults; the directory unexpanded (parsing expands it).
    fn default() -> Self {
        AuditConfig {
            enabled: false,
            dir: PathBuf::from(DEFAULT_DIR),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            rotate_utc_midnight: true,
            queue_depth: DEFAULT_QUEUE_DEPTH,
        }
    }
}

/// Reads the `audit_*` keys of the `telemetry:` mapping's `fields`. The default directory
/// is expanded (and so needs `$HOME`) only when the log is on.
pub(super) fn section(fields: &Fields<'_>, env: &Env, report: &mut Report) -> AuditConfig {
    let defaults = AuditConfig::default();
    let enabled = fields
        .get("audit_enabled")
        .boolean(report)
        .unwrap_or(defaults.enabled);
    let node = fields.get("audit_dir");
    let dir = match node.given() {
        Some(_) => paths::path(&node, env, report),
        None if enabled => paths::expand(&node, DEFAULT_DIR, env, report),
        None => None, // unused: the default stays as it is
    };
    let max_file_bytes = fields
        .get("audit_max_file_bytes")
        .integer(
            report,
            MIN_FILE_BYTES,
            i64::MAX,
            "an integer of at least 4096 (bytes)",
        )
        .map_or(defaults.max_file_bytes, i64::unsigned_abs);
    let queue_depth = fields
        .get("audit_queue_depth")
        .integer(report, 1, MAX_QUEUE_DEPTH, "an integer from 1 to 1000000")
        .map_or(defaults.queue_depth, |n| n.unsigned_abs() as usize);
    AuditConfig {
        enabled,
        dir: dir.unwrap_or(defaults.dir),
        max_file_bytes,
        rotate_utc_midnight: fields
            .get("audit_rotate_utc_midnight")
            .boolean(report)
            .unwrap_or(defaults.rotate_utc_midnight),
        queue_depth,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{self, AuditConfig};
    use crate::env::Env;

    fn audit(yaml: &str, env: &Env) -> Result<AuditConfig, String> {
        config::parse(yaml, env)
            .map(|loaded| loaded.config.telemetry.audit)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn culture_audit_keys_are_read() {
        let home = Env::from_pairs([("HOME", "/home/t")]);
        let off = audit("telemetry: {enabled: false}\n", &home).expect("valid");
        assert_eq!(off, AuditConfig::default(), "off by default");
        let on = audit("telemetry: {audit_enabled: true}\n", &home).expect("valid");
        assert_eq!(
            on,
            AuditConfig {
                enabled: true,
                dir: "/home/t/.culture/audit".into(),
                ..AuditConfig::default()
            },
            "Culture's defaults"
        );
        let yaml = "telemetry:\n  audit_enabled: true\n  audit_dir: ~/logs/audit\n  audit_max_file_bytes: 1048576\n  audit_rotate_utc_midnight: false\n  audit_queue_depth: 50\n";
        assert_eq!(
            audit(yaml, &home).expect("valid"),
            AuditConfig {
                enabled: true,
                dir: "/home/t/logs/audit".into(),
                max_file_bytes: 1_048_576,
                rotate_utc_midnight: false,
                queue_depth: 50,
            }
        );
    }

    #[test]
    fn bad_audit_values_are_reported_with_their_keys() {
        let home = Env::from_pairs([("HOME", "/home/t")]);
        let yaml = "telemetry:\n  audit_enabled: yes please\n  audit_dir: ''\n  audit_max_file_bytes: 10\n  audit_queue_depth: 0\n  audit_rotate_utc_midnight: 1\n  audit_dirr: x\n";
        let error = audit(yaml, &home).expect_err("invalid");
        for key in [
            "telemetry.audit_enabled",
            "telemetry.audit_dir",
            "telemetry.audit_max_file_bytes",
            "telemetry.audit_queue_depth",
            "telemetry.audit_rotate_utc_midnight",
            "telemetry.audit_dirr",
        ] {
            assert!(error.contains(key), "{key} in {error}");
        }
        // The default directory needs HOME only when the log is on.
        let no_home = Env::from_pairs(Vec::<(&str, &str)>::new());
        let off = audit("telemetry: {audit_enabled: false}\n", &no_home).unwrap_err();
        assert!(!off.contains("telemetry.audit_dir"), "{off}");
        let error = audit("telemetry: {audit_enabled: true}\n", &no_home).expect_err("no HOME");
        assert!(error.contains("telemetry.audit_dir"), "{error}");
    }
}
