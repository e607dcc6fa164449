//! `telemetry:` — Culture's OTLP keys. Keys the file leaves out stay `None`, so the telemetry
//! module can apply `OTEL_*` env > file > default.
//!
//! | key                          | accepts                                              |
//! |------------------------------|------------------------------------------------------|
//! | `enabled`                    | bool (default false)                                 |
//! | `service_name`               | non-empty single-line string                         |
//! | `otlp_endpoint`              | `http://` or `https://` URL without whitespace       |
//! | `otlp_protocol`              | `grpc`, `http/protobuf`                              |
//! | `otlp_timeout_ms`            | integer > 0                                          |
//! | `otlp_compression`           | `gzip`, `none`, `""` or null (null/`""` → `None`)    |
//! | `otlp_headers`               | `name=value,…` (see [`headers`]); a secret           |
//! | `otlp_headers_file`          | the same, from a file (see `secrets`)                |
//! | `otlp_ca_file`               | path, `~` expanded (read by `telemetry::Settings`)   |
//! | `otlp_client_cert_file`      | path, `~` expanded; only with `otlp_client_key_file` |
//! | `otlp_client_key_file`       | path, `~` expanded; only with `otlp_client_cert_file` |
//! | `traces_enabled`             | bool (default true)                                  |
//! | `traces_sampler`             | see [`sampler`]                                      |
//! | `metrics_enabled`            | bool (default true)                                  |
//! | `metrics_export_interval_ms` | integer > 0                                          |
//! | `audit_*`                    | see [`super::audit`]                                 |

use std::path::PathBuf;
use std::time::Duration;

use super::reader::{Fields, Keys, Node, Report, quote};
use super::{OtlpCompression, OtlpHeaders, OtlpProtocol, Sampler, TelemetryConfig};
use super::{names, paths, secrets};
use crate::env::Env;

const KEYS: Keys = Keys {
    known: &[
        "enabled",
        "service_name",
        "otlp_endpoint",
        "otlp_protocol",
        "otlp_timeout_ms",
        "otlp_compression",
        "otlp_headers",
        "otlp_headers_file",
        "otlp_ca_file",
        "otlp_client_cert_file",
        "otlp_client_key_file",
        "traces_enabled",
        "traces_sampler",
        "metrics_enabled",
        "metrics_export_interval_ms",
        // Read by `audit.rs`.
        "audit_enabled",
        "audit_dir",
        "audit_max_file_bytes",
        "audit_rotate_utc_midnight",
        "audit_queue_depth",
    ],
    ignored: &[],
};

/// The valid `traces_sampler` values, as listed in error messages.
pub(super) const SAMPLERS: &str =
    "parentbased_always_on, parentbased_traceidratio:<0.0-1.0>, always_off, always_on";

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: false,
            service_name: None,
            otlp_endpoint: None,
            otlp_protocol: None,
            otlp_timeout: None,
            otlp_compression: None,
            otlp_headers: None,
            otlp_ca_file: None,
            otlp_client_cert_file: None,
            otlp_client_key_file: None,
            traces_enabled: true,
            traces_sampler: None,
            metrics_enabled: true,
            metrics_export_interval: None,
            audit: super::AuditConfig::default(),
        }
    }
}

/// Reads `telemetry:`.
pub(super) fn section(node: &Node<'_>, env: &Env, report: &mut Report) -> TelemetryConfig {
    let fields = node.mapping(report, &KEYS);
    let defaults = TelemetryConfig::default();
    let checked = |key: &str, report: &mut Report, check: fn(&str) -> Option<String>| {
        fields
            .get(key)
            .string_where(report, check)
            .map(str::to_owned)
    };
    TelemetryConfig {
        enabled: fields
            .get("enabled")
            .boolean(report)
            .unwrap_or(defaults.enabled),
        service_name: checked("service_name", report, names::line),
        otlp_endpoint: checked("otlp_endpoint", report, names::http_url),
        otlp_protocol: parsed(&fields.get("otlp_protocol"), report, protocol),
        otlp_timeout: milliseconds(&fields.get("otlp_timeout_ms"), report),
        otlp_compression: compression_node(&fields.get("otlp_compression"), report),
        otlp_headers: otlp_headers(&fields, env, report),
        otlp_ca_file: paths::path(&fields.get("otlp_ca_file"), env, report),
        otlp_client_cert_file: client_file(&fields, "otlp_client_cert_file", env, report),
        otlp_client_key_file: client_file(&fields, "otlp_client_key_file", env, report),
        traces_enabled: fields
            .get("traces_enabled")
            .boolean(report)
            .unwrap_or(defaults.traces_enabled),
        traces_sampler: parsed(&fields.get("traces_sampler"), report, sampler),
        metrics_enabled: fields
            .get("metrics_enabled")
            .boolean(report)
            .unwrap_or(defaults.metrics_enabled),
        metrics_export_interval: milliseconds(&fields.get("metrics_export_interval_ms"), report),
        audit: super::audit::section(&fields, env, report),
    }
}

/// `otlp_client_cert_file` or `otlp_client_key_file`: a path, given together with the other
/// (a certificate is useless without its key); the pair's error is reported at the one given.
fn client_file(fields: &Fields<'_>, key: &str, env: &Env, report: &mut Report) -> Option<PathBuf> {
    const PAIR: [&str; 2] = ["otlp_client_cert_file", "otlp_client_key_file"];
    let node = fields.get(key);
    let path = paths::path(&node, env, report)?;
    let other = PAIR.into_iter().find(|k| *k != key).unwrap_or(key);
    if fields.get(other).given().is_none() {
        report.error(
            node.at(),
            format!("give {} and {} together", PAIR[0], PAIR[1]),
        );
        return None;
    }
    Some(path)
}

impl TelemetryConfig {
    /// The `telemetry.*` keys that differ between `self` and `new` and take effect only when
    /// codexd restarts. The collector's keys (`otlp_endpoint`, `otlp_protocol`,
    /// `otlp_timeout_ms`, `otlp_compression`, `otlp_headers`, the TLS files) are not among
    /// them: a reload moves the exporters to the new collector.
    pub fn restart_only_changes(&self, new: &TelemetryConfig) -> Vec<&'static str> {
        let checks = [
            ("telemetry.enabled", self.enabled != new.enabled),
            (
                "telemetry.service_name",
                self.service_name != new.service_name,
            ),
            (
                "telemetry.traces_enabled",
                self.traces_enabled != new.traces_enabled,
            ),
            (
                "telemetry.traces_sampler",
                self.traces_sampler != new.traces_sampler,
            ),
            (
                "telemetry.metrics_enabled",
                self.metrics_enabled != new.metrics_enabled,
            ),
            (
                "telemetry.metrics_export_interval_ms",
                self.metrics_export_interval != new.metrics_export_interval,
            ),
            ("telemetry.audit_*", self.audit != new.audit),
        ];
        checks
            .into_iter()
            .filter(|(_, changed)| *changed)
            .map(|(key, _)| key)
            .collect()
    }
}

fn parsed<T>(
    node: &Node<'_>,
    report: &mut Report,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    let text = node.string(report)?;
    parse(text)
        .map_err(|problem| report.error(node.at(), problem))
        .ok()
}

fn milliseconds(node: &Node<'_>, report: &mut Report) -> Option<Duration> {
    let ms = node.integer(
        report,
        1,
        i64::from(u32::MAX),
        "a positive integer number of milliseconds",
    )?;
    Some(Duration::from_millis(ms.unsigned_abs()))
}

/// `otlp_compression`: null reads as "not set" like everywhere, `""` too.
fn compression_node(node: &Node<'_>, report: &mut Report) -> Option<OtlpCompression> {
    parsed(node, report, compression).flatten()
}

/// `otlp_headers` or `otlp_headers_file`, parsed by [`headers`]. The problem never quotes
/// the text: it carries the credentials.
fn otlp_headers(fields: &Fields<'_>, env: &Env, report: &mut Report) -> Option<OtlpHeaders> {
    let text = secrets::secret(fields, "otlp_headers", env, report)?;
    let at = match fields.has("otlp_headers") {
        true => fields.get("otlp_headers"),
        false => fields.get("otlp_headers_file"),
    };
    headers(&text)
        .map_err(|problem| report.error(at.at(), problem))
        .ok()
}

/// `name=value,name2=value2`, the format of `OTEL_EXPORTER_OTLP_HEADERS`: entries separated
/// by commas, values percent-decoded (`Basic%20abc` → `Basic abc`), names lowercased.
///
/// | text                         | headers                             |
/// |------------------------------|-------------------------------------|
/// | `authorization=Bearer%20t`   | `[("authorization", "Bearer t")]`   |
/// | `A=1, b=2`                   | `[("a", "1"), ("b", "2")]`          |
/// | `a`, `=1`, `a b=1`           | error naming the entry's number     |
/// | `a=%zz`, `a=%0A`             | error (bad escape, control char)    |
pub(super) fn headers(text: &str) -> Result<OtlpHeaders, String> {
    let entries = text.split(',').map(str::trim).filter(|e| !e.is_empty());
    let parsed = entries.enumerate().map(|(index, entry)| {
        let number = index + 1;
        let (name, value) = entry
            .split_once('=')
            .ok_or_else(|| format!("entry {number} is not name=value"))?;
        let name = name.trim();
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(format!("entry {number} has an invalid header name"));
        }
        let value = percent_decode(value.trim())
            .filter(|value| !value.chars().any(char::is_control))
            .ok_or_else(|| {
                format!("entry {number} has a value with a bad %-escape or a control character")
            })?;
        Ok((name.to_ascii_lowercase(), value))
    });
    let headers = parsed.collect::<Result<Vec<_>, String>>()?;
    match headers.is_empty() {
        true => Err("has no name=value entries".to_owned()),
        false => Ok(OtlpHeaders(headers)),
    }
}

/// `text` percent-decoded (`OTEL_EXPORTER_OTLP_HEADERS` rules); `None` when a `%` is not
/// followed by two hex digits or the bytes are not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte != b'%' {
            bytes.push(byte);
            rest = tail;
            continue;
        }
        let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
        bytes.push(u8::from_str_radix(hex, 16).ok()?);
        rest = &tail[2..];
    }
    String::from_utf8(bytes).ok()
}

/// | text            | protocol                  |
/// |-----------------|---------------------------|
/// | `grpc`          | `Grpc`                    |
/// | `http/protobuf` | `HttpProtobuf`            |
/// | `http/json`     | error: not supported      |
pub(super) fn protocol(text: &str) -> Result<OtlpProtocol, String> {
    match text {
        "grpc" => Ok(OtlpProtocol::Grpc),
        "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
        "http/json" => {
            Err("\"http/json\" is not supported; use \"grpc\" or \"http/protobuf\"".to_owned())
        }
        other => Err(format!(
            "expected \"grpc\" or \"http/protobuf\", got {}",
            quote(other)
        )),
    }
}

/// | text   | compression            |
/// |--------|------------------------|
/// | `gzip` | `Some(Gzip)`           |
/// | `none` | `Some(None)`           |
/// | `""`   | not set (`None`)       |
/// | other  | error                  |
pub(super) fn compression(text: &str) -> Result<Option<OtlpCompression>, String> {
    match text {
        "gzip" => Ok(Some(OtlpCompression::Gzip)),
        "none" => Ok(Some(OtlpCompression::None)),
        "" => Ok(None),
        other => Err(format!(
            "expected \"gzip\", \"none\" or empty, got {}",
            quote(other)
        )),
    }
}

/// | text                              | sampler                        |
/// |-----------------------------------|--------------------------------|
/// | `parentbased_always_on`           | `ParentBasedAlwaysOn`          |
/// | `parentbased_traceidratio:<r>`    | `ParentBasedTraceIdRatio(r)`, `0.0 <= r <= 1.0` |
/// | `always_off`                      | `AlwaysOff`                    |
/// | `always_on`                       | `AlwaysOn`                     |
pub(super) fn sampler(text: &str) -> Result<Sampler, String> {
    let invalid = || format!("expected one of {SAMPLERS}, got {}", quote(text));
    match text {
        "parentbased_always_on" => Ok(Sampler::ParentBasedAlwaysOn),
        "always_off" => Ok(Sampler::AlwaysOff),
        "always_on" => Ok(Sampler::AlwaysOn),
        _ => {
            let ratio = text
                .strip_prefix("parentbased_traceidratio:")
                .ok_or_else(invalid)?;
            let ratio: f64 = ratio.trim().parse().map_err(|_| invalid())?;
            match (0.0..=1.0).contains(&ratio) {
                true => Ok(Sampler::ParentBasedTraceIdRatio(ratio)),
                false => Err(format!(
                    "the ratio must be from 0.0 to 1.0, got {}",
                    quote(text)
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samplers() {
        let cases = [
            ("parentbased_always_on", Ok(Sampler::ParentBasedAlwaysOn)),
            (
                "parentbased_traceidratio:0.25",
                Ok(Sampler::ParentBasedTraceIdRatio(0.25)),
            ),
            (
                "parentbased_traceidratio:1",
                Ok(Sampler::ParentBasedTraceIdRatio(1.0)),
            ),
            ("always_off", Ok(Sampler::AlwaysOff)),
            ("always_on", Ok(Sampler::AlwaysOn)),
            (
                "parentbased_traceidratio:1.5",
                Err("the ratio must be from 0.0 to 1.0, got \"parentbased_traceidratio:1.5\""),
            ),
            ("parentbased_traceidratio:x", Err("expected one of")),
            ("traceidratio", Err("expected one of")),
        ];
        for (text, want) in cases {
            match (sampler(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        assert!(sampler("nope").unwrap_err().contains(SAMPLERS));
    }

    #[test]
    fn otlp_headers_parse_without_echoing_values() {
        let ok = headers("Authorization=Basic%20abc, X-Org = 7").unwrap();
        let want = [("authorization", "Basic abc"), ("x-org", "7")];
        let want: Vec<_> = want.map(|(n, v)| (n.to_owned(), v.to_owned())).into();
        assert_eq!(ok.0, want);
        assert_eq!(
            format!("{ok:?}"),
            r#"{"authorization": "<redacted>", "x-org": "<redacted>"}"#
        );
        let cases = [
            ("a=1,s3cret", "entry 2 is not name=value"),
            ("=s3cret", "entry 1 has an invalid header name"),
            ("a b=s3cret", "entry 1 has an invalid header name"),
            ("a=s3cret%zz", "entry 1 has a value with a bad %-escape"),
            (
                "a=s3cret%0A",
                "entry 1 has a value with a bad %-escape or a control",
            ),
            (" , ", "has no name=value entries"),
        ];
        for (text, want) in cases {
            let problem = headers(text).unwrap_err();
            assert!(problem.starts_with(want), "{text}: {problem}");
            assert!(!problem.contains("s3cret"), "{text}: {problem}");
        }
    }

    fn parse(yaml: &str) -> Result<TelemetryConfig, Vec<String>> {
        let env = Env::from_pairs([("HOME", "/home/op")]);
        match crate::config::parse(yaml, &env) {
            Ok(loaded) => Ok(loaded.config.telemetry),
            Err(crate::config::ConfigError::Invalid { errors }) => {
                Err(errors.iter().map(ToString::to_string).collect())
            }
            Err(other) => panic!("{yaml}: {other}"),
        }
    }

    #[test]
    fn tls_files_are_paths_and_a_client_certificate_needs_its_key() {
        let both = parse(
            "telemetry: {otlp_ca_file: ~/ca.pem, otlp_client_cert_file: /etc/c.pem, \
             otlp_client_key_file: c.key}",
        )
        .expect("valid");
        assert_eq!(both.otlp_ca_file, Some(PathBuf::from("/home/op/ca.pem")));
        assert_eq!(
            both.otlp_client_cert_file,
            Some(PathBuf::from("/etc/c.pem"))
        );
        assert_eq!(both.otlp_client_key_file, Some(PathBuf::from("c.key")));
        let cases = [
            (
                "telemetry: {otlp_client_cert_file: /etc/c.pem}",
                "telemetry.otlp_client_cert_file: give otlp_client_cert_file and \
                 otlp_client_key_file together",
            ),
            (
                "telemetry: {otlp_client_key_file: /etc/c.key}",
                "telemetry.otlp_client_key_file: give otlp_client_cert_file and \
                 otlp_client_key_file together",
            ),
            (
                "telemetry: {otlp_ca_file: ''}",
                "telemetry.otlp_ca_file: must not be empty",
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(parse(yaml).expect_err(yaml), [want], "{yaml}");
        }
    }

    #[test]
    fn only_the_collectors_keys_change_without_a_restart() {
        let old = parse("telemetry: {enabled: true, otlp_endpoint: 'http://a:4317'}").unwrap();
        let live = parse(
            "telemetry: {enabled: true, otlp_endpoint: 'https://b:4317', otlp_protocol: grpc, \
             otlp_timeout_ms: 9, otlp_compression: none, otlp_headers: 'a=1', \
             otlp_ca_file: /ca.pem, otlp_client_cert_file: /c.pem, otlp_client_key_file: /c.key}",
        )
        .unwrap();
        assert!(old.restart_only_changes(&live).is_empty());
        let restart = parse(
            "telemetry: {enabled: false, service_name: x, traces_enabled: false, \
             traces_sampler: always_on, metrics_enabled: false, metrics_export_interval_ms: 5, \
             audit_enabled: true}",
        )
        .unwrap();
        assert_eq!(
            old.restart_only_changes(&restart),
            [
                "telemetry.enabled",
                "telemetry.service_name",
                "telemetry.traces_enabled",
                "telemetry.traces_sampler",
                "telemetry.metrics_enabled",
                "telemetry.metrics_export_interval_ms",
                "telemetry.audit_*",
            ]
        );
    }

    #[test]
    fn protocols_and_compression() {
        assert_eq!(protocol("grpc"), Ok(OtlpProtocol::Grpc));
        assert_eq!(protocol("http/protobuf"), Ok(OtlpProtocol::HttpProtobuf));
        assert!(protocol("http/json").unwrap_err().contains("not supported"));
        assert!(protocol("GRPC").is_err());
        assert_eq!(compression("gzip"), Ok(Some(OtlpCompression::Gzip)));
        assert_eq!(compression("none"), Ok(Some(OtlpCompression::None)));
        assert_eq!(compression(""), Ok(None));
        assert!(compression("zstd").is_err());
    }
}
