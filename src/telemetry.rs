//! Logs, traces and metrics: the global `tracing` subscriber (stderr, human or JSON lines),
//! and — only when `telemetry.enabled` — OTLP export of spans and metrics to a collector.
//!
//! ```text
//! Settings::resolve(&cfg.telemetry, &identity::instance_id(), &env)? // env > file > default; TLS files read
//! let telemetry = telemetry::init(&settings, log_format)?; // inside a multi-thread runtime
//! telemetry.gauges().map(|g| g.start(host.clone()));     // once the Host runs (`crate::run`)
//! codexd::run(.., telemetry.reloader(), ..).await;         // SIGHUP: maybe a new collector
//! telemetry.shutdown(Duration::from_secs(5));             // flush; never hangs
//! ```
//!
//! An `https://` collector is reached over TLS (rustls on ring, system roots plus the CA
//! file, an optional client certificate: [`tls`]); a failing collector is logged once per
//! distinct error, never per export ([`swap`]).
//!
//! Spans reach OpenTelemetry through the tracing-opentelemetry layer, filtered by
//! [`codexd_actors::trace::otel_filter`] (INFO and above, never `ractor*` or
//! `opentelemetry*`). The tracer is named `culture.harness` like Culture's; codexd's own
//! instruments use `opentelemetry::global::meter("codexd")`, the status [`gauges`] included.
//! JSON log lines carry the ids of their span (`json_log`). docs/telemetry.md lists every
//! span, event, metric and gauge.

pub mod gauges;
mod http;
pub mod identity;
mod json_log;
mod pipeline;
mod reload;
mod settings;
mod signal;
mod swap;
mod tls;

use std::fmt;
use std::str::FromStr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use codexd_actors::trace::otel_filter;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, filter_fn};
use tracing_subscriber::layer::{Filter, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

pub use gauges::Gauges;
pub use reload::Reloader;
pub use settings::{Exporter, OtlpSettings, Settings};
pub use tls::{ClientCert, PemFile, Tls};

/// The tracer (instrumentation scope) of every exported span, kept from Culture.
pub const TRACER_NAME: &str = "culture.harness";
/// The meter of codexd's own instruments (supervision and friends).
pub const METER_NAME: &str = "codexd";

/// How log lines are written to stderr (`--log-format human|json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format {s:?}: expected human or json")),
        }
    }
}

/// Why telemetry could not be set up. Every variant is fatal at start-up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An environment variable has a value codexd cannot use.
    #[error("{variable}={value:?}: {reason}")]
    InvalidEnv {
        /// The variable's name.
        variable: String,
        /// Its value.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A `telemetry:` key has a value codexd cannot use.
    #[error("{key}: {reason}")]
    InvalidConfig {
        /// The key path, e.g. `telemetry.otlp_endpoint`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A TLS file (CA, client certificate or key) is missing, unreadable or unusable.
    #[error("{origin}: {reason}")]
    Tls {
        /// The key or variable that named it, e.g. `OTEL_EXPORTER_OTLP_CERTIFICATE`.
        origin: String,
        /// The path and what is wrong with it (never the file's content).
        reason: String,
    },
    /// The OTLP exporter library refused the resolved settings.
    #[error("building the OTLP {signal} exporter: {source}")]
    Exporter {
        /// `traces` or `metrics`.
        signal: &'static str,
        /// The library's error.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// OTLP over gRPC was asked for outside a multi-thread tokio runtime.
    #[error("OTLP over gRPC needs a multi-thread tokio runtime; call telemetry::init inside one")]
    Runtime,
    /// A global `tracing` subscriber is already installed (init runs once per process).
    #[error("installing the global tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

impl TelemetryError {
    /// The key or variable the error names (`telemetry` when none) and what is wrong, as
    /// `check-config` lists problems.
    pub fn diagnostic(&self) -> (String, String) {
        match self {
            TelemetryError::InvalidEnv {
                variable,
                value,
                reason,
            } => (variable.clone(), format!("{value:?}: {reason}")),
            TelemetryError::InvalidConfig { key, reason } => ((*key).to_owned(), reason.clone()),
            TelemetryError::Tls { origin, reason } => (origin.clone(), reason.clone()),
            other => ("telemetry".to_owned(), other.to_string()),
        }
    }
}

/// The running telemetry: the providers to flush at exit and the handle SIGHUP switches
/// collectors with. Dropping it without [`Telemetry::shutdown`] loses the spans still queued.
#[derive(Debug)]
#[must_use = "call shutdown() at exit to flush queued spans and metrics"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    reloader: Reloader,
    gauges: Option<Gauges>,
}

/// How [`Telemetry::shutdown`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Telemetry was off; there was nothing to flush.
    Off,
    /// Both providers flushed and stopped.
    Flushed,
    /// A provider reported an error (logged as a warning), e.g. no collector listening.
    Failed,
    /// The timeout passed first; the flush thread was left behind.
    TimedOut,
}

/// Installs the global subscriber, the panic hook, the W3C propagator and — when
/// `settings.otlp` is set — the OTLP tracer and meter providers (also as the OTel globals).
/// Call once, inside a multi-thread tokio runtime when any signal uses gRPC.
pub fn init(settings: &Settings, log_format: LogFormat) -> Result<Telemetry, TelemetryError> {
    // The OTLP HTTP exporter's reqwest client takes rustls's process default: ring, the
    // only provider in the build (no aws-lc). Already installed (a second init) is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (providers, reloader) = match &settings.otlp {
        Some(otlp) => {
            let providers = pipeline::build(otlp)?;
            let instance = otlp.resource.get("service.instance.id");
            let reloader = Reloader::new(
                instance.map_or("", String::as_str),
                otlp,
                providers.spans.clone(),
                providers.metrics.clone(),
            );
            (providers, reloader)
        }
        None => (pipeline::Providers::default(), Reloader::default()),
    };
    let log_filter = EnvFilter::builder()
        .parse(&settings.log_filter)
        .map_err(|error| TelemetryError::InvalidEnv {
            variable: "RUST_LOG".to_owned(),
            value: settings.log_filter.clone(),
            reason: error.to_string(),
        })?;
    let otel_layer = providers.tracer.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(TRACER_NAME))
            .with_filter(filter_fn(otel_filter))
    });
    tracing_subscriber::registry()
        .with(log_layer(log_format).with_filter(log_filter.and(not_replaced_by_codexd())))
        .with(otel_layer)
        .try_init()?;

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if let Some(provider) = &providers.tracer {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    if let Some(provider) = &providers.meter {
        opentelemetry::global::set_meter_provider(provider.clone());
    }
    // Only while metrics are exported: no snapshot, no refresh task otherwise.
    let gauges = providers
        .meter
        .as_ref()
        .zip(settings.otlp.as_ref())
        .map(|(provider, otlp)| {
            Gauges::register(&provider.meter(METER_NAME), otlp.metric_export_interval)
        });
    install_panic_hook();
    log_started(settings);
    Ok(Telemetry {
        tracer: providers.tracer,
        meter: providers.meter,
        reloader,
        gauges,
    })
}

/// Leaves out the SDK's per-export error events: codexd logs each distinct export error of a
/// failure streak once ([`swap`]).
fn not_replaced_by_codexd() -> impl Filter<Registry> {
    filter_fn(|meta| !swap::is_replaced_sdk_event(meta))
}

/// The stderr layer in the requested format, without ANSI colours; JSON lines written inside
/// an exported span carry its `trace_id` and `span_id` (`json_log`).
fn log_layer(format: LogFormat) -> Box<dyn Layer<Registry> + Send + Sync> {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Human => layer.boxed(),
        LogFormat::Json => layer
            .json()
            .event_format(json_log::JsonWithTraceIds::new())
            .boxed(),
    }
}

fn log_started(settings: &Settings) {
    let Some(otlp) = &settings.otlp else {
        tracing::debug!("telemetry export disabled");
        return;
    };
    let endpoint = |e: &Option<Exporter>| {
        e.as_ref()
            .map_or("off".to_owned(), Exporter::shown_endpoint)
    };
    tracing::info!(
        service = otlp.service_name(),
        instance = otlp.resource.get("service.instance.id").map_or("", String::as_str),
        traces = %endpoint(&otlp.traces),
        metrics = %endpoint(&otlp.metrics),
        sampler = ?otlp.sampler,
        interval_ms = otlp.metric_export_interval.as_millis() as u64,
        "otlp telemetry initialized"
    );
    for warning in &otlp.warnings {
        tracing::warn!("{warning}");
    }
}

/// Routes panics (ractor catches actor panics) to one structured error event.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = (payload.downcast_ref::<&str>().copied())
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string panic payload");
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let thread = thread::current();
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace =
            (backtrace.status() == std::backtrace::BacktraceStatus::Captured).then_some(backtrace);
        tracing::error!(
            panic.message = message,
            panic.location = location.as_deref().unwrap_or("unknown"),
            panic.thread = thread.name().unwrap_or("unnamed"),
            panic.backtrace = backtrace.map(tracing::field::display),
            "panic"
        );
    }));
}

impl Telemetry {
    /// The handle a SIGHUP reload moves the exporters to a new collector with.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The status gauges, when metrics are exported; [`Gauges::start`] them once the Host runs.
    pub fn gauges(&self) -> Option<Gauges> {
        self.gauges.clone()
    }

    /// True when spans or metrics are exported.
    pub fn is_exporting(&self) -> bool {
        self.tracer.is_some() || self.meter.is_some()
    }

    /// Flushes and stops both providers, waiting at most `timeout`. The blocking SDK calls run
    /// on their own threads; if they are still blocked at the deadline a warning is logged and
    /// this returns anyway (the process may exit with them blocked). Call it after the actor
    /// tree has stopped, while the tokio runtime is still alive (gRPC exports need it), from a
    /// thread that may block — not from inside an async task.
    pub fn shutdown(self, timeout: Duration) -> ShutdownOutcome {
        if !self.is_exporting() {
            return ShutdownOutcome::Off;
        }
        let started = Instant::now();
        let (done, results) = mpsc::channel();
        let tracer = self
            .tracer
            .map(|p| move || ("traces", p.shutdown_with_timeout(timeout)));
        let meter = self
            .meter
            .map(|p| move || ("metrics", p.shutdown_with_timeout(timeout)));
        let mut pending = 0;
        if let Some(job) = tracer {
            pending += spawn_shutdown(job, done.clone());
        }
        if let Some(job) = meter {
            pending += spawn_shutdown(job, done);
        }
        let mut outcome = ShutdownOutcome::Flushed;
        for _ in 0..pending {
            let left = timeout.saturating_sub(started.elapsed());
            match results.recv_timeout(left) {
                Ok((_, Ok(()))) => {}
                Ok((signal, Err(error))) => {
                    tracing::warn!(signal, error = %error, "telemetry shutdown failed");
                    outcome = ShutdownOutcome::Failed;
                }
                Err(_) => {
                    tracing::warn!(
                        timeout_ms = timeout.as_millis() as u64,
                        "telemetry shutdown timed out"
                    );
                    return ShutdownOutcome::TimedOut;
                }
            }
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "telemetry shut down"
        );
        outcome
    }
}

/// Runs one provider's blocking shutdown on its own thread; returns how many results to await.
fn spawn_shutdown(
    job: impl FnOnce() -> (&'static str, OTelSdkResult) + Send + 'static,
    done: mpsc::Sender<(&'static str, OTelSdkResult)>,
) -> usize {
    let spawned = thread::Builder::new()
        .name("telemetry-shutdown".to_owned())
        .spawn(move || {
            let _ = done.send(job());
        });
    match spawned {
        Ok(_) => 1,
        Err(error) => {
            tracing::warn!(error = %error, "cannot start the telemetry shutdown thread");
            0
        }
    }
}
