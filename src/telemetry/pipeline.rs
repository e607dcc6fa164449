//! Building the OpenTelemetry providers from resolved [`OtlpSettings`]: a batch span
//! processor and a periodic metric reader, each over its own OTLP exporter.
//!
//! Both run on dedicated OS threads owned by the SDK. Exports are not retried: one attempt,
//! bounded by the exporter timeout, so a missing collector costs at most one timeout per batch.

use opentelemetry::KeyValue;
use opentelemetry_otlp::{
    Compression, MetricExporter, Protocol, RetryPolicy, SpanExporter, WithExportConfig,
    WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{self as sdktrace, BatchSpanProcessor, SdkTracerProvider};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use super::TelemetryError;
use super::settings::{Exporter, OtlpSettings};
use crate::config::{OtlpCompression, OtlpProtocol, Sampler};

/// The providers `init` installs; either may be absent when its signal is switched off.
#[derive(Debug, Default)]
pub(super) struct Providers {
    pub(super) tracer: Option<SdkTracerProvider>,
    pub(super) meter: Option<SdkMeterProvider>,
}

/// Builds both providers. gRPC exporters must be built inside a multi-thread tokio runtime.
pub(super) fn build(otlp: &OtlpSettings) -> Result<Providers, TelemetryError> {
    let uses_grpc = [&otlp.traces, &otlp.metrics]
        .into_iter()
        .flatten()
        .any(|e| e.protocol == OtlpProtocol::Grpc);
    if uses_grpc {
        check_runtime()?;
    }
    let resource = resource(otlp);
    let tracer = otlp
        .traces
        .as_ref()
        .map(|exporter| tracer_provider(exporter, otlp.sampler, resource.clone()))
        .transpose()?;
    let meter = otlp
        .metrics
        .as_ref()
        .map(|exporter| meter_provider(exporter, otlp, resource))
        .transpose()?;
    Ok(Providers { tracer, meter })
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
    exporter: &Exporter,
    sampler: Sampler,
    resource: Resource,
) -> Result<SdkTracerProvider, TelemetryError> {
    let built = match exporter.protocol {
        OtlpProtocol::Grpc => over_grpc(SpanExporter::builder().with_tonic(), exporter).build(),
        OtlpProtocol::HttpProtobuf => {
            over_http(SpanExporter::builder().with_http(), exporter).build()
        }
    };
    let span_exporter = built.map_err(|source| TelemetryError::Exporter {
        signal: "traces",
        source,
    })?;
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sdk_sampler(sampler))
        .with_span_processor(BatchSpanProcessor::builder(span_exporter).build())
        .build())
}

fn meter_provider(
    exporter: &Exporter,
    otlp: &OtlpSettings,
    resource: Resource,
) -> Result<SdkMeterProvider, TelemetryError> {
    let built = match exporter.protocol {
        OtlpProtocol::Grpc => over_grpc(MetricExporter::builder().with_tonic(), exporter).build(),
        OtlpProtocol::HttpProtobuf => {
            over_http(MetricExporter::builder().with_http(), exporter).build()
        }
    };
    let metric_exporter = built.map_err(|source| TelemetryError::Exporter {
        signal: "metrics",
        source,
    })?;
    let reader = PeriodicReader::builder(metric_exporter)
        .with_interval(otlp.metric_export_interval)
        .build();
    Ok(SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader)
        .build())
}

/// Endpoint, timeout, compression, headers and no retries, for either signal's gRPC builder.
fn over_grpc<B: WithExportConfig + WithTonicConfig>(builder: B, exporter: &Exporter) -> B {
    let builder = builder
        .with_metadata(metadata(exporter))
        .with_endpoint(&exporter.endpoint)
        .with_timeout(exporter.timeout)
        .with_retry_policy(RetryPolicy::disabled());
    match compression(exporter.compression) {
        Some(compression) => builder.with_compression(compression),
        None => builder,
    }
}

/// The same for either signal's HTTP/protobuf builder.
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
