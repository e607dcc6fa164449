//! `telemetry::init` end to end against a real OTLP receiver, over gRPC and HTTP/protobuf
//! with gzip, and its shutdown with no collector at all.
//!
//! `init` installs process-wide state (the global subscriber), so every case runs in a fresh
//! process: each test re-runs this binary's ignored `child` test with the case in
//! `CODEXD_OTLP_CHILD`, under a 60 s hang detector, and then inspects what the receiver got.

#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use codexd::config::{OtlpCompression, OtlpProtocol, TelemetryConfig};
use codexd::env::Env;
use codexd::telemetry::{self, LogFormat, METER_NAME, Settings, TRACER_NAME};
use codexd_actors::trace::TraceCtx;
use opentelemetry::KeyValue;
use otlp::{OtlpSink, skip_or_fail};
use serde::{Deserialize, Serialize};

const CHILD_ENV: &str = "CODEXD_OTLP_CHILD";
/// `Case::protocol` for `telemetry.enabled: false`.
const OFF: &str = "off";
const RESULT_PREFIX: &str = "CHILD-RESULT ";
const HANG_DETECTOR: Duration = Duration::from_secs(60);

/// What one child process does.
#[derive(Debug, Serialize, Deserialize)]
struct Case {
    /// `grpc` or `http/protobuf`.
    protocol: String,
    /// The file's `otlp_endpoint`.
    endpoint: String,
    /// A `service.name` unique to the case.
    service: String,
    /// `otlp_timeout_ms`.
    export_timeout_ms: u64,
    /// What the child passes to `Telemetry::shutdown`.
    shutdown_timeout_ms: u64,
}

/// What the child reports back on stdout.
#[derive(Debug, Serialize, Deserialize)]
struct ChildResult {
    traceparent: Option<String>,
    outcome: String,
    shutdown_ms: u64,
    /// OS threads of the child before `init` and after the spans and metric were emitted.
    threads: (usize, usize),
}

#[test]
fn exports_spans_and_metrics_over_grpc_with_gzip() {
    exports_to_a_real_receiver("grpc");
}

#[test]
fn exports_spans_and_metrics_over_http_protobuf_with_gzip() {
    exports_to_a_real_receiver("http/protobuf");
}

#[test]
fn shutdown_returns_with_no_collector_over_grpc() {
    shutdown_returns_with_no_collector("grpc");
}

#[test]
fn shutdown_returns_with_no_collector_over_http_protobuf() {
    shutdown_returns_with_no_collector("http/protobuf");
}

fn exports_to_a_real_receiver(protocol: &str) {
    let sink = match OtlpSink::start() {
        Ok(sink) => sink,
        Err(reason) => return skip_or_fail(&reason),
    };
    let endpoint = match protocol {
        "grpc" => sink.grpc_endpoint(),
        _ => sink.http_endpoint(),
    };
    let service = format!("codexd-test-{}", protocol.replace('/', "-"));
    let result = run_child(&Case {
        protocol: protocol.into(),
        endpoint,
        service: service.clone(),
        export_timeout_ms: 3000,
        shutdown_timeout_ms: 10_000,
    });
    assert_eq!(result.outcome, "Flushed", "{result:?}");
    eprintln!(
        "{protocol}: shutdown with a collector took {} ms",
        result.shutdown_ms
    );

    let transport = if protocol == "grpc" { "grpc" } else { "http" };
    let spans = sink.spans();
    let span = |name: &str| {
        let found = spans.iter().find(|s| s.name == name);
        found
            .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
            .clone()
    };
    let (parent, child) = (span("codexd.test.parent"), span("codexd.test.child"));
    for span in [&parent, &child] {
        assert_eq!(span.service_name, service, "{span:?}");
        assert_eq!(span.scope, TRACER_NAME, "{span:?}");
        assert_eq!(span.transport, transport, "{span:?}");
        if transport == "http" {
            assert_eq!(span.encoding.as_deref(), Some("gzip"), "{span:?}");
        }
    }
    assert_eq!(child.trace_id, parent.trace_id);
    assert_eq!(child.parent_span_id, parent.span_id);
    assert_eq!(parent.parent_span_id, "", "the parent is a root");
    let traceparent = result
        .traceparent
        .expect("TraceCtx::current inside the parent span");
    assert_eq!(
        traceparent,
        format!("00-{}-{}-01", parent.trace_id, parent.span_id)
    );

    if transport == "grpc" {
        let compressed = sink.grpc_wire_compressed();
        assert!(
            !compressed.is_empty() && compressed.iter().all(|&c| c),
            "gzip on the wire: {compressed:?}"
        );
    }

    let metrics = sink.metrics();
    let metric = metrics.iter().find(|m| m.name == "codexd.test.exports");
    let metric = metric.unwrap_or_else(|| panic!("no codexd.test.exports in {metrics:#?}"));
    assert_eq!(
        (metric.service_name.as_str(), metric.scope.as_str()),
        (service.as_str(), METER_NAME)
    );
    assert_eq!(metric.transport, transport);
    if transport == "http" {
        assert_eq!(metric.encoding.as_deref(), Some("gzip"), "{metric:?}");
    }
}

#[test]
fn disabled_telemetry_starts_nothing_and_logs_panics_as_one_line() {
    let case = Case {
        protocol: OFF.into(),
        endpoint: "http://127.0.0.1:9".into(),
        service: "codexd-test-off".into(),
        export_timeout_ms: 3000,
        shutdown_timeout_ms: 10_000,
    };
    let (result, stderr) = run_child_with_stderr(&case);
    assert_eq!(result.outcome, "Off");
    assert_eq!(
        result.threads.0, result.threads.1,
        "init started threads: {result:?}"
    );
    assert_eq!(
        result.traceparent, None,
        "no OTel context without the layer"
    );

    let panics: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "panic")
        .collect();
    assert_eq!(panics.len(), 1, "{stderr}");
    let fields = &panics[0]["fields"];
    assert_eq!(panics[0]["level"], "ERROR");
    assert_eq!(fields["panic.message"], "boom in a thread");
    assert!(
        fields["panic.location"]
            .as_str()
            .unwrap()
            .contains("telemetry_otlp.rs")
    );
    assert!(
        !stderr.contains("panicked at"),
        "the default hook also printed:\n{stderr}"
    );
}

/// How the collector address behaves.
#[derive(Debug, Clone, Copy)]
enum Collector {
    /// Nothing listens: connections are refused at once.
    Refusing,
    /// A socket that accepts connections (kernel backlog) and never answers.
    Silent,
}

fn shutdown_returns_with_no_collector(protocol: &str) {
    // (collector, export timeout ms, shutdown timeout ms, expected outcome)
    let cases = [
        (Collector::Refusing, 3000, 10_000, "Failed"),
        (Collector::Silent, 1500, 10_000, "Failed"),
        (Collector::Silent, 5000, 1000, "TimedOut"),
    ];
    for (collector, export_timeout_ms, shutdown_timeout_ms, want) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        if let Collector::Refusing = collector {
            drop(listener);
        }
        let service = format!("codexd-test-{collector:?}-{}", protocol.replace('/', "-"));
        let case = Case {
            protocol: protocol.into(),
            endpoint,
            service,
            export_timeout_ms,
            shutdown_timeout_ms,
        };
        let started = Instant::now();
        let result = run_child(&case);
        eprintln!(
            "{protocol}, {collector:?} collector: shutdown {} after {} ms (child process {} ms)",
            result.outcome,
            result.shutdown_ms,
            started.elapsed().as_millis()
        );
        assert_eq!(result.outcome, want, "{case:?}");
    }
}

/// Runs the `child` test in a fresh process for `case`; panics if it fails or hangs.
fn run_child(case: &Case) -> ChildResult {
    run_child_with_stderr(case).0
}

/// [`run_child`], also returning the child's stderr (its log output).
fn run_child_with_stderr(case: &Case) -> (ChildResult, String) {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env(CHILD_ENV, serde_json::to_string(case).unwrap())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("re-running the test binary");
    let deadline = Instant::now() + HANG_DETECTOR;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{case:?} hung for {HANG_DETECTOR:?}:\n{}", read(&stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (read(&stdout), read(&stderr));
    assert!(
        status.success(),
        "{case:?} failed ({status}):\n{out}\n{err}"
    );
    // libtest prints `test child ... ` on the same line first.
    let line = out
        .lines()
        .find_map(|l| l.split_once(RESULT_PREFIX).map(|(_, json)| json));
    let line = line.unwrap_or_else(|| panic!("{case:?}: no result line:\n{out}\n{err}"));
    (serde_json::from_str(line).unwrap(), err)
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// One case in this process: init (real subscriber, real exporters), a span with a child, a
/// counter, shutdown. Does nothing unless started by `run_child`.
#[test]
#[ignore = "runs in a fresh process, started by the other tests"]
fn child() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    let case: Case = serde_json::from_str(&case).unwrap();
    let protocol = match case.protocol.as_str() {
        "grpc" => OtlpProtocol::Grpc,
        _ => OtlpProtocol::HttpProtobuf,
    };
    let cfg = TelemetryConfig {
        enabled: case.protocol != OFF,
        service_name: Some(case.service.clone()),
        otlp_endpoint: Some(case.endpoint.clone()),
        otlp_protocol: Some(protocol),
        otlp_timeout: Some(Duration::from_millis(case.export_timeout_ms)),
        otlp_compression: Some(OtlpCompression::Gzip),
        otlp_headers: None,
        traces_enabled: true,
        traces_sampler: None,
        metrics_enabled: true,
        // Long enough that the only metric export is the one shutdown flushes.
        metrics_export_interval: Some(Duration::from_secs(600)),
        ..TelemetryConfig::default()
    };
    let settings = Settings::resolve(&cfg, "culture-test", &Env::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let threads_before = thread_count();
    let (telemetry, traceparent) = runtime.block_on(async {
        let telemetry = telemetry::init(&settings, LogFormat::Json).unwrap();
        let traceparent = tracing::info_span!("codexd.test.parent", test.case = %case.service)
            .in_scope(|| {
                tracing::info_span!("codexd.test.child")
                    .in_scope(|| tracing::info!("inside the child span"));
                TraceCtx::current().traceparent
            });
        let counter = opentelemetry::global::meter(METER_NAME)
            .u64_counter("codexd.test.exports")
            .build();
        counter.add(3, &[KeyValue::new("case", case.service.clone())]);
        (telemetry, traceparent)
    });
    let threads_after = thread_count();
    if case.protocol == OFF {
        let panicked = std::thread::spawn(|| panic!("boom in a thread")).join();
        assert!(panicked.is_err());
    }
    let started = Instant::now();
    let outcome = telemetry.shutdown(Duration::from_millis(case.shutdown_timeout_ms));
    let result = ChildResult {
        traceparent,
        outcome: format!("{outcome:?}"),
        shutdown_ms: started.elapsed().as_millis() as u64,
        threads: (threads_before, threads_after),
    };
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&result).unwrap());
    // Exporter threads may still be blocked (TimedOut); do not wait for the runtime's tasks.
    runtime.shutdown_background();
}

/// The process's OS threads (Linux).
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |tasks| tasks.count())
}
