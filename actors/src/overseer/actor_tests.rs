//! The overseer actor with a fake `codex exec`: a shell script that records its argv and
//! stdin and answers as told.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use tokio::sync::mpsc;

use super::*;
use crate::child::ControlMsg;

/// Records every message it gets.
struct Recorder<M>(std::marker::PhantomData<fn() -> M>);

impl<M: ractor::Message> Actor for Recorder<M> {
    type Msg = M;
    type State = mpsc::UnboundedSender<M>;
    type Arguments = mpsc::UnboundedSender<M>;

    async fn pre_start(
        &self,
        _myself: ActorRef<M>,
        sink: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(sink)
    }

    async fn handle(
        &self,
        _myself: ActorRef<M>,
        msg: M,
        sink: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = sink.send(msg);
        Ok(())
    }
}

async fn recorder<M: ractor::Message>() -> (Link<M>, mpsc::UnboundedReceiver<M>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (actor, _) = Actor::spawn(None, Recorder(std::marker::PhantomData), tx)
        .await
        .expect("recorder");
    let link = Link::default();
    link.set(actor);
    (link, rx)
}

struct Fixture {
    dir: tempfile::TempDir,
    overseer: ActorRef<OverseerMessage>,
    whispers: mpsc::UnboundedReceiver<SocketMessage>,
    alerts: mpsc::UnboundedReceiver<WebhookMessage>,
    pause: PauseSwitch,
    runner: tokio::sync::broadcast::Sender<RunnerEvent>,
}

/// An overseer whose codex is a script with `body` (after recording argv, stdin and its pid).
async fn start(body: &str, tune: impl FnOnce(&mut OverseerSettings)) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("codex");
    let record = format!(
        "#!/bin/sh\necho $$ >> {d}/pids\necho \"$@\" > {d}/args\ncat > {d}/prompt\n{body}\n",
        d = dir.path().display()
    );
    std::fs::write(&script, record).expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut command = CodexCommand::new(&script, "spark-a");
    command.cwd = Some(dir.path().to_owned());
    let mut settings = OverseerSettings::new("spark-a", command, "judge-model");
    settings.eval_interval = 1;
    tune(&mut settings);
    let (socket, whispers) = recorder().await;
    let (webhook, alerts) = recorder().await;
    let pause = PauseSwitch::default();
    let (runner, _) = tokio::sync::broadcast::channel(16);
    let peers = OverseerPeers {
        socket,
        webhook,
        pause: pause.clone(),
        runner: runner.clone(),
    };
    let factory = OverseerFactory::new(settings, peers.clone());
    let args = OverseerArgs {
        settings: factory.settings.clone(),
        peers,
        book: factory.book.clone(),
    };
    let (overseer, _) = Actor::spawn(None, Overseer, args).await.expect("overseer");
    Fixture {
        dir,
        overseer,
        whispers,
        alerts,
        pause,
        runner,
    }
}

impl Fixture {
    /// The runner publishes an agent message (the overseer's listener forwards it).
    fn publish(&self, text: &str) {
        let event = RunnerEvent::AgentMessage {
            text: text.to_owned(),
            trace: TraceCtx::default(),
        };
        self.runner.send(event).expect("the overseer listens");
    }

    fn observe(&self, text: &str) {
        let trace = TraceCtx::default();
        let text = text.to_owned();
        self.overseer
            .cast(OverseerMessage::Observe { text, trace })
            .expect("cast");
    }

    /// The status detail; fails the test if the actor does not answer within 1 s.
    async fn status(&self) -> serde_json::Value {
        let budget = Duration::from_secs(1);
        let report = self
            .overseer
            .call(
                |reply| OverseerMessage::Control(ControlMsg::Status { budget, reply }),
                Some(budget),
            )
            .await
            .expect("call")
            .answered("the overseer did not answer within 1 s");
        report.detail.expect("detail")
    }

    async fn wait_status(
        &self,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "{what}: last status {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn pids(&self) -> Vec<u32> {
        self.file("pids")
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    }
}

trait SuccessOr<T> {
    fn answered(self, what: &str) -> T;
}

impl<T> SuccessOr<T> for ractor::rpc::CallResult<T> {
    fn answered(self, what: &str) -> T {
        match self {
            ractor::rpc::CallResult::Success(value) => value,
            _ => panic!("{what}"),
        }
    }
}

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn a_correction_is_whispered_with_the_prompt_on_stdin_and_the_exec_args() {
    let mut fx = start("echo 'CORRECTION  focus on the failing test'", |_| {}).await;
    // Through the runner's event, as in the agent.
    fx.publish("I am refactoring everything");
    let Some(SocketMessage::Whisper(whisper)) = fx.whispers.recv().await else {
        panic!("no whisper");
    };
    assert_eq!(whisper.kind, "CORRECTION");
    assert_eq!(whisper.message, "focus on the failing test");
    assert_eq!(
        fx.file("args"),
        "exec --sandbox read-only --skip-git-repo-check --ephemeral --color never -m judge-model\n"
    );
    let expected = Template::default_prompt().render("Agent: I am refactoring everything");
    assert_eq!(fx.file("prompt"), expected);
    let status = fx
        .wait_status("verdict recorded", |s| s["evaluations"] == 1)
        .await;
    assert_eq!(status["last_verdict"], "CORRECTION");
    assert_eq!(status["observed"], 1);
    assert!(fx.alerts.try_recv().is_err());
}

#[tokio::test]
async fn garbage_output_counts_as_ok_and_a_failing_codex_as_failed() {
    let fx = start("echo 'RANDOM garbage'", |_| {}).await;
    fx.observe("hello");
    let status = fx
        .wait_status("garbage read", |s| s["evaluations"] == 1)
        .await;
    assert_eq!(status["last_verdict"], "OK");
    assert_eq!(status["evaluations_failed"], 0);

    let mut fx = start(
        "echo 'no auth for https://u:secret@h/x?token=abc' >&2; exit 3",
        |_| {},
    )
    .await;
    fx.observe("hello");
    let status = fx
        .wait_status("failure counted", |s| s["evaluations_failed"] == 1)
        .await;
    assert_eq!(status["last_verdict"], serde_json::Value::Null);
    assert_eq!(
        status["last_error"], "codex exec exited with code 3: no auth for https://h/x",
        "stderr is summarised and redacted"
    );
    assert!(fx.whispers.try_recv().is_err());
}

#[tokio::test]
async fn a_hanging_evaluation_is_killed_with_its_group_and_reaped() {
    let fx = start(
        "sleep 300 & echo $! >> $(dirname $0)/pids; sleep 300",
        |s| {
            s.timeout = Duration::from_millis(500);
        },
    )
    .await;
    fx.observe("hello");
    fx.wait_status("evaluation running", |s| s["evaluating"] == true)
        .await;
    // The mailbox answers while codex hangs (status above, again here).
    assert_eq!(fx.status().await["evaluating"], true);
    let status = fx
        .wait_status("timeout counted", |s| s["evaluations_failed"] == 1)
        .await;
    assert_eq!(status["evaluating"], false);
    assert_eq!(status["last_error"], "timed out after 500ms; killed");
    let pids = fx.pids();
    assert_eq!(
        pids.len(),
        2,
        "the script and its background sleep: {pids:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids.iter().all(|pid| gone(*pid)) {
        assert!(
            Instant::now() < deadline,
            "still alive (or unreaped): {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn escalations_alert_and_pause_once() {
    let mut fx = start("echo 'ESCALATION going in circles'", |s| {
        s.escalation_threshold = 2;
    })
    .await;
    for n in 1..=4 {
        fx.observe(&format!("attempt {n}"));
        fx.wait_status("evaluated", |s| s["evaluations"] == n).await;
    }
    let Some(WebhookMessage::Alert(alert)) = fx.alerts.recv().await else {
        panic!("no alert");
    };
    assert_eq!(alert.event, AlertEvent::AgentSpiraling);
    assert_eq!(alert.nick, "spark-a");
    assert_eq!(alert.message, "[ESCALATION] spark-a: going in circles");
    assert_eq!(fx.pause.reason(), Some(PauseReason::Escalation));
    assert!(fx.alerts.try_recv().is_err(), "one alert only");
    assert_eq!(fx.status().await["escalations"], 4);
}

#[tokio::test]
async fn evaluations_falling_due_while_one_runs_are_coalesced() {
    let fx = start("sleep 0.5; echo OK", |_| {}).await;
    for n in 1..=5 {
        fx.observe(&format!("message {n}"));
    }
    let status = fx
        .wait_status("two evaluations", |s| {
            s["evaluations"] == 2 && s["evaluating"] == false
        })
        .await;
    assert_eq!(status["observed"], 5);
    assert_eq!(
        fx.pids().len(),
        2,
        "one run, then one for the four that fell due meanwhile"
    );
    let expected: Vec<String> = (1..=5).map(|n| format!("Agent: message {n}")).collect();
    assert_eq!(
        fx.file("prompt"),
        Template::default_prompt().render(&expected.join("\n"))
    );
}

/// The evaluation span is a child of the observed message's turn, records the verdict, and
/// the whisper carries its context.
#[tokio::test]
async fn the_evaluation_is_a_span_under_the_turn_and_the_whisper_follows_it() {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt as _;

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(otel));

    let mut fx = start("echo 'THINK_DEEPER why does it fail?'", |_| {}).await;
    let turn = tracing::info_span!("harness.llm.call");
    let trace = turn.in_scope(TraceCtx::current);
    drop(turn);
    let text = "done".to_owned();
    fx.overseer
        .cast(OverseerMessage::Observe { text, trace })
        .expect("cast");
    let Some(SocketMessage::Whisper(whisper)) = fx.whispers.recv().await else {
        panic!("no whisper");
    };
    assert_eq!(whisper.kind, "THINK_DEEPER");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (turn, evaluation) = loop {
        let spans = exporter.get_finished_spans().expect("spans");
        let find = |name: &str| spans.iter().find(|s| s.name == name).cloned();
        if let (Some(turn), Some(evaluation)) =
            (find("harness.llm.call"), find("codexd.overseer.evaluate"))
        {
            break (turn, evaluation);
        }
        assert!(Instant::now() < deadline, "spans: {spans:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(evaluation.parent_span_id, turn.span_context.span_id());
    assert_eq!(
        evaluation.span_context.trace_id(),
        turn.span_context.trace_id()
    );
    let attribute = |key: &str| {
        evaluation
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("verdict").as_deref(), Some("THINK_DEEPER"));
    assert_eq!(attribute("outcome").as_deref(), Some("ok"));
    assert!(attribute("duration_ms").is_some());
    let whisper_parent = whisper.trace.traceparent.expect("whisper traceparent");
    assert!(
        whisper_parent.contains(&evaluation.span_context.span_id().to_string()),
        "{whisper_parent}"
    );
}
