//! SIGHUP for OTLP export: the config is resolved again (same environment, TLS files read
//! again) and each signal whose collector settings changed gets a new exporter, swapped in
//! behind the running provider ([`super::swap`]); spans and metrics keep flowing.
//!
//! | after the reload                                        | what happens                                   |
//! |---------------------------------------------------------|------------------------------------------------|
//! | endpoint, protocol, timeout, compression, headers or a TLS file (its path or content) changed | new exporter; INFO `otlp exporter switched` |
//! | nothing of that changed                                 | nothing                                        |
//! | the settings do not resolve, or the exporter cannot be built (bad TLS file, …) | the running exporters stay; ERROR `telemetry reload rejected; keeping the running exporters` |
//! | telemetry or a signal switched on or off, sampler, interval, service name | restart only (the daemon logs the keys) |

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry_otlp::{MetricExporter, SpanExporter};

use super::TelemetryError;
use super::pipeline::{self, MetricSlot, SpanSlot};
use super::settings::{Exporter, OtlpSettings, Settings};
use super::swap::Target;
use crate::config::TelemetryConfig;
use crate::env::Env;

/// The daemon's handle on the running exporters; inert when telemetry is off. Cheap to clone.
#[derive(Clone, Default)]
pub struct Reloader {
    running: Option<Arc<Running>>,
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.running {
            Some(_) => "Reloader(exporting)",
            None => "Reloader(off)",
        })
    }
}

/// What export runs with now.
struct Running {
    /// `service.instance.id` at start (the resource is kept; only exporters change).
    instance: String,
    /// Each signal's exporter settings in force.
    exporters: Mutex<(Option<Exporter>, Option<Exporter>)>,
    spans: Option<Arc<SpanSlot>>,
    metrics: Option<Arc<MetricSlot>>,
}

/// The exporters a reload built, not installed yet.
#[derive(Default)]
struct Built {
    spans: Option<(Exporter, Target<SpanExporter>)>,
    metrics: Option<(Exporter, Target<MetricExporter>)>,
}

impl Reloader {
    pub(super) fn new(
        instance: &str,
        otlp: &OtlpSettings,
        spans: Option<Arc<SpanSlot>>,
        metrics: Option<Arc<MetricSlot>>,
    ) -> Self {
        let running = Running {
            instance: instance.to_owned(),
            exporters: Mutex::new((otlp.traces.clone(), otlp.metrics.clone())),
            spans,
            metrics,
        };
        Reloader {
            running: Some(Arc::new(running)),
        }
    }

    /// Applies `cfg`'s collector settings (see the module table), resolving against `env` as
    /// start-up did. Logs what it did; never fails the reload of the rest of the config.
    /// Exporters are built and old ones dropped on a blocking thread of the runtime.
    pub async fn reload(&self, cfg: &TelemetryConfig, env: &Env) {
        let Some(running) = self.running.clone() else {
            return;
        };
        let (cfg, env) = (cfg.clone(), env.clone());
        let applied = tokio::task::spawn_blocking(move || running.apply(&cfg, &env)).await;
        match applied {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(
                error = %error,
                "telemetry reload rejected; keeping the running exporters"
            ),
            Err(error) => tracing::error!(
                error = %error,
                "telemetry reload failed; keeping the running exporters"
            ),
        }
    }
}

impl Running {
    /// Builds every changed exporter first, then swaps them all in: a failure changes nothing.
    fn apply(&self, cfg: &TelemetryConfig, env: &Env) -> Result<(), TelemetryError> {
        let settings = Settings::resolve(cfg, &self.instance, env)?;
        let Some(otlp) = settings.otlp else {
            return Ok(()); // switched off: restart only
        };
        for warning in &otlp.warnings {
            tracing::warn!("{warning}");
        }
        let mut exporters = self
            .exporters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut built = Built::default();
        if let (Some(slot), Some(new)) = (&self.spans, otlp.traces) {
            if exporters.0.as_ref() != Some(&new) {
                let target = pipeline::span_target(&new, slot.resource().as_ref())?;
                built.spans = Some((new, target));
            }
        }
        if let (Some(_), Some(new)) = (&self.metrics, otlp.metrics) {
            if exporters.1.as_ref() != Some(&new) {
                let target = pipeline::metric_target(&new)?;
                built.metrics = Some((new, target));
            }
        }
        if let (Some(slot), Some((new, target))) = (&self.spans, built.spans) {
            drop(slot.replace(target));
            switched("traces", &new);
            exporters.0 = Some(new);
        }
        if let (Some(slot), Some((new, target))) = (&self.metrics, built.metrics) {
            drop(slot.replace(target));
            switched("metrics", &new);
            exporters.1 = Some(new);
        }
        Ok(())
    }
}

fn switched(signal: &'static str, exporter: &Exporter) {
    tracing::info!(
        signal,
        endpoint = %exporter.shown_endpoint(),
        protocol = ?exporter.protocol,
        trust = exporter.tls.as_ref().map(super::tls::Tls::trust),
        "otlp exporter switched"
    );
}
