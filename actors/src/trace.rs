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
mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn tags(pairs: &[(&str, &str)]) -> Result<TraceCtx, TraceTagError> {
        TraceCtx::from_irc_tags(pairs.iter().copied(), &TraceTagNames::default())
    }

    #[test]
    fn classifies_traceparent_tags_like_culture() {
        let long = format!("{TP}0");
        let upper = TP.to_uppercase();
        let cases: &[(&str, &str, Result<(), TraceTagError>)] = &[
            ("valid", TP, Ok(())),
            (
                "unsampled",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
                Ok(()),
            ),
            ("one char too long", &long, Err(TraceTagError::TooLong)),
            ("empty", "", Err(TraceTagError::Malformed)),
            ("short", "00-abc-def-01", Err(TraceTagError::Malformed)),
            ("upper-case hex", &upper, Err(TraceTagError::Malformed)),
            (
                "version 01",
                "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                Err(TraceTagError::Malformed),
            ),
            (
                "zero trace id",
                "00-00000000000000000000000000000000-b7ad6b7169203331-01",
                Err(TraceTagError::Malformed),
            ),
            (
                "zero span id",
                "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                Err(TraceTagError::Malformed),
            ),
            (
                "non-hex",
                "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
                Err(TraceTagError::Malformed),
            ),
            (
                "wrong separators",
                "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
                Err(TraceTagError::Malformed),
            ),
            (
                "shifted fields",
                "00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",
                Err(TraceTagError::Malformed),
            ),
            (
                "space inside",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333 -01",
                Err(TraceTagError::Malformed),
            ),
            (
                "CR inside",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333\r-01",
                Err(TraceTagError::Malformed),
            ),
            (
                "semicolon inside",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333;-01",
                Err(TraceTagError::Malformed),
            ),
            (
                "NUL inside",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333\0-01",
                Err(TraceTagError::Malformed),
            ),
            (
                "55 chars, not ASCII",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333é-01",
                Err(TraceTagError::Malformed),
            ),
        ];
        for (name, value, want) in cases {
            let got = tags(&[("culture.dev/traceparent", value)]);
            match want {
                Ok(()) => assert_eq!(
                    got.as_ref().map(|c| c.traceparent.as_deref()),
                    Ok(Some(*value)),
                    "{name}"
                ),
                Err(error) => assert_eq!(got, Err(*error), "{name}"),
            }
        }
    }

    #[test]
    fn keeps_tracestate_only_when_safe_and_small() {
        let max = format!("k={}", "v".repeat(TRACESTATE_MAX_BYTES - 2));
        let over = format!("{max}v");
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("plain", "a=1,b=2", Some("a=1,b=2")),
            ("exactly 512 bytes", &max, Some(&max)),
            ("513 bytes", &over, None),
            ("empty", "", None),
            ("space", "a=1, b=2", None),
            ("semicolon", "a=1;b", None),
            ("LF", "a=1\nb=2", None),
        ];
        for (name, value, want) in cases {
            let got = tags(&[
                ("culture.dev/traceparent", TP),
                ("culture.dev/tracestate", value),
            ])
            .expect(name);
            assert_eq!(
                got.traceparent.as_deref(),
                Some(TP),
                "{name}: traceparent kept"
            );
            assert_eq!(got.tracestate.as_deref(), *want, "{name}");
        }
    }

    #[test]
    fn reads_only_the_configured_names() {
        let cases: &[(
            &str,
            &[(&str, &str)],
            TraceTagNames,
            Result<Option<&str>, TraceTagError>,
        )] = &[
            (
                "absent",
                &[("time", "x")],
                TraceTagNames::default(),
                Ok(None),
            ),
            (
                "tracestate alone",
                &[("culture.dev/tracestate", "a=1")],
                TraceTagNames::default(),
                Ok(None),
            ),
            (
                "plain name",
                &[("culture.dev/traceparent", TP)],
                TraceTagNames::default(),
                Ok(Some(TP)),
            ),
            (
                "prefixed ignored by default",
                &[("+culture.dev/traceparent", TP)],
                TraceTagNames::default(),
                Ok(None),
            ),
            (
                "prefixed",
                &[("+culture.dev/traceparent", TP)],
                TraceTagNames::client_prefixed(),
                Ok(Some(TP)),
            ),
            (
                "last one wins",
                &[
                    ("culture.dev/traceparent", "x"),
                    ("culture.dev/traceparent", TP),
                ],
                TraceTagNames::default(),
                Ok(Some(TP)),
            ),
            (
                "last bad one wins",
                &[
                    ("culture.dev/traceparent", TP),
                    ("culture.dev/traceparent", "x"),
                ],
                TraceTagNames::default(),
                Err(TraceTagError::Malformed),
            ),
        ];
        for (name, pairs, names, want) in cases {
            let got = TraceCtx::from_irc_tags(pairs.iter().copied(), names);
            assert_eq!(
                got.map(|c| c.traceparent),
                want.map(|w| w.map(str::to_owned)),
                "{name}"
            );
        }
    }

    #[test]
    fn writes_only_safe_tags() {
        let names = TraceTagNames::default();
        let ctx = |tp: Option<&str>, ts: Option<&str>| TraceCtx {
            traceparent: tp.map(str::to_owned),
            tracestate: ts.map(str::to_owned),
        };
        let both = vec![
            ("culture.dev/traceparent".to_owned(), TP.to_owned()),
            ("culture.dev/tracestate".to_owned(), "a=1".to_owned()),
        ];
        let cases: &[(&str, TraceCtx, Vec<(String, String)>)] = &[
            ("empty", TraceCtx::default(), vec![]),
            ("both", ctx(Some(TP), Some("a=1")), both.clone()),
            ("state without parent", ctx(None, Some("a=1")), vec![]),
            ("injected CRLF", ctx(Some("00-x\r\nQUIT"), None), vec![]),
            (
                "unsafe state dropped",
                ctx(Some(TP), Some("a=1\r\nQUIT")),
                both[..1].to_vec(),
            ),
        ];
        for (name, ctx, want) in cases {
            assert_eq!(&ctx.to_irc_tags(&names), want, "{name}");
        }
    }

    #[test]
    fn json_shape_and_round_trip() {
        let cases: &[(TraceCtx, &str)] = &[
            (TraceCtx::default(), "{}"),
            (
                TraceCtx {
                    traceparent: Some(TP.into()),
                    tracestate: None,
                },
                r#"{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#,
            ),
            (
                TraceCtx {
                    traceparent: Some(TP.into()),
                    tracestate: Some("a=1".into()),
                },
                r#"{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"a=1"}"#,
            ),
        ];
        for (ctx, json) in cases {
            assert_eq!(serde_json::to_string(ctx).unwrap(), *json);
            assert_eq!(&serde_json::from_str::<TraceCtx>(json).unwrap(), ctx);
        }
    }

    #[test]
    fn context_round_trip_through_the_propagator() {
        let state = TraceState::from_key_value([("k", "v")]).unwrap();
        let span = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            false,
            state,
        );
        let ctx = TraceCtx::from_context(&Context::new().with_remote_span_context(span.clone()));
        assert_eq!(
            ctx,
            TraceCtx {
                traceparent: Some(TP.into()),
                tracestate: Some("k=v".into())
            }
        );

        let back = ctx.context();
        let parent = back.span().span_context().clone();
        assert_eq!(
            (parent.trace_id(), parent.span_id()),
            (span.trace_id(), span.span_id())
        );
        assert!(parent.is_remote());
        assert_eq!(parent.trace_state().header(), "k=v");
    }

    #[test]
    fn empty_or_invalid_context_is_no_parent() {
        let cases = [
            TraceCtx::default(),
            TraceCtx {
                traceparent: Some("garbage".into()),
                tracestate: None,
            },
            TraceCtx {
                traceparent: Some(TP.to_uppercase()),
                tracestate: None,
            },
        ];
        for ctx in cases {
            assert!(!ctx.context().span().span_context().is_valid(), "{ctx:?}");
        }
        let no_span = TraceCtx::from_context(&Context::new());
        assert!(no_span.is_empty());
        assert_eq!(
            no_span,
            TraceCtx::default(),
            "an empty tracestate is dropped"
        );
    }

    #[test]
    fn otel_filter_drops_ractor_and_verbose_levels() {
        let cases = [
            (tracing::Level::INFO, "codexd_actors::irc", true),
            (tracing::Level::ERROR, "codexd", true),
            (tracing::Level::DEBUG, "codexd", false),
            (tracing::Level::INFO, "ractor::actor", false),
            (tracing::Level::INFO, "ractor", false),
            (tracing::Level::WARN, "opentelemetry_sdk", false),
        ];
        for (level, target, want) in cases {
            let meta = metadata(level, target);
            assert_eq!(otel_filter(&meta), want, "{level} {target}");
        }
    }

    fn metadata(level: tracing::Level, target: &'static str) -> tracing::Metadata<'static> {
        struct Callsite;
        impl tracing::callsite::Callsite for Callsite {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unreachable!("only the fields are read")
            }
        }
        static CALLSITE: Callsite = Callsite;
        let fields = tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CALLSITE));
        tracing::Metadata::new(
            "test",
            target,
            level,
            None,
            None,
            None,
            fields,
            tracing::metadata::Kind::SPAN,
        )
    }
}
