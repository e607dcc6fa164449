//! A real OTLP receiver for tests: runs `tests/support/otlp_sink.py` from the venv that
//! `scripts/install-peers` made under `$CODEXD_PEERS/otlp-sink/` (default `<repo>/.peers`),
//! on free loopback ports, and reads back what it received.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long the sink may take to report its ports (cold Python + grpc import is ~1 s).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running sink; killed on drop.
pub(crate) struct OtlpSink {
    child: Child,
    out: PathBuf,
    _dir: tempfile::TempDir,
    /// `https` when the sink serves TLS, else `http`.
    scheme: &'static str,
    /// OTLP/gRPC port on 127.0.0.1.
    pub(crate) grpc_port: u16,
    /// OTLP/HTTP port on 127.0.0.1.
    pub(crate) http_port: u16,
}

/// TLS for the sink: its certificate and key, and the CA client certificates must chain to
/// (mTLS) when set.
#[derive(Debug, Clone)]
pub(crate) struct SinkTls {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) client_ca: Option<PathBuf>,
}

/// One span as the sink received it.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedSpan {
    pub(crate) transport: String,
    pub(crate) encoding: Option<String>,
    pub(crate) service_name: String,
    pub(crate) scope: String,
    pub(crate) name: String,
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    /// Empty for a root span.
    pub(crate) parent_span_id: String,
    /// The span's attributes: key → OTLP/JSON `AnyValue` (`{"stringValue": …}`, …).
    pub(crate) attributes: serde_json::Map<String, Value>,
}

impl ReceivedSpan {
    /// An attribute's value as text (`intValue` arrives as a string), if the span has it.
    pub(crate) fn attr(&self, key: &str) -> Option<String> {
        let value = self.attributes.get(key)?.as_object()?.values().next()?;
        match value {
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// One metric as the sink received it.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedMetric {
    pub(crate) transport: String,
    pub(crate) encoding: Option<String>,
    pub(crate) service_name: String,
    pub(crate) scope: String,
    pub(crate) name: String,
    /// The resource's attributes: key → OTLP/JSON `AnyValue`.
    pub(crate) resource: serde_json::Map<String, Value>,
    /// Which export request (0, 1, …, in arrival order) carried it.
    pub(crate) request: usize,
    /// Its data points (gauge, sum or histogram).
    pub(crate) points: Vec<ReceivedPoint>,
}

/// One data point of a received metric.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedPoint {
    /// The point's attributes: key → OTLP/JSON `AnyValue`.
    pub(crate) attributes: serde_json::Map<String, Value>,
    /// A gauge's or sum's value (`asInt`, or `asDouble` rounded); a histogram's `sum`.
    pub(crate) value: Option<f64>,
    /// A histogram's `count`.
    pub(crate) count: Option<u64>,
}

impl ReceivedPoint {
    /// An attribute's value as text, like [`ReceivedSpan::attr`].
    pub(crate) fn attr(&self, key: &str) -> Option<String> {
        any_value_text(self.attributes.get(key)?)
    }
}

impl ReceivedMetric {
    /// A resource attribute's value as text.
    pub(crate) fn resource_attr(&self, key: &str) -> Option<String> {
        any_value_text(self.resource.get(key)?)
    }
}

/// Where install-peers put the peers.
pub(crate) fn peers_dir() -> PathBuf {
    std::env::var_os("CODEXD_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".peers"))
}

/// A peer is missing: fail under `CI=true`, otherwise print a loud SKIP line.
pub(crate) fn skip_or_fail(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("peer missing under CI=true: {reason}");
    }
    eprintln!("SKIP: {reason} (run scripts/install-peers)");
}

impl OtlpSink {
    /// Starts the sink; `Err` says the receiver is not installed. A sink that is installed
    /// but does not come up is a test failure (panic).
    pub(crate) fn start() -> Result<OtlpSink, String> {
        Self::start_with(None)
    }

    /// Starts the sink serving TLS only (both transports).
    pub(crate) fn start_tls(tls: &SinkTls) -> Result<OtlpSink, String> {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&SinkTls>) -> Result<OtlpSink, String> {
        let python = peers_dir().join("otlp-sink/venv/bin/python");
        if !python.exists() {
            return Err(format!(
                "OTLP receiver not installed: {} is missing",
                python.display()
            ));
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/otlp_sink.py");
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("received.jsonl");
        let mut command = Command::new(&python);
        command.arg(&script).arg(&out);
        if let Some(tls) = tls {
            command.arg("--tls-cert").arg(&tls.cert);
            command.arg("--tls-key").arg(&tls.key);
            if let Some(ca) = &tls.client_ca {
                command.arg("--client-ca").arg(ca);
            }
        }
        // gRPC core logs every refused TLS handshake at INFO; the tests read the refusals
        // from the output file instead.
        let mut child = command
            .env("GRPC_VERBOSITY", "ERROR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) if !line.is_empty() => line,
            _ => {
                let _ = child.kill();
                panic!("the OTLP sink did not report its ports within {READY_TIMEOUT:?}");
            }
        };
        let ports: Value = serde_json::from_str(&line).expect("ports line");
        let port = |key: &str| {
            ports[key]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .expect("port")
        };
        Ok(OtlpSink {
            scheme: if tls.is_some() { "https" } else { "http" },
            grpc_port: port("grpc"),
            http_port: port("http"),
            child,
            out,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:<grpc port>` (`https://` when serving TLS).
    pub(crate) fn grpc_endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.grpc_port)
    }

    /// `http://127.0.0.1:<http port>` (a base URL; the exporter appends `/v1/<signal>`;
    /// `https://` when serving TLS).
    pub(crate) fn http_endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.http_port)
    }

    /// Why the TLS handshakes of refused HTTP connections failed, as Python's ssl put it.
    pub(crate) fn tls_errors(&self) -> Vec<String> {
        let requests = self.requests();
        let errors = requests.iter().filter_map(|r| r["tls_error"].as_str());
        errors.map(str::to_owned).collect()
    }

    /// Every export request received so far, one JSON object each.
    pub(crate) fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("sink line"))
            .collect()
    }

    /// For each gRPC request stream seen on the wire: was its message gzip-compressed?
    pub(crate) fn grpc_wire_compressed(&self) -> Vec<bool> {
        let requests = self.requests();
        let wire = requests
            .iter()
            .filter_map(|r| r["wire"]["compressed"].as_bool());
        wire.collect()
    }

    /// Every span received so far.
    pub(crate) fn spans(&self) -> Vec<ReceivedSpan> {
        let mut spans = Vec::new();
        for request in self.requests().iter().filter(|r| r["signal"] == "traces") {
            for resource in array(&request["request"]["resourceSpans"]) {
                let service_name = service_name(&resource["resource"]);
                for scope in array(&resource["scopeSpans"]) {
                    for span in array(&scope["spans"]) {
                        spans.push(ReceivedSpan {
                            transport: text(&request["transport"]),
                            encoding: request["encoding"].as_str().map(str::to_owned),
                            service_name: service_name.clone(),
                            scope: text(&scope["scope"]["name"]),
                            name: text(&span["name"]),
                            trace_id: text(&span["traceId"]),
                            span_id: text(&span["spanId"]),
                            parent_span_id: text(&span["parentSpanId"]),
                            attributes: array(&span["attributes"])
                                .iter()
                                .map(|a| (text(&a["key"]), a["value"].clone()))
                                .collect(),
                        });
                    }
                }
            }
        }
        spans
    }

    /// Every metric received so far.
    pub(crate) fn metrics(&self) -> Vec<ReceivedMetric> {
        let mut metrics = Vec::new();
        let requests = self.requests();
        let exports = requests.iter().filter(|r| r["signal"] == "metrics");
        for (index, request) in exports.enumerate() {
            for resource in array(&request["request"]["resourceMetrics"]) {
                let service_name = service_name(&resource["resource"]);
                for scope in array(&resource["scopeMetrics"]) {
                    for metric in array(&scope["metrics"]) {
                        metrics.push(ReceivedMetric {
                            transport: text(&request["transport"]),
                            encoding: request["encoding"].as_str().map(str::to_owned),
                            service_name: service_name.clone(),
                            scope: text(&scope["scope"]["name"]),
                            name: text(&metric["name"]),
                            resource: attributes(&resource["resource"]),
                            request: index,
                            points: points(metric),
                        });
                    }
                }
            }
        }
        metrics
    }

    /// The data points of `name` in the last export that carried it (a gauge's current
    /// values); empty before the first.
    pub(crate) fn latest_points(&self, name: &str) -> Vec<ReceivedPoint> {
        let metrics = self.metrics();
        let latest = metrics.iter().rev().find(|m| m.name == name);
        latest.map(|m| m.points.clone()).unwrap_or_default()
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// `attributes` of an OTLP/JSON object as key → `AnyValue`.
fn attributes(object: &Value) -> serde_json::Map<String, Value> {
    array(&object["attributes"])
        .iter()
        .map(|a| (text(&a["key"]), a["value"].clone()))
        .collect()
}

/// The data points of a gauge, sum or histogram.
fn points(metric: &Value) -> Vec<ReceivedPoint> {
    let kinds = ["gauge", "sum", "histogram"];
    let data = kinds.iter().map(|kind| &metric[*kind]["dataPoints"]);
    let number = |value: &Value| match value {
        Value::String(text) => text.parse::<f64>().ok(),
        other => other.as_f64(),
    };
    data.flat_map(array)
        .map(|point| ReceivedPoint {
            attributes: attributes(point),
            value: number(&point["asInt"])
                .or_else(|| number(&point["asDouble"]))
                .or_else(|| number(&point["sum"])),
            count: number(&point["count"]).map(|c| c as u64),
        })
        .collect()
}

/// An OTLP/JSON `AnyValue` as text (`intValue` arrives as a string).
fn any_value_text(value: &Value) -> Option<String> {
    match value.as_object()?.values().next()? {
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

fn service_name(resource: &Value) -> String {
    array(&resource["attributes"])
        .iter()
        .find(|a| a["key"] == "service.name")
        .map(|a| text(&a["value"]["stringValue"]))
        .unwrap_or_default()
}
