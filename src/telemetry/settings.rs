//! Resolving the `telemetry:` section against the standard `OTEL_*` variables.
//!
//! Precedence for every value: signal-specific variable > generic variable > file > default
//! (Culture's agentirc does the same). Nothing here touches the process: the environment is
//! injected and the result is plain data.
//!
//! | value        | variables (first set wins)                                        | file key                     | default                   |
//! |--------------|-------------------------------------------------------------------|------------------------------|---------------------------|
//! | switch       | `OTEL_SDK_DISABLED=true` turns it off; nothing turns it on        | `enabled`                    | off                       |
//! | service.name | `OTEL_SERVICE_NAME`, `service.name` in `OTEL_RESOURCE_ATTRIBUTES` | `service_name`               | `culture.harness.codex`   |
//! | protocol     | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL`, `…_OTLP_PROTOCOL` | `otlp_protocol`              | `grpc`                    |
//! | endpoint     | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT` (as is), `…_OTLP_ENDPOINT` (+ `/v1/<signal>` for HTTP) | `otlp_endpoint` (like the generic variable) | `http://localhost:4317` (gRPC), `http://localhost:4318` + path (HTTP) |
//! | timeout      | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_TIMEOUT`, `…_OTLP_TIMEOUT` (ms) | `otlp_timeout_ms`          | 5000 ms                   |
//! | compression  | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_COMPRESSION`, `…_OTLP_COMPRESSION` | `otlp_compression`      | `gzip`                    |
//! | sampler      | `OTEL_TRACES_SAMPLER` (+ `OTEL_TRACES_SAMPLER_ARG`)                | `traces_sampler`             | `parentbased_always_on`   |
//! | interval     | `OTEL_METRIC_EXPORT_INTERVAL` (ms)                                | `metrics_export_interval_ms` | 10000 ms                  |
//! | headers      | `OTEL_EXPORTER_OTLP_{,TRACES_,METRICS_}HEADERS`, read by the exporter library, win per header | `otlp_headers`, `otlp_headers_file` | none |
//! | TLS files    | `OTEL_EXPORTER_OTLP_{,TRACES_,METRICS_}{CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY}` ([`super::tls`]) | `otlp_ca_file`, `otlp_client_cert_file`, `otlp_client_key_file` | system roots, no client certificate |
//!
//! With `enabled: false` no `OTEL_*` variable is read at all. The only I/O: the TLS files of
//! an `https://` endpoint are read and checked here, so a bad one stops start-up (or a
//! reload) with an error naming its key or variable.

use std::collections::BTreeMap;
use std::time::Duration;

use codexd_actors::redact;

use crate::config::{OtlpCompression, OtlpHeaders, OtlpProtocol, Sampler, TelemetryConfig};
use crate::env::Env;

use super::TelemetryError;
use super::signal::Signal;
use super::tls::{self, Tls};

const DEFAULT_SERVICE_NAME: &str = "culture.harness.codex";
const DEFAULT_LOG_FILTER: &str = "info";
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_millis(10_000);

/// Everything `telemetry::init` needs, already resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Log directives for the stderr output: `RUST_LOG`, default `info`.
    pub log_filter: String,
    /// OTLP export; `None` when telemetry is off (no exporter, no thread, no network).
    pub otlp: Option<OtlpSettings>,
}

/// The OTLP part of [`Settings`]; exists only when something is exported.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSettings {
    /// Resource attributes, sorted by key: `service.name`, `service.version`,
    /// `service.instance.id` and whatever `OTEL_RESOURCE_ATTRIBUTES` adds or overrides.
    pub resource: BTreeMap<String, String>,
    /// Where traces go; `None` when `traces_enabled: false`.
    pub traces: Option<Exporter>,
    /// The root sampler for traces.
    pub sampler: Sampler,
    /// Where metrics go; `None` when `metrics_enabled: false`.
    pub metrics: Option<Exporter>,
    /// How often the periodic reader exports metrics.
    pub metric_export_interval: Duration,
    /// Worth a warning, not fatal: TLS files named for a plaintext `http://` endpoint.
    pub warnings: Vec<String>,
}

/// One signal's OTLP exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exporter {
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Full URL: gRPC `scheme://host:port`, HTTP including `/v1/traces` or `/v1/metrics`.
    pub endpoint: String,
    /// Per-export timeout (exports are not retried).
    pub timeout: Duration,
    /// Payload compression.
    pub compression: OtlpCompression,
    /// Headers (gRPC metadata) from the file; `Debug` shows their names only.
    pub headers: OtlpHeaders,
    /// TLS for an `https://` endpoint (`None`: plaintext `http://`).
    pub tls: Option<Tls>,
}

impl Exporter {
    /// The endpoint as logs may show it: without userinfo, query or fragment.
    pub fn shown_endpoint(&self) -> String {
        redact::url(&self.endpoint)
    }
}

impl OtlpSettings {
    /// `service.name` of the resource.
    pub fn service_name(&self) -> &str {
        self.resource.get("service.name").map_or("", String::as_str)
    }
}

impl Settings {
    /// Applies env > file > default; see the module table. `instance_id` becomes
    /// `service.instance.id` (the caller passes a fresh random UUID,
    /// `identity::instance_id`). A bad variable is an error naming it.
    pub fn resolve(
        cfg: &TelemetryConfig,
        instance_id: &str,
        env: &Env,
    ) -> Result<Settings, TelemetryError> {
        let log_filter = log_filter(env)?;
        let otlp = if cfg.enabled && !sdk_disabled(env)? {
            otlp_settings(cfg, instance_id, env)?
        } else {
            None
        };
        Ok(Settings { log_filter, otlp })
    }
}

/// `RUST_LOG`, checked now so a typo is reported before anything starts.
fn log_filter(env: &Env) -> Result<String, TelemetryError> {
    let Some(value) = env.var("RUST_LOG") else {
        return Ok(DEFAULT_LOG_FILTER.to_owned());
    };
    tracing_subscriber::EnvFilter::builder()
        .parse(value)
        .map_err(|error| invalid_env("RUST_LOG", value, error))?;
    Ok(value.to_owned())
}

fn sdk_disabled(env: &Env) -> Result<bool, TelemetryError> {
    let Some(value) = env.var("OTEL_SDK_DISABLED") else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid_env(
            "OTEL_SDK_DISABLED",
            value,
            "expected true or false",
        )),
    }
}

/// `None` when both signals are switched off in the file.
fn otlp_settings(
    cfg: &TelemetryConfig,
    instance_id: &str,
    env: &Env,
) -> Result<Option<OtlpSettings>, TelemetryError> {
    let mut warnings = Vec::new();
    let traces = cfg
        .traces_enabled
        .then(|| exporter(cfg, env, Signal::Traces, &mut warnings))
        .transpose()?;
    let metrics = cfg
        .metrics_enabled
        .then(|| exporter(cfg, env, Signal::Metrics, &mut warnings))
        .transpose()?;
    if traces.is_none() && metrics.is_none() {
        return Ok(None);
    }
    Ok(Some(OtlpSettings {
        resource: resource(cfg, instance_id, env)?,
        traces,
        sampler: sampler(cfg, env)?,
        metrics,
        metric_export_interval: millis_var(env, &["OTEL_METRIC_EXPORT_INTERVAL".to_owned()])?
            .or(cfg.metrics_export_interval)
            .unwrap_or(DEFAULT_METRIC_INTERVAL),
        warnings,
    }))
}

fn exporter(
    cfg: &TelemetryConfig,
    env: &Env,
    signal: Signal,
    warnings: &mut Vec<String>,
) -> Result<Exporter, TelemetryError> {
    let protocol = match first(env, &signal.variables("PROTOCOL")) {
        Some((variable, value)) => parse_protocol(value)
            .ok_or_else(|| invalid_env(&variable, value, "expected grpc or http/protobuf"))?,
        None => cfg.otlp_protocol.unwrap_or(OtlpProtocol::Grpc),
    };
    let [signal_endpoint, generic_endpoint] = signal.variables("ENDPOINT");
    let endpoint = if let Some(value) = env.var(&signal_endpoint) {
        checked_endpoint(value)
            .map_err(|reason| invalid_env(&signal_endpoint, &redact::url(value), reason))?
    } else {
        let base = match env.var(&generic_endpoint) {
            Some(value) => checked_endpoint(value)
                .map_err(|reason| invalid_env(&generic_endpoint, &redact::url(value), reason))?,
            None => match &cfg.otlp_endpoint {
                Some(value) => {
                    checked_endpoint(value).map_err(|reason| TelemetryError::InvalidConfig {
                        key: "telemetry.otlp_endpoint",
                        reason: format!("{:?}: {reason}", redact::url(value)),
                    })?
                }
                None => default_endpoint(protocol).to_owned(),
            },
        };
        with_signal_path(base, protocol, signal)
    };
    let timeout = millis_var(env, &signal.variables("TIMEOUT"))?
        .or(cfg.otlp_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let compression = match first(env, &signal.variables("COMPRESSION")) {
        Some((variable, value)) => parse_compression(value)
            .ok_or_else(|| invalid_env(&variable, value, "expected gzip or none"))?,
        None => cfg.otlp_compression.unwrap_or(OtlpCompression::Gzip),
    };
    let tls = tls::resolve(cfg, env, signal, &endpoint, warnings)?;
    Ok(Exporter {
        protocol,
        endpoint,
        timeout,
        compression,
        headers: cfg.otlp_headers.clone().unwrap_or_default(),
        tls,
    })
}

fn default_endpoint(protocol: OtlpProtocol) -> &'static str {
    match protocol {
        OtlpProtocol::Grpc => "http://localhost:4317",
        OtlpProtocol::HttpProtobuf => "http://localhost:4318",
    }
}

/// A generic endpoint is a base URL: HTTP gets the signal's path, gRPC is used as is.
fn with_signal_path(base: String, protocol: OtlpProtocol, signal: Signal) -> String {
    match protocol {
        OtlpProtocol::Grpc => base,
        OtlpProtocol::HttpProtobuf => {
            format!("{}{}", base.trim_end_matches('/'), signal.http_path())
        }
    }
}

fn checked_endpoint(value: &str) -> Result<String, &'static str> {
    let lower = value.to_ascii_lowercase();
    let host = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match host {
        Some(host) if !host.is_empty() && !value.contains(char::is_whitespace) => {
            Ok(value.to_owned())
        }
        _ => Err("expected an http:// or https:// URL"),
    }
}

fn parse_protocol(value: &str) -> Option<OtlpProtocol> {
    match value.trim().to_ascii_lowercase().as_str() {
        "grpc" => Some(OtlpProtocol::Grpc),
        "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
        _ => None,
    }
}

fn parse_compression(value: &str) -> Option<OtlpCompression> {
    match value.trim().to_ascii_lowercase().as_str() {
        "gzip" => Some(OtlpCompression::Gzip),
        "none" => Some(OtlpCompression::None),
        _ => None,
    }
}

/// `OTEL_TRACES_SAMPLER` (with its `_ARG`) replaces the file's sampler; the argument is only
/// read for the ratio sampler and defaults to 1.0 there.
fn sampler(cfg: &TelemetryConfig, env: &Env) -> Result<Sampler, TelemetryError> {
    const VARIABLE: &str = "OTEL_TRACES_SAMPLER";
    let Some(value) = env.var(VARIABLE) else {
        return Ok(cfg.traces_sampler.unwrap_or(Sampler::ParentBasedAlwaysOn));
    };
    match value.trim() {
        "always_on" => Ok(Sampler::AlwaysOn),
        "always_off" => Ok(Sampler::AlwaysOff),
        "parentbased_always_on" => Ok(Sampler::ParentBasedAlwaysOn),
        "parentbased_traceidratio" => Ok(Sampler::ParentBasedTraceIdRatio(sampler_ratio(env)?)),
        _ => Err(invalid_env(
            VARIABLE,
            value,
            "expected always_on, always_off, parentbased_always_on or parentbased_traceidratio",
        )),
    }
}

fn sampler_ratio(env: &Env) -> Result<f64, TelemetryError> {
    const VARIABLE: &str = "OTEL_TRACES_SAMPLER_ARG";
    let Some(value) = env.var(VARIABLE) else {
        return Ok(1.0);
    };
    match value.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(invalid_env(
            VARIABLE,
            value,
            "expected a number from 0.0 to 1.0",
        )),
    }
}

/// Codexd's attributes, then `OTEL_RESOURCE_ATTRIBUTES` over them, then `OTEL_SERVICE_NAME`.
fn resource(
    cfg: &TelemetryConfig,
    instance_id: &str,
    env: &Env,
) -> Result<BTreeMap<String, String>, TelemetryError> {
    let service_name = cfg.service_name.as_deref().unwrap_or(DEFAULT_SERVICE_NAME);
    let mut resource = BTreeMap::from([
        ("service.name".to_owned(), service_name.to_owned()),
        (
            "service.version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        ("service.instance.id".to_owned(), instance_id.to_owned()),
    ]);
    if let Some(value) = env.var("OTEL_RESOURCE_ATTRIBUTES") {
        let attributes = parse_resource_attributes(value)
            .map_err(|reason| invalid_env("OTEL_RESOURCE_ATTRIBUTES", value, reason))?;
        resource.extend(attributes);
    }
    if let Some(name) = env.var("OTEL_SERVICE_NAME") {
        resource.insert("service.name".to_owned(), name.to_owned());
    }
    Ok(resource)
}

/// `key1=value1,key2=value2`, keys and values percent-encoded (W3C baggage octets).
fn parse_resource_attributes(value: &str) -> Result<Vec<(String, String)>, String> {
    let members = value.split(',').map(str::trim).filter(|m| !m.is_empty());
    members
        .map(|member| {
            let (key, value) = member
                .split_once('=')
                .ok_or_else(|| format!("{member:?} is not key=value"))?;
            let key = percent_decode(key.trim())?;
            if key.is_empty() {
                return Err(format!("{member:?} has an empty key"));
            }
            Ok((key, percent_decode(value.trim())?))
        })
        .collect()
}

/// `text` percent-decoded; the error never quotes it (a header value may be a secret).
fn percent_decode(text: &str) -> Result<String, String> {
    crate::config::percent_decode(text)
        .ok_or_else(|| "bad percent-encoding, or not UTF-8 once decoded".to_owned())
}

/// The first variable of `names` that is set, as a positive number of milliseconds.
fn millis_var(env: &Env, names: &[String]) -> Result<Option<Duration>, TelemetryError> {
    let Some((variable, value)) = first(env, names) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(invalid_env(
            &variable,
            value,
            "expected a positive number of milliseconds",
        )),
    }
}

/// The first of `names` that is set (and not empty), with its value.
fn first<'a>(env: &'a Env, names: &[String]) -> Option<(String, &'a str)> {
    names
        .iter()
        .find_map(|name| env.var(name).map(|value| (name.clone(), value)))
}

fn invalid_env(variable: &str, value: &str, reason: impl std::fmt::Display) -> TelemetryError {
    TelemetryError::InvalidEnv {
        variable: variable.to_owned(),
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests;
