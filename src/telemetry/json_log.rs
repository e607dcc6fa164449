//! JSON log lines joined to their traces: tracing-subscriber's JSON line, plus top-level
//! `trace_id` and `span_id` when the event is written inside a span that OpenTelemetry knows.
//!
//! | the event is written …                                     | `trace_id`, `span_id`             |
//! |------------------------------------------------------------|-----------------------------------|
//! | inside an exported span (or below one)                     | that span's ids, lower-case hex, as the collector shows them |
//! | inside spans OpenTelemetry never sees (`ractor*`, DEBUG)   | the nearest exported ancestor's, else absent |
//! | outside any span                                           | absent                            |
//! | with OTLP trace export off (no OpenTelemetry layer)        | absent                            |
//!
//! The ids come from the tracing-opentelemetry layer ([`get_otel_context`]); the span is
//! looked up in the registry itself, so `RUST_LOG` hiding a span from the log output does
//! not hide its ids.

use std::fmt;

use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceId};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::get_otel_context;
use tracing_subscriber::Registry;
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event format with the OpenTelemetry ids of the event's span.
#[derive(Debug)]
pub(super) struct JsonWithTraceIds {
    inner: Format<Json>,
}

impl JsonWithTraceIds {
    /// tracing-subscriber's JSON format (`timestamp`, `level`, `fields`, `target`, `span`,
    /// `spans`), ids added.
    pub(super) fn new() -> Self {
        Self {
            inner: tracing_subscriber::fmt::format().json(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match otel_ids(event) {
            Some((trace_id, span_id)) => writer.write_str(&with_ids(&line, trace_id, span_id)),
            None => writer.write_str(&line),
        }
    }
}

/// `line` (one JSON object and a newline) with `"trace_id"` and `"span_id"` as its last keys.
fn with_ids(line: &str, trace_id: TraceId, span_id: SpanId) -> String {
    let Some(end) = line.rfind('}') else {
        return line.to_owned();
    };
    let (object, rest) = line.split_at(end);
    format!(r#"{object},"trace_id":"{trace_id}","span_id":"{span_id}"{rest}"#)
}

/// The ids of the innermost span around `event` that OpenTelemetry has a valid context for.
fn otel_ids(event: &Event<'_>) -> Option<(TraceId, SpanId)> {
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let leaf = match event.parent() {
            Some(id) => id.clone(),
            None if event.is_contextual() => dispatch.current_span().id()?.clone(),
            None => return None,
        };
        let span = registry.span(&leaf)?;
        span.scope().find_map(|span| {
            let context = get_otel_context(&span.id(), dispatch)?;
            let span_context = context.span().span_context().clone();
            span_context
                .is_valid()
                .then(|| (span_context.trace_id(), span_context.span_id()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_last_in_the_object() {
        let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex");
        let span = SpanId::from_hex("00f067aa0ba902b7").expect("hex");
        // (line, with ids)
        let table = [
            (
                "{\"level\":\"INFO\",\"fields\":{\"message\":\"x}\"}}\n",
                "{\"level\":\"INFO\",\"fields\":{\"message\":\"x}\"},\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\"}\n",
            ),
            ("not json\n", "not json\n"),
        ];
        for (line, want) in table {
            let got = with_ids(line, trace, span);
            assert_eq!(got, want);
            if line.starts_with('{') {
                let value: serde_json::Value = serde_json::from_str(&got).expect("still JSON");
                assert_eq!(value["span_id"], "00f067aa0ba902b7");
            }
        }
    }
}
