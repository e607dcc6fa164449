//! The traced-message carrier: W3C trace context that travels inside every actor message, in
//! JSON (JSON-RPC, journals) and as IRCv3 message tags.
//!
//! The sender captures [`TraceCtx::current`]; the receiver opens its span with
//! [`TraceCtx::follow`], which makes it a child of the sender's span — or a true root when the
//! message carried no context. The explicit parent always wins over ractor's in-process span
//! propagation (reference/rust-crates.md §1.7).
//!
//! IRC tag rules (Culture, codexd-spec §5.8), applied by [`TraceCtx::from_irc_tags`]:
//!
//! | traceparent tag value                                         | result                  |
//! |---------------------------------------------------------------|-------------------------|
//! | absent                                                        | `Ok(empty)` ("missing") |
//! | longer than 55 characters                                     | `Err(TooLong)`          |
//! | not `00-<32 lower hex, not all 0>-<16 lower hex, not all 0>-<2 lower hex>` | `Err(Malformed)` |
//! | valid                                                         | `Ok(ctx)` ("valid")     |
//!
//! A tracestate tag is kept only next to a valid traceparent, when it is at most 512 bytes and
//! holds no CR, LF, NUL, space or `;`; otherwise it is dropped and the traceparent still counts.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// A version-00 traceparent is exactly this long.
const TRACEPARENT_LEN: usize = 55;
/// Culture's cap on an inbound tracestate, in UTF-8 bytes.
const TRACESTATE_MAX_BYTES: usize = 512;

/// W3C trace context of the work a message belongs to. Empty means "no parent": the receiver
/// starts a new trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceCtx {
    /// `00-<trace id>-<span id>-<flags>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Vendor trace state; never `Some("")`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl TraceCtx {
    /// The context of the current `tracing` span (empty when it has no valid OTel context,
    /// e.g. telemetry is off).
    pub fn current() -> Self {
        Self::from_context(&tracing::Span::current().context())
    }

    /// Injects `cx` with the W3C propagator (no global propagator needed).
    pub fn from_context(cx: &Context) -> Self {
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(cx, &mut carrier);
        Self {
            traceparent: carrier.remove(TRACEPARENT).filter(|v| !v.is_empty()),
            tracestate: carrier.remove(TRACESTATE).filter(|v| !v.is_empty()),
        }
    }

    /// The remote parent this carrier describes; an empty `Context` when the traceparent is
    /// absent or invalid (never the caller's current context).
    pub fn context(&self) -> Context {
        let Some(traceparent) = self.traceparent.as_deref() else {
            return Context::new();
        };
        if classify_traceparent(traceparent).is_err() {
            return Context::new();
        }
        let mut carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
        if let Some(tracestate) = &self.tracestate {
            carrier.insert(TRACESTATE.to_owned(), tracestate.clone());
        }
        TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier)
    }

    /// True when there is no traceparent: the receiver's span will be a root.
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none()
    }

    /// Makes `span` a child of this context — or a root when the context is empty or invalid —
    /// and returns it. Call it on a span that has not been entered yet:
    /// `let span = msg.trace.follow(tracing::info_span!("agent.turn"));`.
    /// Without the OpenTelemetry layer (telemetry off) this does nothing.
    pub fn follow(&self, span: tracing::Span) -> tracing::Span {
        // Err means no OTel layer, a disabled span or an already-started span: nothing to link.
        let _ = span.set_parent(self.context());
        span
    }

    /// The IRCv3 tags that carry this context; values are always safe to put on a line.
    /// An invalid traceparent yields no tags; an unsafe or oversized tracestate is left out.
    pub fn to_irc_tags(&self, names: &TraceTagNames) -> Vec<(String, String)> {
        let Some(traceparent) = self.traceparent.as_deref() else {
            return Vec::new();
        };
        if classify_traceparent(traceparent).is_err() {
            return Vec::new();
        }
        let mut tags = vec![(names.traceparent.clone(), traceparent.to_owned())];
        if let Some(tracestate) = self
            .tracestate
            .as_deref()
            .filter(|s| tracestate_is_carried(s))
        {
            tags.push((names.tracestate.clone(), tracestate.to_owned()));
        }
        tags
    }

    /// Reads the context from a line's (unescaped) tags; see the module table. When a key
    /// repeats, the last value counts; a key without a value counts as an empty value.
    pub fn from_irc_tags<K, V>(
        tags: impl IntoIterator<Item = (K, V)>,
        names: &TraceTagNames,
    ) -> Result<TraceCtx, TraceTagError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let (mut traceparent, mut tracestate) = (None, None);
        for (key, value) in tags {
            let (key, value) = (key.as_ref(), value.as_ref());
            if key == names.traceparent {
                traceparent = Some(value.to_owned());
            } else if key == names.tracestate {
                tracestate = Some(value.to_owned());
            }
        }
        let Some(traceparent) = traceparent else {
            return Ok(TraceCtx::default());
        };
        classify_traceparent(&traceparent)?;
        Ok(TraceCtx {
            traceparent: Some(traceparent),
            tracestate: tracestate.filter(|s| tracestate_is_carried(s)),
        })
    }
}

/// The IRCv3 tag names that carry trace context. agentirc uses the un-prefixed names;
/// standard servers (InspIRCd) relay only `+`-prefixed client tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceTagNames {
    /// Default `culture.dev/traceparent`.
    pub traceparent: String,
    /// Default `culture.dev/tracestate`.
    pub tracestate: String,
}

impl Default for TraceTagNames {
    fn default() -> Self {
        Self {
            traceparent: "culture.dev/traceparent".to_owned(),
            tracestate: "culture.dev/tracestate".to_owned(),
        }
    }
}

impl TraceTagNames {
    /// `+culture.dev/traceparent` / `+culture.dev/tracestate`, for standard IRCv3 servers.
    pub fn client_prefixed() -> Self {
        let plain = Self::default();
        Self {
            traceparent: format!("+{}", plain.traceparent),
            tracestate: format!("+{}", plain.tracestate),
        }
    }
}

/// Why an inbound traceparent tag was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceTagError {
    /// Present but not a valid version-00 traceparent of 55 characters.
    #[error("malformed traceparent tag")]
    Malformed,
    /// Longer than 55 characters.
    #[error("traceparent tag longer than 55 characters")]
    TooLong,
}

impl TraceTagError {
    /// Culture's `culture.trace.dropped_reason` attribute value: `malformed` or `too_long`.
    pub fn reason(self) -> &'static str {
        match self {
            TraceTagError::Malformed => "malformed",
            TraceTagError::TooLong => "too_long",
        }
    }
}

/// The predicate for the OpenTelemetry layer, shared by `codexd::telemetry` and the tests:
/// INFO and above, except targets `ractor*` (an actor's lifetime span would become an
/// endless root span) and `opentelemetry*` (the exporter's own diagnostics). Wrap it with
/// `tracing_subscriber::filter::filter_fn(otel_filter)`.
pub fn otel_filter(metadata: &tracing::Metadata<'_>) -> bool {
    let target = metadata.target();
    *metadata.level() <= tracing::Level::INFO
        && !target.starts_with("ractor")
        && !target.starts_with("opentelemetry")
}

/// Culture's §5.8 classification: `^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$`
/// with the length checked first (characters, as Python counts them).
fn classify_traceparent(value: &str) -> Result<(), TraceTagError> {
    let length = value.chars().count();
    if length > TRACEPARENT_LEN {
        return Err(TraceTagError::TooLong);
    }
    if length != TRACEPARENT_LEN {
        return Err(TraceTagError::Malformed);
    }
    let fields: Vec<&str> = value.split('-').collect();
    let [version, trace_id, span_id, flags] = fields.as_slice() else {
        return Err(TraceTagError::Malformed);
    };
    let well_formed = *version == "00"
        && is_lower_hex(trace_id, 32)
        && is_lower_hex(span_id, 16)
        && is_lower_hex(flags, 2)
        && !is_all_zero(trace_id)
        && !is_all_zero(span_id);
    if well_formed {
        Ok(())
    } else {
        Err(TraceTagError::Malformed)
    }
}

fn is_lower_hex(field: &str, len: usize) -> bool {
    field.len() == len
        && field
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_all_zero(field: &str) -> bool {
    field.bytes().all(|b| b == b'0')
}

/// A tracestate travels when it is non-empty, at most 512 bytes and safe on an IRC line.
fn tracestate_is_carried(value: &str) -> bool {
    !value.is_empty() && value.len() <= TRACESTATE_MAX_BYTES && !value.contains(is_unsafe_tag_char)
}

/// Characters that must never appear in a tag value we accept or send.
fn is_unsafe_tag_char(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\0' | ' ' | ';')
}

#[cfg(test)]
mod tests;
