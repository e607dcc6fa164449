//! The webhook actor against the loopback receiver (tests/support/webhook_receiver.rs), in
//! real time with short timeouts: retries on 5xx, none on 4xx, timeouts on a hanging
//! server that block nothing, a bounded queue, dedup and the allow-list, the blackhole
//! fault, circuit transitions of a sibling turned into alerts by the observer, secrets
//! masked in alert texts, and the delivery span (child of the alert's trace, no URL
//! secrets).

#[path = "../../tests/support/webhook_receiver.rs"]
mod webhook_receiver;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use codexd_actors::child::{ChildRole, ChildSpec, ControlError, ControlMsg, FaultKind, Report};
use codexd_actors::link::Link;
use codexd_actors::restart::RestartPolicy;
use codexd_actors::supervisor::{ShutdownOrder, Supervisor, SupervisorArgs, SupervisorMsg};
use codexd_actors::test_child::{Script, TestChildFactory};
use codexd_actors::trace::TraceCtx;
use codexd_actors::webhook::{
    Alert, AlertEvent, Endpoint, Format, WebhookFactory, WebhookMessage, WebhookPeers,
    WebhookSettings, WebhookStats, observe,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use ractor::{Actor, ActorRef};
use tracing_subscriber::layer::SubscriberExt as _;
use webhook_receiver::{Answer, WebhookReceiver, refused_url};

const PATIENCE: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn settings(url: &str) -> WebhookSettings {
    let mut settings = WebhookSettings::new("spark-a");
    settings.url = Some(Endpoint::parse(url).expect("url"));
    settings.irc_channel = None;
    settings.format = Format::Generic;
    settings.events = AlertEvent::ALL.to_vec();
    settings.timeout = ms(300);
    settings.attempts = 3;
    settings.backoff_base = ms(20);
    settings.backoff_cap = ms(100);
    settings
}

fn policy() -> RestartPolicy {
    RestartPolicy {
        backoff_base: ms(10),
        backoff_cap: ms(20),
        jitter: 0.0,
        max_restarts: 2,
        window: Duration::from_secs(60),
        cooldown: ms(300),
        cooldown_cap: ms(300),
        stable_after: ms(200),
        ..RestartPolicy::default()
    }
}

/// A running webhook under an agent supervisor.
struct Rig {
    agent: ActorRef<SupervisorMsg>,
    link: Link<WebhookMessage>,
    stats: Arc<Mutex<WebhookStats>>,
}

impl Rig {
    async fn start(settings: WebhookSettings, siblings: Vec<ChildSpec>) -> Rig {
        let link = Link::default();
        let peers = WebhookPeers {
            irc: Link::default(),
            irc_events: None,
            link: link.clone(),
            mesh_gate: Default::default(),
        };
        let factory = WebhookFactory::new(settings, peers);
        let stats = factory.stats();
        let mut children = vec![ChildSpec {
            name: "webhook".into(),
            role: ChildRole::Member,
            policy: policy(),
            factory: Arc::new(factory),
        }];
        children.extend(siblings);
        let args = SupervisorArgs {
            name: "spark-a".into(),
            children,
            shutdown: ShutdownOrder::Reverse,
            stop_timeout: Duration::from_secs(2),
            observer: Some(observe::observer(
                "spark-a",
                link.clone(),
                Duration::from_secs(60),
            )),
        };
        let (agent, _join) = Actor::spawn(None, Supervisor, args).await.expect("spawn");
        let rig = Rig { agent, link, stats };
        rig.wait("webhook registered", |_| true).await;
        rig
    }

    fn alert(&self, event: AlertEvent, message: &str) {
        self.alert_in(event, message, TraceCtx::default());
    }

    fn alert_in(&self, event: AlertEvent, message: &str, trace: TraceCtx) {
        let actor = self.link.get().expect("webhook runs");
        let alert = Alert {
            event,
            nick: "spark-a".into(),
            message: message.into(),
            trace,
        };
        actor.cast(WebhookMessage::Alert(alert)).expect("cast");
    }

    fn stats(&self) -> WebhookStats {
        self.stats.lock().expect("stats").clone()
    }

    /// Polls until `check` holds for the stats (and the webhook runs).
    async fn wait(&self, what: &str, check: impl Fn(&WebhookStats) -> bool) -> WebhookStats {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let stats = self.stats();
            if self.link.get().is_some() && check(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for: {what}; stats {stats:?}"
            );
            tokio::time::sleep(ms(10)).await;
        }
    }

    async fn fault(&self, kind: FaultKind) -> Result<(), ControlError> {
        let make = |reply| {
            SupervisorMsg::Control(ControlMsg::Fault {
                path: vec!["webhook".into()],
                kind,
                reply,
                trace: TraceCtx::default(),
            })
        };
        self.agent
            .call(make, Some(PATIENCE))
            .await
            .expect("call")
            .expect("answer")
    }

    /// The webhook's status detail, asked through the supervisor.
    async fn detail(&self) -> serde_json::Value {
        let actor = self.link.get().expect("webhook runs");
        let make = |reply| {
            WebhookMessage::Control(ControlMsg::Status {
                budget: Duration::from_secs(1),
                reply,
            })
        };
        let report: Report = actor
            .call(make, Some(Duration::from_secs(5)))
            .await
            .expect("call")
            .expect("answer");
        report.detail.expect("detail")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.agent.stop(None);
    }
}

#[tokio::test]
async fn server_error_is_retried_and_delivered_once() {
    let receiver = WebhookReceiver::start().await;
    receiver.push(Answer::Status(500));
    let rig = Rig::start(settings(&receiver.url()), vec![]).await;
    rig.alert(AlertEvent::AgentError, "Agent spark-a crashed (exit 1).");
    let stats = rig.wait("delivered", |s| s.delivered == 1).await;
    assert_eq!((stats.failed, stats.retries), (0, 1));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one 500, one 200");
    let body = requests[1].json();
    assert_eq!(body["event"], "agent_error");
    assert_eq!(body["nick"], "spark-a");
    assert_eq!(body["message"], "Agent spark-a crashed (exit 1).");
    assert_eq!(requests[1].method, "POST");
    assert_eq!(requests[1].header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn client_error_is_not_retried() {
    let receiver = WebhookReceiver::start().await;
    receiver.set(Answer::Status(404));
    let rig = Rig::start(settings(&receiver.url()), vec![]).await;
    rig.alert(AlertEvent::AgentError, "x");
    let stats = rig.wait("failed", |s| s.failed == 1).await;
    assert_eq!((stats.delivered, stats.retries), (0, 0));
    assert_eq!(stats.last_error.as_deref(), Some("http: HTTP 404"));
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn hanging_server_times_out_is_retried_and_blocks_nothing() {
    let receiver = WebhookReceiver::start().await;
    receiver.set(Answer::Hang);
    let mut settings = settings(&receiver.url());
    settings.attempts = 2;
    let rig = Rig::start(settings, vec![]).await;
    rig.alert(AlertEvent::AgentError, "first");
    receiver.wait_requests(1).await;
    // While the first delivery hangs, the actor answers and takes more alerts.
    rig.alert(AlertEvent::AgentError, "second");
    let detail = rig.detail().await;
    assert_eq!(detail["queued"], 1, "{detail}");
    assert_eq!(detail["failed"], 0, "{detail}");
    let stats = rig.wait("both given up", |s| s.failed == 2).await;
    assert_eq!(stats.retries, 2);
    assert_eq!(stats.last_error.as_deref(), Some("http: timed out"));
    assert_eq!(receiver.requests().len(), 4, "two attempts per alert");
}

#[tokio::test]
async fn refused_connection_is_retried_until_attempts_run_out() {
    let rig = Rig::start(settings(&refused_url().await), vec![]).await;
    rig.alert(AlertEvent::AgentError, "x");
    let stats = rig.wait("failed", |s| s.failed == 1).await;
    assert_eq!(stats.retries, 2);
    let error = stats.last_error.unwrap_or_default();
    assert!(error.starts_with("http: connection failed"), "{error}");
}

#[tokio::test]
async fn full_queue_drops_its_oldest() {
    let receiver = WebhookReceiver::start().await;
    receiver.set(Answer::Hang);
    let mut settings = settings(&receiver.url());
    settings.queue = 2;
    settings.attempts = 1;
    settings.timeout = Duration::from_secs(20);
    let rig = Rig::start(settings, vec![]).await;
    rig.alert(AlertEvent::AgentError, "a");
    receiver.wait_requests(1).await;
    for message in ["b", "c", "d", "e"] {
        rig.alert(AlertEvent::AgentError, message);
    }
    let stats = rig.wait("two dropped", |s| s.dropped == 2).await;
    assert_eq!(stats.queued, 2);
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn allow_list_and_dedup_window() {
    let receiver = WebhookReceiver::start().await;
    let mut settings = settings(&receiver.url());
    settings.events = vec![AlertEvent::AgentError];
    let rig = Rig::start(settings, vec![]).await;
    rig.alert(AlertEvent::AgentQuestion, "q");
    rig.alert(AlertEvent::AgentError, "same");
    rig.alert(AlertEvent::AgentError, "same");
    rig.alert(AlertEvent::AgentError, "other");
    let stats = rig.wait("delivered", |s| s.delivered == 2).await;
    assert_eq!((stats.raised, stats.filtered, stats.suppressed), (4, 1, 1));
    let messages: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["message"].clone())
        .collect();
    assert_eq!(messages, ["same", "other"]);
}

#[tokio::test]
async fn alert_texts_are_redacted_before_they_are_sent() {
    let receiver = WebhookReceiver::start().await;
    let rig = Rig::start(settings(&receiver.url()), vec![]).await;
    let leaky = "[QUESTION] [spark-a] asked in #ops: use https://u:secret@h.test/x?token=abc or OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx";
    rig.alert(AlertEvent::AgentQuestion, leaky);
    rig.wait("delivered", |s| s.delivered == 1).await;
    assert_eq!(
        receiver.requests()[0].json()["message"],
        "[QUESTION] [spark-a] asked in #ops: use https://h.test/x or OPENAI_API_KEY=[redacted]"
    );
}

#[tokio::test]
async fn irc_sink_without_an_irc_actor_counts_a_failure() {
    let receiver = WebhookReceiver::start().await;
    let mut settings = settings(&receiver.url());
    settings.irc_channel = Some("#alerts".into());
    let rig = Rig::start(settings, vec![]).await;
    rig.alert(AlertEvent::AgentError, "x");
    let stats = rig
        .wait("irc failed and http delivered", |s| {
            s.irc_failed == 1 && s.delivered == 1
        })
        .await;
    assert_eq!(stats.irc_sent, 0);
}

#[tokio::test]
async fn blackhole_swallows_deliveries_until_toggled_off() {
    let receiver = WebhookReceiver::start().await;
    let mut settings = settings(&receiver.url());
    settings.attempts = 2;
    let rig = Rig::start(settings, vec![]).await;
    rig.fault(FaultKind::Blackhole).await.expect("blackhole on");
    assert_eq!(rig.detail().await["blackhole"], true);
    rig.alert(AlertEvent::AgentError, "lost");
    let stats = rig.wait("timed out", |s| s.failed == 1).await;
    assert_eq!(stats.last_error.as_deref(), Some("http: timed out"));
    assert_eq!(stats.retries, 1);
    assert!(receiver.requests().is_empty(), "nothing left the blackhole");
    rig.fault(FaultKind::Blackhole)
        .await
        .expect("blackhole off");
    rig.alert(AlertEvent::AgentError, "found");
    rig.wait("delivered", |s| s.delivered == 1).await;
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(receiver.requests()[0].json()["message"], "found");
}

#[tokio::test]
async fn other_children_refuse_blackhole_and_faults_parse() {
    assert_eq!(
        FaultKind::parse("blackhole", ms(1)),
        Ok(FaultKind::Blackhole)
    );
    assert_eq!(FaultKind::Blackhole.to_string(), "blackhole");
    let crasher = ChildSpec {
        name: "runner".into(),
        role: ChildRole::Member,
        policy: policy(),
        factory: Arc::new(TestChildFactory::new("runner", Script::Healthy)),
    };
    let receiver = WebhookReceiver::start().await;
    let rig = Rig::start(settings(&receiver.url()), vec![crasher]).await;
    let make = |reply| {
        SupervisorMsg::Control(ControlMsg::Fault {
            path: vec!["runner".into()],
            kind: FaultKind::Blackhole,
            reply,
            trace: TraceCtx::default(),
        })
    };
    let answer = rig
        .agent
        .call(make, Some(PATIENCE))
        .await
        .expect("call")
        .expect("answer");
    assert!(
        matches!(answer, Err(ControlError::UnsupportedFault { .. })),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_siblings_circuit_opening_and_closing_become_alerts() {
    let receiver = WebhookReceiver::start().await;
    let crasher = ChildSpec {
        name: "runner".into(),
        role: ChildRole::Member,
        policy: policy(),
        factory: Arc::new(TestChildFactory::new(
            "runner",
            Script::Fail {
                times: 2,
                after: ms(20),
                kind: FaultKind::Error,
            },
        )),
    };
    let rig = Rig::start(settings(&receiver.url()), vec![crasher]).await;
    rig.wait("circuit closed alert", |s| s.delivered >= 4).await;
    let events: Vec<String> = receiver
        .requests()
        .iter()
        .filter_map(|r| r.event())
        .collect();
    assert_eq!(
        events,
        [
            "agent_restarted",
            "circuit_open",
            "agent_spiraling",
            "circuit_closed"
        ],
        "{:?}",
        receiver
            .requests()
            .iter()
            .map(|r| r.json()["message"].clone())
            .collect::<Vec<_>>()
    );
    let open = receiver.requests()[1].json();
    let text = open["message"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("Agent spark-a: runner failed 2 times; circuit open"),
        "{text}"
    );
    assert!(text.contains("last error: "), "{text}");
}

#[tokio::test]
async fn the_delivery_span_follows_the_alert_and_hides_the_url_secret() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(otel));
    let receiver = WebhookReceiver::start().await;
    receiver.push(Answer::Status(503));
    let rig = Rig::start(settings(&receiver.url()), vec![]).await;
    let trace = TraceCtx {
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        tracestate: None,
    };
    rig.alert_in(AlertEvent::AgentQuestion, "q?", trace);
    rig.wait("delivered", |s| s.delivered == 1).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let span = loop {
        let spans = exporter.get_finished_spans().expect("exporter");
        if let Some(span) = spans
            .into_iter()
            .find(|s| s.name == "codexd.webhook.deliver")
        {
            break span;
        }
        assert!(tokio::time::Instant::now() < deadline, "no deliver span");
        tokio::time::sleep(ms(10)).await;
    };
    assert_eq!(
        span.span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(span.parent_span_id.to_string(), "b7ad6b7169203331");
    let attr = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("alert.event").as_deref(), Some("agent_question"));
    assert_eq!(attr("attempt").as_deref(), Some("2"));
    assert_eq!(attr("http.status_code").as_deref(), Some("200"));
    assert_eq!(attr("outcome").as_deref(), Some("delivered"));
    let address = attr("server.address").unwrap_or_default();
    assert!(address.starts_with("http://127.0.0.1:"), "{address}");
    assert!(
        span.attributes
            .iter()
            .all(|kv| !kv.value.to_string().contains("s3cr3t")),
        "no URL secret in {:?}",
        span.attributes
    );
}
