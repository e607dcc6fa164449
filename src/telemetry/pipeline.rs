//! Building the OpenTelemetry providers from resolved [`OtlpSettings`]: a batch span
//! processor and a periodic metric reader, each over a [`Swap`] holding its OTLP exporter, so
//! a reload can point it at another collector ([`span_target`], [`metric_target`]).
//!
//! Both run on dedicated OS threads owned by the SDK. Exports are not retried: one attempt,
//! bounded by the exporter timeout, so a missing collector costs at most one timeout per batch.
//!
//! | protocol        | transport                  | TLS (`https://` endpoints)                  |
//! |-----------------|----------------------------|---------------------------------------------|
//! | `grpc`          | tonic                      | tonic's `ClientTlsConfig` on ring ([`tls::tonic_config`]) |
//! | `http/protobuf` | codexd's reqwest client ([`NotingClient`]) | rustls on ring ([`tls::rustls_config`]) |

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{
    Compression, ExporterBuildError, MetricExporter, Protocol, RetryPolicy, SpanExporter,
    WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{
    self as sdktrace, BatchSpanProcessor, SdkTracerProvider, SpanExporter as _,
};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use super::TelemetryError;
use super::http::NotingClient;
use super::settings::{Exporter, OtlpSettings};
use super::swap::{FailureNote, Slot, Swap, Target};
use super::tls;
use crate::config::{OtlpCompression, OtlpProtocol, Sampler};

/// The slot of the span exporter, which a reload refills.
pub(super) type SpanSlot = Slot<SpanExporter>;
/// The slot of the metric exporter.
pub(super) type MetricSlot = Slot<MetricExporter>;

/// What `init` installs: the providers (either may be absent when its signal is switched
/// off) and the slots their exporters sit in.
#[derive(Default)]
pub(super) struct Providers {
    pub(super) tracer: Option<SdkTracerProvider>,
    pub(super) meter: Option<SdkMeterProvider>,
    pub(super) spans: Option<Arc<SpanSlot>>,
    pub(super) metrics: Option<Arc<MetricSlot>>,
}

/// Builds both providers. gRPC exporters must be built inside a multi-thread tokio runtime.
pub(super) fn build(otlp: &OtlpSettings) -> Result<Providers, TelemetryError> {
    let resource = resource(otlp);
    let mut providers = Providers::default();
    if let Some(exporter) = &otlp.traces {
        let slot = Slot::new(span_target(exporter, None)?);
        providers.tracer = Some(tracer_provider(&slot, otlp.sampler, resource.clone()));
        providers.spans = Some(slot);
    }
    if let Some(exporter) = &otlp.metrics {
        let slot = Slot::new(metric_target(exporter)?);
        providers.meter = Some(meter_provider(&slot, otlp, resource));
        providers.metrics = Some(slot);
    }
    Ok(providers)
}

/// A span exporter to `exporter`'s collector, with `resource` (a reload passes the one the
/// provider set; the provider sets it itself at start).
pub(super) fn span_target(
    exporter: &Exporter,
    resource: Option<&Resource>,
) -> Result<Target<SpanExporter>, TelemetryError> {
    let failed = |source| TelemetryError::Exporter {
        signal: "traces",
        source,
    };
    let (built, note) = match exporter.protocol {
        OtlpProtocol::Grpc => {
            check_runtime()?;
            let builder = over_grpc(SpanExporter::builder().with_tonic(), exporter);
            (builder.build(), None)
        }
        OtlpProtocol::HttpProtobuf => {
            let client = http_client(exporter).map_err(failed)?;
            let note = client.note();
            let builder = over_http(SpanExporter::builder().with_http(), exporter);
            (builder.with_http_client(client).build(), Some(note))
        }
    };
    let mut target = target(built.map_err(failed)?, "traces", exporter, note);
    if let Some(resource) = resource {
        target.exporter_mut().set_resource(resource);
    }
    Ok(target)
}

/// A metric exporter to `exporter`'s collector.
pub(super) fn metric_target(exporter: &Exporter) -> Result<Target<MetricExporter>, TelemetryError> {
    let failed = |source| TelemetryError::Exporter {
        signal: "metrics",
        source,
    };
    let (built, note) = match exporter.protocol {
        OtlpProtocol::Grpc => {
            check_runtime()?;
            let builder = over_grpc(MetricExporter::builder().with_tonic(), exporter);
            (builder.build(), None)
        }
        OtlpProtocol::HttpProtobuf => {
            let client = http_client(exporter).map_err(failed)?;
            let note = client.note();
            let builder = over_http(MetricExporter::builder().with_http(), exporter);
            (builder.with_http_client(client).build(), Some(note))
        }
    };
    Ok(target(built.map_err(failed)?, "metrics", exporter, note))
}

fn target<E>(
    built: E,
    signal: &'static str,
    exporter: &Exporter,
    note: Option<FailureNote>,
) -> Target<E> {
    let trust = exporter.tls.as_ref().map(tls::Tls::trust);
    Target::new(built, signal, exporter.shown_endpoint(), trust, note)
}

fn http_client(exporter: &Exporter) -> Result<NotingClient, ExporterBuildError> {
    NotingClient::build(exporter.timeout, exporter.tls.as_ref())
        .map_err(|reason| ExporterBuildError::InternalFailure(format!("the HTTP client: {reason}")))
}

/// tonic needs a runtime at build time, and the SDK's `block_on` export deadlocks on a
/// current-thread runtime (reference/rust-crates.md §3.6).
fn check_runtime() -> Result<(), TelemetryError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            Ok(())
        }
        _ => Err(TelemetryError::Runtime),
    }
}

fn resource(otlp: &OtlpSettings) -> Resource {
    let attributes = otlp
        .resource
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(attributes)
        .build()
}

fn tracer_provider(
    slot: &Arc<SpanSlot>,
    sampler: Sampler,
    resource: Resource,
) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sdk_sampler(sampler))
        .with_span_processor(BatchSpanProcessor::builder(Swap(slot.clone())).build())
        .build()
}

fn meter_provider(
    slot: &Arc<MetricSlot>,
    otlp: &OtlpSettings,
    resource: Resource,
) -> SdkMeterProvider {
    let reader = PeriodicReader::builder(Swap(slot.clone()))
        .with_interval(otlp.metric_export_interval)
        .build();
    SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader)
        .build()
}

/// Endpoint, timeout, compression, headers and no retries, for either signal's gRPC builder.
fn over_grpc<B: WithExportConfig + WithTonicConfig>(builder: B, exporter: &Exporter) -> B {
    let builder = builder
        .with_metadata(metadata(exporter))
        .with_endpoint(&exporter.endpoint)
        .with_timeout(exporter.timeout)
        .with_retry_policy(RetryPolicy::disabled());
    let builder = match &exporter.tls {
        Some(tls) => builder.with_tls_config(tls::tonic_config(tls, tls::roots(tls))),
        None => builder,
    };
    match compression(exporter.compression) {
        Some(compression) => builder.with_compression(compression),
        None => builder,
    }
}

/// The same for either signal's HTTP/protobuf builder (the client, with its TLS, is added
/// by the caller).
fn over_http<B: WithExportConfig + WithHttpConfig>(builder: B, exporter: &Exporter) -> B {
    let builder = builder
        .with_protocol(Protocol::HttpBinary)
        .with_headers(exporter.headers.0.iter().cloned().collect())
        .with_endpoint(&exporter.endpoint)
        .with_timeout(exporter.timeout)
        .with_retry_policy(RetryPolicy::disabled());
    match compression(exporter.compression) {
        Some(compression) => builder.with_compression(compression),
        None => builder,
    }
}

/// The headers as gRPC metadata. `config` checked names and values; one that tonic still
/// refuses is left out (with a warning naming it, never its value).
fn metadata(exporter: &Exporter) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for (name, value) in &exporter.headers.0 {
        let key = MetadataKey::from_bytes(name.as_bytes());
        match (key, MetadataValue::try_from(value.as_str())) {
            (Ok(key), Ok(value)) => {
                metadata.insert(key, value);
            }
            _ => tracing::warn!(header = %name, "otlp header left out: not valid gRPC metadata"),
        }
    }
    metadata
}

fn compression(compression: OtlpCompression) -> Option<Compression> {
    match compression {
        OtlpCompression::Gzip => Some(Compression::Gzip),
        OtlpCompression::None => None,
    }
}

/// | `traces_sampler`              | SDK sampler                          |
/// |-------------------------------|--------------------------------------|
/// | `parentbased_always_on`       | `ParentBased(AlwaysOn)`              |
/// | `parentbased_traceidratio:r`  | `ParentBased(TraceIdRatioBased(r))`  |
/// | `always_on` / `always_off`    | `AlwaysOn` / `AlwaysOff` (no parent) |
fn sdk_sampler(sampler: Sampler) -> sdktrace::Sampler {
    match sampler {
        Sampler::ParentBasedAlwaysOn => {
            sdktrace::Sampler::ParentBased(Box::new(sdktrace::Sampler::AlwaysOn))
        }
        Sampler::ParentBasedTraceIdRatio(ratio) => {
            sdktrace::Sampler::ParentBased(Box::new(sdktrace::Sampler::TraceIdRatioBased(ratio)))
        }
        Sampler::AlwaysOn => sdktrace::Sampler::AlwaysOn,
        Sampler::AlwaysOff => sdktrace::Sampler::AlwaysOff,
    }
}
