//! The `codex` service against the repo's scripted fake app-server
//! (`tests/support/fake_app_server.py`, python3), on a real Host: the request window holds
//! back what does not fit; a death is the process's, restarted at once, told to every
//! session once with one `report`.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::child::ChildStatus;
use crate::codex::jsonrpc::{Incoming, Outgoing, RequestId};
use crate::codex::{CodexCommand, CodexPool, SessionEvent, SessionSink, Slot};
use crate::host::{Host, HostSpec};
use crate::restart::RestartPolicy;

const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/support/fake_app_server.py"
);

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// A Host with only the `codex` service of `pool`, under a base backoff of an hour: a first
/// restart that waited for it would never come within the tests' 20 s.
async fn host(pool: &CodexPool) -> Host {
    let hour = Duration::from_secs(3600);
    let policy = RestartPolicy {
        backoff_base: hour,
        backoff_cap: hour,
        ..RestartPolicy::default()
    };
    let spec = HostSpec {
        services: vec![pool.service(policy, Duration::from_secs(5))],
        agents: Vec::new(),
        stop_timeout: Duration::from_secs(5),
        observer: None,
    };
    Host::spawn(spec).await.expect("host spawns").0
}

/// Waits (real time, at most 20 s) until `slot` runs a process other than `not`.
async fn up(slot: &Slot, not: Option<u32>) -> u32 {
    let mut watch = slot.watch();
    let wait = watch.wait_for(|pid| pid.is_some() && *pid != not);
    let pid = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("a process within 20 s")
        .expect("the slot lives");
    pid.expect("checked")
}

/// `process-<n>`'s status under the `codex` service.
async fn process_status(host: &Host, name: &str) -> ChildStatus {
    let status = host.status().await.expect("status");
    let codex = status
        .services
        .iter()
        .find(|s| s.name == "codex")
        .expect("the codex service");
    codex
        .children
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .expect("the process")
}

/// `process-0`'s requests in flight and waiting.
async fn window(host: &Host) -> (u64, u64) {
    let detail = process_status(host, "process-0")
        .await
        .detail
        .expect("detail");
    let count = |key: &str| detail[key].as_u64().expect("a count");
    (count("requests_in_flight"), count("requests_waiting"))
}

fn sink() -> (SessionSink, mpsc::UnboundedReceiver<SessionEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (SessionSink::new(move |event| tx.send(event).is_ok()), rx)
}

async fn next(events: &mut mpsc::UnboundedReceiver<SessionEvent>) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event within 20 s")
        .expect("the sink is alive")
}

#[tokio::test]
async fn test_requests_beyond_the_window_wait_and_go_out_as_answers_come() {
    let pool = CodexPool::new(10, RestartPolicy::default()).with_window(2);
    let slot = pool.place("spark-a", "fake", CodexCommand::new(FAKE, ""));
    let host = host(&pool).await;
    let pid = up(&slot, None).await;
    let (sink, mut events) = sink();
    let session = slot.attach(sink).expect("the fake runs");
    // Stopped, the fake answers nothing: what the window holds back stays held back.
    signal(pid, "STOP");
    for n in 0..5 {
        let request = Outgoing::Request {
            id: RequestId::Int(n),
            method: "no/such/method".to_owned(),
            params: None,
        };
        session.send(request).expect("queued");
    }
    assert_eq!(window(&host).await, (2, 3), "2 out, 3 waiting");
    signal(pid, "CONT");
    let mut answered = Vec::new();
    while answered.len() < 5 {
        if let SessionEvent::Message(Incoming::Response { id, outcome }) = next(&mut events).await {
            assert!(outcome.is_err(), "the fake knows no such method");
            answered.push(id);
        }
    }
    let ids: Vec<RequestId> = (0..5).map(RequestId::Int).collect();
    assert_eq!(answered, ids, "every request answered once, in order");
    assert_eq!(window(&host).await, (0, 0), "the window is empty");
    host.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn test_a_killed_process_is_restarted_at_once_and_each_session_hears_it_once() {
    let pool = CodexPool::new(10, RestartPolicy::default());
    let slot = pool.place("spark-a", "fake", CodexCommand::new(FAKE, ""));
    assert_eq!(
        pool.place("spark-b", "fake", CodexCommand::new(FAKE, ""))
            .name(),
        "process-0",
        "same identity, room left: the same process"
    );
    let host = host(&pool).await;
    let first = up(&slot, None).await;
    let (sink_a, mut a) = sink();
    let (sink_b, mut b) = sink();
    let _session_a = slot.attach(sink_a).expect("up");
    let session_b = slot.attach(sink_b).expect("up");
    session_b.kill("test".to_owned());
    let mut reports = 0;
    for events in [&mut a, &mut b] {
        let SessionEvent::Gone(gone) = next(events).await else {
            panic!("the first event is the death");
        };
        assert!(gone.died, "{gone:?}");
        assert_eq!(gone.process, "process-0");
        assert_eq!(gone.agents, ["spark-a", "spark-b"]);
        assert!(gone.why.contains("signal 9"), "{gone:?}");
        assert!(
            gone.why.contains("(killed: test)"),
            "says why it was killed: {gone:?}"
        );
        reports += usize::from(gone.report);
    }
    assert_eq!(reports, 1, "one alert per death");
    // The base backoff is an hour: only an immediate first restart comes up in time.
    let second = up(&slot, Some(first)).await;
    assert_ne!(first, second);
    let status = process_status(&host, "process-0").await;
    assert_eq!((status.restarts, status.circuit.as_str()), (1, "closed"));
    host.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn test_a_slot_placed_at_run_time_gets_a_process_and_the_last_agent_out_stops_it() {
    let pool = CodexPool::new(1, RestartPolicy::default());
    let first = pool.place("spark-a", "fake", CodexCommand::new(FAKE, ""));
    let host = host(&pool).await;
    up(&first, None).await;
    // SIGHUP adds an agent; one agent per process: a new slot, started by the running service.
    let added = pool.place("spark-b", "fake", CodexCommand::new(FAKE, ""));
    assert_eq!(added.name(), "process-1");
    let pid = up(&added, None).await;
    // SIGHUP removes it: its process stops and is reaped; the other one runs on.
    pool.release("spark-b");
    let mut watch = added.watch();
    let down = watch.wait_for(Option::is_none);
    tokio::time::timeout(Duration::from_secs(20), down)
        .await
        .expect("stopped within 20 s")
        .expect("the slot lives");
    // The supervisor answers after its removal of the child, which waits for the stop.
    let status = host.status().await.expect("status");
    let codex = status.services.iter().find(|s| s.name == "codex");
    let names: Vec<&str> = codex
        .map(|c| c.children.iter().map(|p| p.name.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["process-0"], "process-1 is removed");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} was stopped and reaped"
    );
    assert!(first.pid().is_some(), "process-0 runs on");
    host.shutdown(Duration::from_secs(5)).await;
}
