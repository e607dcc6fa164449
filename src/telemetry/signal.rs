//! The two exported signals and the names of their `OTEL_EXPORTER_OTLP_*` variables.

/// The two exported signals and the names of their variables.
#[derive(Debug, Clone, Copy)]
pub(super) enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    /// `traces` or `metrics`, as logs name the signal.
    pub(super) fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// `OTEL_EXPORTER_OTLP_TRACES_<suffix>` then `OTEL_EXPORTER_OTLP_<suffix>`.
    pub(super) fn variables(self, suffix: &str) -> [String; 2] {
        let name = match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
        };
        [
            format!("OTEL_EXPORTER_OTLP_{name}_{suffix}"),
            format!("OTEL_EXPORTER_OTLP_{suffix}"),
        ]
    }

    /// The OTLP/HTTP path appended to a generic endpoint.
    pub(super) fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }
}
