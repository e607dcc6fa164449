//! The exporter the SDK's processors hold: a [`Swap`] in front of the current collector's
//! [`Target`], which a reload replaces while spans and metrics keep flowing, and which logs
//! each distinct error of a failing collector once instead of once per export.
//!
//! | export result                                        | logged                                   |
//! |------------------------------------------------------|------------------------------------------|
//! | fails with an error not yet logged since the last success (at most [`DISTINCT_LOGGED`] of them) | WARN `otlp export failed` (signal, endpoint, trust, error) |
//! | fails with an error already logged, or beyond those  | nothing                                  |
//! | succeeds after failing                               | INFO `otlp export recovered` (failed_exports) |
//!
//! A refused TLS handshake reads the same every time; a collector that drops the connection
//! (e.g. mTLS without a client certificate, over gRPC) gives one of a few texts in turn.
//!
//! The SDK's own `BatchSpanProcessor.ExportError` / `PeriodicReader.ExportError` events (one
//! per failed export, and for HTTP only "network error") are left out of the log output
//! ([`is_replaced_sdk_event`]); the error still reaches the SDK, so a final flush that fails
//! still reports `Failed`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use codexd_actors::redact;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::{Temporality, exporter::PushMetricExporter};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// How many different errors one failure streak logs at most.
pub(super) const DISTINCT_LOGGED: usize = 5;

/// Why the last request of an HTTP exporter failed, noted by its client (the exporter itself
/// reports only "network error").
pub(super) type FailureNote = Arc<Mutex<Option<String>>>;

/// One collector: the exporter to it and how its exports have gone.
pub(super) struct Target<E> {
    exporter: E,
    signal: &'static str,
    /// The endpoint as logs show it (no userinfo, query or fragment).
    endpoint: String,
    /// What the collector's certificate is checked against; `None` for `http://`.
    trust: Option<String>,
    note: Option<FailureNote>,
    /// The failures since the last successful export.
    streak: Mutex<Streak>,
}

/// Exports failed in a row, and the errors among them that were logged.
#[derive(Debug, Default)]
struct Streak {
    failed: u64,
    logged: Vec<String>,
}

impl<E> Target<E> {
    /// `exporter` to `endpoint` (already redacted); `note` is filled by an HTTP client.
    pub(super) fn new(
        exporter: E,
        signal: &'static str,
        endpoint: String,
        trust: Option<String>,
        note: Option<FailureNote>,
    ) -> Self {
        Target {
            exporter,
            signal,
            endpoint,
            trust,
            note,
            streak: Mutex::new(Streak::default()),
        }
    }

    /// The exporter, for settings applied before the target is installed.
    pub(super) fn exporter_mut(&mut self) -> &mut E {
        &mut self.exporter
    }

    /// Logs `result` when it tells something new about the collector (module table).
    fn observe(&self, result: &OTelSdkResult) {
        let noted = self.note.as_ref().and_then(|note| lock(note).take());
        let mut streak = lock(&self.streak);
        let Err(error) = result else {
            let ended = std::mem::take(&mut *streak);
            if ended.failed > 0 {
                tracing::info!(
                    signal = self.signal,
                    endpoint = %self.endpoint,
                    failed_exports = ended.failed,
                    "otlp export recovered"
                );
            }
            return;
        };
        streak.failed += 1;
        let reason = without_repeats(&redact::text(&noted.unwrap_or_else(|| error.to_string())));
        if streak.logged.contains(&reason) || streak.logged.len() >= DISTINCT_LOGGED {
            return;
        }
        tracing::warn!(
            signal = self.signal,
            endpoint = %self.endpoint,
            trust = self.trust.as_deref(),
            error = %reason,
            "otlp export failed"
        );
        streak.logged.push(reason);
    }
}

/// The target exports go to now, shared by the [`Swap`] the SDK holds and the reloader.
pub(super) struct Slot<E> {
    current: RwLock<Arc<Target<E>>>,
    /// The resource the SDK gave the span exporter, for the targets that replace it.
    resource: Mutex<Option<Resource>>,
}

impl<E> Slot<E> {
    pub(super) fn new(target: Target<E>) -> Arc<Self> {
        Arc::new(Slot {
            current: RwLock::new(Arc::new(target)),
            resource: Mutex::new(None),
        })
    }

    fn current(&self) -> Arc<Target<E>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `target` current; returns the one it replaced (an export under way finishes on
    /// it). Drop the old one where blocking is allowed: an HTTP client joins its thread.
    pub(super) fn replace(&self, target: Target<E>) -> Arc<Target<E>> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, Arc::new(target))
    }

    /// The resource spans are exported with, once the provider has set it.
    pub(super) fn resource(&self) -> Option<Resource> {
        lock(&self.resource).clone()
    }
}

/// What the SDK's processor or reader holds: delegates to the slot's current target.
pub(super) struct Swap<E>(pub(super) Arc<Slot<E>>);

impl<E> fmt::Debug for Swap<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = self.0.current();
        write!(f, "Swap({} to {})", target.signal, target.endpoint)
    }
}

impl<E: SpanExporter + 'static> SpanExporter for Swap<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let target = self.0.current();
        async move {
            let result = target.exporter.export(batch).await;
            target.observe(&result);
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.current().exporter.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.current().exporter.force_flush()
    }

    /// Kept for later targets; applied to the current one while nothing else holds it (the
    /// provider sets it when it is built, before the first export).
    fn set_resource(&mut self, resource: &Resource) {
        *lock(&self.0.resource) = Some(resource.clone());
        let mut current = self
            .0
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(target) = Arc::get_mut(&mut current) {
            target.exporter.set_resource(resource);
        }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Swap<E> {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        let target = self.0.current();
        async move {
            let result = target.exporter.export(metrics).await;
            target.observe(&result);
            result
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.current().exporter.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.current().exporter.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.0.current().exporter.temporality()
    }
}

/// The SDK's per-export error events, which [`Target`]'s once-per-change log replaces.
pub(super) fn is_replaced_sdk_event(meta: &tracing::Metadata<'_>) -> bool {
    meta.target() == "opentelemetry_sdk"
        && matches!(
            meta.name(),
            "BatchSpanProcessor.ExportError" | "PeriodicReader.ExportError"
        )
}

/// The text without a repeated tail: the gRPC exporter renders its innermost cause twice.
///
/// | text                     | shown             |
/// |--------------------------|-------------------|
/// | `e: a: b: a: b`          | `e: a: b`         |
/// | `e: a: a`                | `e: a`            |
/// | `a: b: a`                | `a: b: a`         |
fn without_repeats(text: &str) -> String {
    let mut parts: Vec<&str> = text.split(": ").collect();
    'shrink: loop {
        let n = parts.len();
        for k in 1..=n / 2 {
            if parts[n - 2 * k..n - k] == parts[n - k..] {
                parts.truncate(n - k);
                continue 'shrink;
            }
        }
        return parts.join(": ");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "swap_tests.rs"]
mod tests;
