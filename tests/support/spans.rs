#![allow(dead_code, unreachable_pub)]

//! Spans captured in memory through the same OpenTelemetry layer and filter the daemon
//! installs, for tests on a current-thread runtime (the subscriber is thread-local).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// Captures spans until dropped.
pub struct Spans {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Spans {
    /// Installs the capturing subscriber on this thread.
    pub fn capture() -> Spans {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("test"))
            .with_filter(tracing_subscriber::filter::filter_fn(
                codexd_actors::trace::otel_filter,
            ));
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(otel));
        Spans {
            exporter,
            _provider: provider,
            _guard: guard,
        }
    }

    /// Every finished span named `name`, in the order they ended.
    pub fn named(&self, name: &str) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("spans")
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }
}

/// A span attribute's value as text.
pub fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}
