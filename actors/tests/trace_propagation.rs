//! Two real ractor actors: A works inside `a.work` and casts a message carrying
//! `TraceCtx::current()` to B, which opens `b.work` with `TraceCtx::follow`. The spans go
//! through the tracing-opentelemetry layer, filtered exactly as `codexd::telemetry` filters it
//! (`codexd_actors::trace::otel_filter`), into an in-memory exporter.

use std::time::{Duration, Instant};

use codexd_actors::trace::{TraceCtx, otel_filter};
use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;

/// B's only message: do some work that belongs to `trace`.
struct Work {
    trace: TraceCtx,
}

/// Opens `b.work` as a child of the message's context.
struct B;

impl Actor for B {
    type Msg = Work;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Work>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Work>,
        msg: Work,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        msg.trace
            .follow(tracing::info_span!("b.work"))
            .in_scope(|| tracing::info!("b working"));
        Ok(())
    }
}

/// What A is asked to do: forward work to B, with or without its trace context.
enum AMessage {
    /// Work inside `a.work` and pass `TraceCtx::current()` on to B.
    Traced(ActorRef<Work>),
    /// Work inside `a.work` but send B an empty context.
    Untraced(ActorRef<Work>),
}

/// Works inside `a.work` (a root) and casts to B from inside it.
struct A;

impl Actor for A {
    type Msg = AMessage;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<AMessage>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<AMessage>,
        msg: AMessage,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let span = tracing::info_span!(parent: None, "a.work");
        span.in_scope(|| match msg {
            AMessage::Traced(b) => b.cast(Work {
                trace: TraceCtx::current(),
            }),
            AMessage::Untraced(b) => b.cast(Work {
                trace: TraceCtx::default(),
            }),
        })?;
        Ok(())
    }
}

/// Runs A → B once per message and returns every span exported once both actors stopped.
async fn run(messages: Vec<fn(ActorRef<Work>) -> AMessage>, filtered: bool) -> Vec<SpanData> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let subscriber = tracing_subscriber::registry()
        .with(otel.with_filter(filter_fn(move |meta| !filtered || otel_filter(meta))));
    let _guard = tracing::subscriber::set_default(subscriber);

    let (b, b_handle) = Actor::spawn(None, B, ()).await.expect("spawn B");
    let (a, a_handle) = Actor::spawn(None, A, ()).await.expect("spawn A");
    let expected = messages.len();
    for message in messages {
        a.cast(message(b.clone())).expect("cast to A");
    }
    eventually("B handled every message", || {
        let done = spans(&exporter)
            .iter()
            .filter(|s| s.name == "b.work")
            .count();
        (done == expected).then_some(())
    })
    .await;

    a.stop(None);
    b.stop(None);
    a_handle.await.expect("A stopped");
    b_handle.await.expect("B stopped");
    spans(&exporter)
}

fn spans(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter.get_finished_spans().expect("in-memory exporter")
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// Polls `probe` until it yields a value; panics after 10 s.
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn b_work_is_a_remote_child_of_a_work() {
    let spans = run(vec![AMessage::Traced], true).await;
    let (a, b) = (named(&spans, "a.work"), named(&spans, "b.work"));
    assert_eq!((a.len(), b.len()), (1, 1), "{spans:#?}");
    let (a, b) = (a[0], b[0]);
    assert_eq!(b.span_context.trace_id(), a.span_context.trace_id());
    assert_eq!(b.parent_span_id, a.span_context.span_id());
    assert!(b.parent_span_is_remote, "the link came through the carrier");
    assert_eq!(a.parent_span_id, SpanId::INVALID, "a.work is a root");
}

#[tokio::test]
async fn an_empty_context_makes_b_work_a_root() {
    // ractor propagates the sender's tracing span into B's handler; the carrier must win.
    let spans = run(vec![AMessage::Untraced], true).await;
    let (a, b) = (named(&spans, "a.work"), named(&spans, "b.work"));
    assert_eq!((a.len(), b.len()), (1, 1), "{spans:#?}");
    assert_eq!(b[0].parent_span_id, SpanId::INVALID);
    assert_ne!(b[0].span_context.trace_id(), a[0].span_context.trace_id());
}

#[tokio::test]
async fn ractor_lifetime_spans_are_not_exported() {
    // Control case first: without the filter ractor's `Actor` spans (two per actor: start
    // and processing loop) do reach the exporter, so the filtered case proves something.
    for filtered in [false, true] {
        let spans = run(vec![AMessage::Traced, AMessage::Untraced], filtered).await;
        let lifetimes = named(&spans, "Actor").len();
        assert_eq!(
            lifetimes > 0,
            !filtered,
            "filtered={filtered}: {lifetimes} Actor spans"
        );
        assert_eq!(named(&spans, "b.work").len(), 2, "filtered={filtered}");
    }
}
