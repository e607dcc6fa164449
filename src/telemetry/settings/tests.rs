//! Table-driven tests of `Settings::resolve`: env > file > default, signal > generic.

use super::*;

/// Environment pairs for one case.
type Vars = &'static [(&'static str, &'static str)];
/// One row: case name, the file's `telemetry:`, the environment, what is expected.
type Case<W> = (&'static str, TelemetryConfig, Vars, W);

const GRPC: OtlpProtocol = OtlpProtocol::Grpc;
const HTTP: OtlpProtocol = OtlpProtocol::HttpProtobuf;

/// `telemetry: {enabled: true}` with nothing else in the file.
fn enabled() -> TelemetryConfig {
    TelemetryConfig {
        enabled: true,
        ..TelemetryConfig::default()
    }
}

fn resolve(cfg: &TelemetryConfig, env: &[(&str, &str)]) -> Result<Settings, TelemetryError> {
    Settings::resolve(
        cfg,
        "culture-a-culture-b",
        &Env::from_pairs(env.iter().copied()),
    )
}

fn otlp(cfg: &TelemetryConfig, env: &[(&str, &str)]) -> OtlpSettings {
    resolve(cfg, env)
        .expect("resolves")
        .otlp
        .expect("telemetry on")
}

#[test]
fn only_the_file_turns_telemetry_on() {
    let off = TelemetryConfig {
        enabled: false,
        ..enabled()
    };
    let no_traces = TelemetryConfig {
        traces_enabled: false,
        ..enabled()
    };
    let no_metrics = TelemetryConfig {
        metrics_enabled: false,
        ..enabled()
    };
    let neither = TelemetryConfig {
        traces_enabled: false,
        metrics_enabled: false,
        ..enabled()
    };
    // (case, file, env, Some((traces on, metrics on)) or None for off)
    let cases: Vec<Case<Option<(bool, bool)>>> = vec![
        ("default off", off.clone(), &[], None),
        (
            "env cannot turn it on",
            off.clone(),
            &[("OTEL_SDK_DISABLED", "false")],
            None,
        ),
        (
            "env ignored while off",
            off.clone(),
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "bogus")],
            None,
        ),
        ("on", enabled(), &[], Some((true, true))),
        (
            "sdk disabled",
            enabled(),
            &[("OTEL_SDK_DISABLED", "true")],
            None,
        ),
        (
            "sdk disabled, any case",
            enabled(),
            &[("OTEL_SDK_DISABLED", "TRUE")],
            None,
        ),
        (
            "sdk not disabled",
            enabled(),
            &[("OTEL_SDK_DISABLED", "false")],
            Some((true, true)),
        ),
        (
            "empty counts as unset",
            enabled(),
            &[("OTEL_SDK_DISABLED", "")],
            Some((true, true)),
        ),
        ("traces off", no_traces.clone(), &[], Some((false, true))),
        ("metrics off", no_metrics.clone(), &[], Some((true, false))),
        ("both signals off", neither.clone(), &[], None),
    ];
    for (name, cfg, env, want) in &cases {
        let got = resolve(cfg, env).expect(name).otlp;
        let got = got.map(|o| (o.traces.is_some(), o.metrics.is_some()));
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn endpoints_and_protocols() {
    let file_grpc = TelemetryConfig {
        otlp_endpoint: Some("http://collector:4317".into()),
        ..enabled()
    };
    let file_http = TelemetryConfig {
        otlp_endpoint: Some("http://collector:4318/".into()),
        otlp_protocol: Some(HTTP),
        ..enabled()
    };
    let http_default = TelemetryConfig {
        otlp_protocol: Some(HTTP),
        ..enabled()
    };
    type Want<'a> = ((OtlpProtocol, &'a str), (OtlpProtocol, &'a str));
    // (case, file, env, ((traces protocol, endpoint), (metrics protocol, endpoint)))
    let cases: Vec<Case<Want>> = vec![
        (
            "default grpc",
            enabled(),
            &[],
            (
                (GRPC, "http://localhost:4317"),
                (GRPC, "http://localhost:4317"),
            ),
        ),
        (
            "default http",
            http_default.clone(),
            &[],
            (
                (HTTP, "http://localhost:4318/v1/traces"),
                (HTTP, "http://localhost:4318/v1/metrics"),
            ),
        ),
        (
            "file grpc",
            file_grpc.clone(),
            &[],
            (
                (GRPC, "http://collector:4317"),
                (GRPC, "http://collector:4317"),
            ),
        ),
        (
            "file http gets paths",
            file_http.clone(),
            &[],
            (
                (HTTP, "http://collector:4318/v1/traces"),
                (HTTP, "http://collector:4318/v1/metrics"),
            ),
        ),
        (
            "generic env beats file",
            file_grpc.clone(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317")],
            ((GRPC, "http://env:4317"), (GRPC, "http://env:4317")),
        ),
        (
            "env protocol switches default endpoint",
            enabled(),
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
            (
                (HTTP, "http://localhost:4318/v1/traces"),
                (HTTP, "http://localhost:4318/v1/metrics"),
            ),
        ),
        (
            "env protocol applies paths to the file endpoint",
            file_grpc.clone(),
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
            (
                (HTTP, "http://collector:4317/v1/traces"),
                (HTTP, "http://collector:4317/v1/metrics"),
            ),
        ),
        (
            "signal endpoint used as is",
            http_default.clone(),
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://g:2/base"),
            ],
            (
                (HTTP, "http://t:1/custom"),
                (HTTP, "http://g:2/base/v1/metrics"),
            ),
        ),
        (
            "signal protocol beats generic",
            enabled(),
            &[
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
            (
                (GRPC, "http://localhost:4317"),
                (HTTP, "http://localhost:4318/v1/metrics"),
            ),
        ),
    ];
    for (name, cfg, env, (traces, metrics)) in &cases {
        let got = otlp(cfg, env);
        let view = |e: Option<Exporter>| e.map(|e| (e.protocol, e.endpoint)).expect("signal on");
        assert_eq!(
            view(got.traces),
            (traces.0, traces.1.to_owned()),
            "{name}: traces"
        );
        assert_eq!(
            view(got.metrics),
            (metrics.0, metrics.1.to_owned()),
            "{name}: metrics"
        );
    }
}

#[test]
fn timeouts_compression_and_interval() {
    let file = TelemetryConfig {
        otlp_timeout: Some(Duration::from_millis(700)),
        otlp_compression: Some(OtlpCompression::None),
        metrics_export_interval: Some(Duration::from_millis(900)),
        ..enabled()
    };
    use OtlpCompression::{Gzip, None as Plain};
    // (case, file, env, traces (timeout ms, compression), metrics (timeout ms, compression), interval ms)
    type Want = ((u64, OtlpCompression), (u64, OtlpCompression), u64);
    let cases: Vec<Case<Want>> = vec![
        (
            "defaults",
            enabled(),
            &[],
            ((5000, Gzip), (5000, Gzip), 10_000),
        ),
        ("file", file.clone(), &[], ((700, Plain), (700, Plain), 900)),
        (
            "generic env beats file",
            file.clone(),
            &[
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
            ],
            ((300, Gzip), (300, Gzip), 1500),
        ),
        (
            "signal env beats generic",
            enabled(),
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "100"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "200"),
                ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ],
            ((100, Gzip), (200, Plain), 10_000),
        ),
    ];
    for (name, cfg, env, (traces, metrics, interval)) in &cases {
        let got = otlp(cfg, env);
        let view = |e: Option<Exporter>| {
            e.map(|e| (e.timeout.as_millis() as u64, e.compression))
                .unwrap()
        };
        assert_eq!(view(got.traces), *traces, "{name}: traces");
        assert_eq!(view(got.metrics), *metrics, "{name}: metrics");
        assert_eq!(
            got.metric_export_interval,
            Duration::from_millis(*interval),
            "{name}: interval"
        );
    }
}

#[test]
fn samplers() {
    let file_ratio = TelemetryConfig {
        traces_sampler: Some(Sampler::ParentBasedTraceIdRatio(0.25)),
        ..enabled()
    };
    let cases: Vec<Case<Sampler>> = vec![
        ("default", enabled(), &[], Sampler::ParentBasedAlwaysOn),
        (
            "file",
            file_ratio.clone(),
            &[],
            Sampler::ParentBasedTraceIdRatio(0.25),
        ),
        (
            "arg alone does not touch the file",
            file_ratio.clone(),
            &[("OTEL_TRACES_SAMPLER_ARG", "0.5")],
            Sampler::ParentBasedTraceIdRatio(0.25),
        ),
        (
            "env beats file",
            file_ratio.clone(),
            &[("OTEL_TRACES_SAMPLER", "always_off")],
            Sampler::AlwaysOff,
        ),
        (
            "always_on",
            enabled(),
            &[("OTEL_TRACES_SAMPLER", "always_on")],
            Sampler::AlwaysOn,
        ),
        (
            "parentbased_always_on",
            file_ratio.clone(),
            &[("OTEL_TRACES_SAMPLER", "parentbased_always_on")],
            Sampler::ParentBasedAlwaysOn,
        ),
        (
            "ratio with arg",
            enabled(),
            &[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
            ],
            Sampler::ParentBasedTraceIdRatio(0.1),
        ),
        (
            "ratio without arg",
            enabled(),
            &[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")],
            Sampler::ParentBasedTraceIdRatio(1.0),
        ),
    ];
    for (name, cfg, env, want) in &cases {
        assert_eq!(otlp(cfg, env).sampler, *want, "{name}");
    }
}

#[test]
fn resource_attributes() {
    let named = TelemetryConfig {
        service_name: Some("file-name".into()),
        ..enabled()
    };
    const VERSION: &str = env!("CARGO_PKG_VERSION");
    // (case, file, env, expected "k=v" pairs in key order)
    let cases: Vec<Case<Vars>> = vec![
        (
            "defaults",
            enabled(),
            &[],
            &[
                ("service.instance.id", "culture-a-culture-b"),
                ("service.name", "culture.harness.codex"),
                ("service.version", VERSION),
            ],
        ),
        (
            "file name",
            named.clone(),
            &[],
            &[
                ("service.instance.id", "culture-a-culture-b"),
                ("service.name", "file-name"),
                ("service.version", VERSION),
            ],
        ),
        (
            "resource attributes add, override and decode",
            named.clone(),
            &[(
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod, service.name=attr-name,team=a%2Cb%3Dc,",
            )],
            &[
                ("deployment.environment", "prod"),
                ("service.instance.id", "culture-a-culture-b"),
                ("service.name", "attr-name"),
                ("service.version", VERSION),
                ("team", "a,b=c"),
            ],
        ),
        (
            "OTEL_SERVICE_NAME wins over everything",
            named.clone(),
            &[
                ("OTEL_RESOURCE_ATTRIBUTES", "service.name=attr-name"),
                ("OTEL_SERVICE_NAME", "env-name"),
            ],
            &[
                ("service.instance.id", "culture-a-culture-b"),
                ("service.name", "env-name"),
                ("service.version", VERSION),
            ],
        ),
    ];
    for (name, cfg, env, want) in &cases {
        let got = otlp(cfg, env).resource;
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn log_filter_comes_from_rust_log() {
    let cases: Vec<(&str, Vars, &str)> = vec![
        ("default", &[], "info"),
        ("empty counts as unset", &[("RUST_LOG", "")], "info"),
        (
            "set",
            &[("RUST_LOG", "codexd=debug,warn")],
            "codexd=debug,warn",
        ),
    ];
    let off = TelemetryConfig {
        enabled: false,
        ..enabled()
    };
    for (name, env, want) in &cases {
        assert_eq!(resolve(&off, env).expect(name).log_filter, *want, "{name}");
    }
}

#[test]
fn bad_values_name_their_source() {
    let bad_file = TelemetryConfig {
        otlp_endpoint: Some("collector:4317".into()),
        ..enabled()
    };
    // (case, file, env, the variable or key the error must name)
    let cases: Vec<Case<&str>> = vec![
        (
            "rust_log",
            enabled(),
            &[("RUST_LOG", "codexd=loud")],
            "RUST_LOG",
        ),
        (
            "sdk disabled",
            enabled(),
            &[("OTEL_SDK_DISABLED", "yes")],
            "OTEL_SDK_DISABLED",
        ),
        (
            "protocol",
            enabled(),
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            "signal protocol",
            enabled(),
            &[("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "udp")],
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        ),
        (
            "endpoint scheme",
            enabled(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            "signal endpoint",
            enabled(),
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://")],
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ),
        (
            "file endpoint",
            bad_file.clone(),
            &[],
            "telemetry.otlp_endpoint",
        ),
        (
            "timeout",
            enabled(),
            &[("OTEL_EXPORTER_OTLP_TIMEOUT", "5s")],
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ),
        (
            "zero timeout",
            enabled(),
            &[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0")],
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        ),
        (
            "compression",
            enabled(),
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")],
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ),
        (
            "sampler",
            enabled(),
            &[("OTEL_TRACES_SAMPLER", "traceidratio")],
            "OTEL_TRACES_SAMPLER",
        ),
        (
            "sampler arg",
            enabled(),
            &[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        (
            "interval",
            enabled(),
            &[("OTEL_METRIC_EXPORT_INTERVAL", "-1")],
            "OTEL_METRIC_EXPORT_INTERVAL",
        ),
        (
            "resource attributes",
            enabled(),
            &[("OTEL_RESOURCE_ATTRIBUTES", "a=1,b")],
            "OTEL_RESOURCE_ATTRIBUTES",
        ),
        (
            "resource encoding",
            enabled(),
            &[("OTEL_RESOURCE_ATTRIBUTES", "a=%zz")],
            "OTEL_RESOURCE_ATTRIBUTES",
        ),
    ];
    for (name, cfg, env, source) in &cases {
        let error = resolve(cfg, env).expect_err(name);
        let named = match &error {
            TelemetryError::InvalidEnv { variable, .. } => variable.as_str(),
            TelemetryError::InvalidConfig { key, .. } => key,
            other => panic!("{name}: unexpected {other:?}"),
        };
        assert_eq!(named, *source, "{name}");
        assert!(error.to_string().starts_with(source), "{name}: {error}");
    }
}

#[test]
fn endpoints_are_shown_without_credentials_or_query() {
    let secret = "https://user:s3cret@collector:4318/?api_key=k3y";
    let exporter = otlp(
        &enabled(),
        &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", secret)],
    )
    .traces
    .expect("traces");
    assert_eq!(exporter.endpoint, secret, "used as given");
    assert_eq!(exporter.shown_endpoint(), "https://collector:4318/");
    let bad = "user:s3cret@collector:4318/?api_key=k3y";
    let from_file = TelemetryConfig {
        otlp_endpoint: Some(bad.into()),
        ..enabled()
    };
    let errors = [
        resolve(&enabled(), &[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]),
        resolve(&enabled(), &[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", bad)]),
        resolve(&from_file, &[]),
    ];
    for error in errors {
        let text = error.expect_err("not an http URL").to_string();
        assert!(text.contains("collector:4318/"), "{text}");
        assert!(!text.contains("s3cret") && !text.contains("k3y"), "{text}");
    }
}
