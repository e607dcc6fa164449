//! Supervision is observable: an operator's fault request is one trace across the Host,
//! the agent and the child (each hop a `supervisor.fault` span parented by the previous
//! one through the message's `TraceCtx`), and every transition is a `supervisor.transition`
//! span carrying its log event, plus a `codexd.supervisor.transitions` data point.

use std::sync::Arc;
use std::time::Duration;

use codexd_actors::agent::AgentSpec;
use codexd_actors::child::{ChildRole, ChildSpec, ChildState, FaultKind};
use codexd_actors::host::{Host, HostSpec};
use codexd_actors::restart::RestartPolicy;
use codexd_actors::test_child::{Script, TestChildFactory};
use codexd_actors::trace::otel_filter;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

#[tokio::test(start_paused = true)]
async fn a_fault_is_one_trace_and_each_transition_a_span_event_and_metric() {
    let spans = InMemorySpanExporter::default();
    let tracer = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer.tracer("test"))
        .with_filter(filter_fn(otel_filter));
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(otel));
    let metrics = InMemoryMetricExporter::default();
    let meter = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics.clone()).build())
        .build();
    opentelemetry::global::set_meter_provider(meter.clone());

    let policy = RestartPolicy {
        backoff_base: Duration::from_millis(10),
        jitter: 0.0,
        ..RestartPolicy::default()
    };
    let irc = ChildSpec {
        name: "irc".into(),
        role: ChildRole::Member,
        policy,
        factory: Arc::new(TestChildFactory::new("irc", Script::Healthy)),
    };
    let agent = AgentSpec {
        nick: "spark-a".into(),
        policy,
        children: vec![irc],
        stop_timeout: Duration::from_secs(1),
        observer: None,
    };
    let (host, _join) = Host::spawn(HostSpec {
        services: vec![],
        agents: vec![agent],
        stop_timeout: Duration::from_secs(1),
        observer: None,
    })
    .await
    .expect("host");
    let restarted = |s: &codexd_actors::host::HostStatus| {
        s.agents[0]
            .supervision
            .children
            .first()
            .is_some_and(|c| c.restarts == 1 && c.state == ChildState::Running)
    };
    for _ in 0..200 {
        if host
            .status()
            .await
            .is_ok_and(|s| !s.agents[0].supervision.children.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let operator = tracing::info_span!(parent: None, "operator.request");
    host.fault("spark-a", "irc", FaultKind::Panic)
        .instrument(operator)
        .await
        .expect("fault accepted");
    let mut healed = false;
    for _ in 0..500 {
        if host.status().await.is_ok_and(|s| restarted(&s)) {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(healed, "irc was restarted");
    host.shutdown(Duration::from_secs(1)).await;

    let finished = spans.get_finished_spans().expect("spans");
    let root = finished
        .iter()
        .find(|s| s.name == "operator.request")
        .expect("operator span");
    let hops: Vec<&SpanData> = finished
        .iter()
        .filter(|s| s.name == "supervisor.fault")
        .collect();
    assert_eq!(
        hops.len(),
        3,
        "host → agent → child: {:?}",
        hops.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let mut parent = root.span_context.span_id();
    for who in ["host", "spark-a", "irc"] {
        let hop = hops
            .iter()
            .find(|s| s.parent_span_id == parent)
            .unwrap_or_else(|| panic!("no hop under {parent:?} for {who}"));
        assert_eq!(hop.span_context.trace_id(), root.span_context.trace_id());
        assert_eq!(
            attr(hop, "supervisor")
                .or_else(|| attr(hop, "actor"))
                .as_deref(),
            Some(who)
        );
        parent = hop.span_context.span_id();
    }

    let transitions: Vec<(String, usize)> = finished
        .iter()
        .filter(|s| s.name == "supervisor.transition" && attr(s, "child").as_deref() == Some("irc"))
        .map(|s| (attr(s, "transition").unwrap_or_default(), s.events.len()))
        .collect();
    for wanted in ["started", "failed", "restarting"] {
        assert!(
            transitions
                .iter()
                .any(|(t, events)| t == wanted && *events == 1),
            "{wanted} in {transitions:?}"
        );
    }
    assert!(
        finished
            .iter()
            .filter(|s| s.name == "supervisor.transition")
            .all(|s| s.parent_span_id == opentelemetry::trace::SpanId::INVALID),
        "transitions are roots"
    );

    meter.force_flush().expect("flush metrics");
    let exported = metrics.get_finished_metrics().expect("metrics");
    let failed_points: u64 = exported
        .iter()
        .flat_map(|rm| rm.scope_metrics())
        .flat_map(|sm| sm.metrics())
        .filter(|m| m.name() == "codexd.supervisor.transitions")
        .flat_map(|m| match m.data() {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                .data_points()
                .filter(|p| {
                    p.attributes()
                        .any(|kv| kv.key.as_str() == "transition" && kv.value.as_str() == "failed")
                })
                .map(|p| p.value())
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .sum();
    assert!(
        failed_points >= 1,
        "a failed transition was counted: {exported:?}"
    );
}
