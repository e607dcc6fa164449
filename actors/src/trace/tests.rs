//! Table-driven tests of the carrier: tag rules, JSON shape, propagator round trip.

use super::*;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

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
    /// The traceparent read, or the error.
    type Wanted<'a> = Result<Option<&'a str>, TraceTagError>;
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], TraceTagNames, Wanted<'a>);
    let cases: &[Case] = &[
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
    type Tags = Vec<(String, String)>;
    let cases: &[(&str, TraceCtx, Tags)] = &[
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
