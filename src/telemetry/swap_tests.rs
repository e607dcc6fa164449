//! The swap in front of the SDK: exports go to whichever target is current, a failing
//! collector is logged once per change of error, and the resource reaches later targets.

use std::collections::VecDeque;
use std::sync::Arc;

use opentelemetry_sdk::error::OTelSdkError;
use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// A span exporter that answers from a script and counts what it was given.
#[derive(Debug, Default)]
struct Scripted {
    results: Mutex<VecDeque<OTelSdkResult>>,
    exported: Mutex<usize>,
    resource: Option<Resource>,
}

impl Scripted {
    fn answering(results: Vec<OTelSdkResult>) -> Scripted {
        Scripted {
            results: Mutex::new(results.into()),
            ..Scripted::default()
        }
    }
}

impl SpanExporter for Scripted {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        *lock(&self.exported) += batch.len().max(1);
        lock(&self.results).pop_front().unwrap_or(Ok(()))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = Some(resource.clone());
    }
}

/// Log lines captured by a test subscriber.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

fn failure(text: &str) -> OTelSdkResult {
    Err(OTelSdkError::InternalFailure(text.to_owned()))
}

fn target(exporter: Scripted, endpoint: &str) -> Target<Scripted> {
    Target::new(exporter, "traces", endpoint.to_owned(), None, None)
}

/// Runs `exports` exports through `swap` under a capturing subscriber; the log.
fn export_n(swap: &Swap<Scripted>, exports: usize) -> String {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(lines.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..exports {
            let _ = futures::executor::block_on(swap.export(Vec::new()));
        }
    });
    lines.text()
}

#[test]
fn each_error_of_a_failure_streak_is_logged_once() {
    let untrusted = "transport error: invalid peer certificate: UnknownIssuer: invalid peer certificate: \
         UnknownIssuer";
    let script = vec![
        failure(untrusted),
        failure(untrusted),
        failure("connection refused"),
        failure(untrusted),
        Ok(()),
        Ok(()),
        failure("connection refused"),
    ];
    let swap = Swap(Slot::new(target(
        Scripted::answering(script),
        "https://collector:4317",
    )));
    let log = export_n(&swap, 7);
    let events: Vec<&str> = log
        .lines()
        .map(|line| {
            ["otlp export failed", "otlp export recovered"]
                .into_iter()
                .find(|m| line.contains(m))
                .unwrap_or(line)
        })
        .collect();
    assert_eq!(
        events,
        [
            "otlp export failed",
            "otlp export failed",
            "otlp export recovered",
            "otlp export failed"
        ],
        "{log}"
    );
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].ends_with(
            "error=Operation failed: transport error: invalid peer certificate: UnknownIssuer"
        ),
        "said once: {log}"
    );
    assert!(
        lines[0].contains("endpoint=https://collector:4317"),
        "{log}"
    );
    assert!(lines[1].contains("connection refused"), "{log}");
    assert!(lines[2].contains("failed_exports=4"), "{log}");
}

#[test]
fn a_streak_logs_a_few_different_errors_at_most() {
    let script = (0..20)
        .map(|n| failure(&format!("error {}", n % 10)))
        .collect();
    let swap = Swap(Slot::new(target(
        Scripted::answering(script),
        "https://collector:4317",
    )));
    let log = export_n(&swap, 20);
    let failed = log.matches("otlp export failed").count();
    assert_eq!(failed, DISTINCT_LOGGED, "{log}");
}

#[test]
fn repeated_tails_are_said_once() {
    let cases = [
        ("e: a: b: a: b", "e: a: b"),
        ("e: a: a", "e: a"),
        ("a: b: a", "a: b: a"),
        ("a", "a"),
        ("", ""),
    ];
    for (text, want) in cases {
        assert_eq!(without_repeats(text), want, "{text}");
    }
}

#[test]
fn an_http_clients_note_replaces_the_vague_error() {
    let note = FailureNote::default();
    let exporter = Scripted::answering(vec![failure("HTTP export failed: network error")]);
    let target = Target::new(
        exporter,
        "metrics",
        "https://collector:4318/v1/metrics".to_owned(),
        Some("system roots".to_owned()),
        Some(note.clone()),
    );
    *lock(&note) = Some("client error (Connect): invalid peer certificate: UnknownIssuer".into());
    let swap = Swap(Slot::new(target));
    let log = export_n(&swap, 1);
    assert!(
        log.contains("invalid peer certificate: UnknownIssuer"),
        "{log}"
    );
    assert!(log.contains("trust=\"system roots\""), "{log}");
    assert!(!log.contains("network error"), "{log}");
    assert!(lock(&note).is_none(), "the note is used once");
}

#[test]
fn a_replaced_target_gets_the_next_exports_and_the_resource() {
    let slot = Slot::new(target(Scripted::default(), "https://old:4317"));
    let mut swap = Swap(slot.clone());
    let resource = Resource::builder_empty()
        .with_attribute(opentelemetry::KeyValue::new("service.name", "codexd-test"))
        .build();
    swap.set_resource(&resource);
    assert_eq!(slot.current().exporter.resource.as_ref(), Some(&resource));
    export_n(&swap, 2);

    let mut next = target(Scripted::default(), "https://new:4317");
    if let Some(resource) = slot.resource() {
        next.exporter_mut().set_resource(&resource);
    }
    let old = slot.replace(next);
    export_n(&swap, 3);
    assert_eq!(*lock(&old.exporter.exported), 2);
    let current = slot.current();
    assert_eq!(*lock(&current.exporter.exported), 3);
    assert_eq!(current.exporter.resource.as_ref(), Some(&resource));
    assert_eq!(format!("{swap:?}"), "Swap(traces to https://new:4317)");
}

#[test]
fn only_the_sdks_per_export_errors_are_left_out_of_the_log() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::{Layer as _, filter::filter_fn};
    let lines = Lines::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(lines.clone())
        .with_ansi(false)
        .with_filter(filter_fn(|meta| !is_replaced_sdk_event(meta)));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(name: "BatchSpanProcessor.ExportError", target: "opentelemetry_sdk", "one");
        tracing::error!(name: "PeriodicReader.ExportError", target: "opentelemetry_sdk", "two");
        tracing::warn!(name: "BatchSpanProcessor.SpanDroppingStarted", target: "opentelemetry_sdk", "three");
        tracing::error!(name: "BatchSpanProcessor.ExportError", target: "codexd", "four");
    });
    let log = lines.text();
    let kept: Vec<&str> = ["one", "two", "three", "four"]
        .into_iter()
        .filter(|word| log.contains(&format!(" {word}")))
        .collect();
    assert_eq!(kept, ["three", "four"], "{log}");
}
