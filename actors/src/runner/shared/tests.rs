//! The pool against the repo's scripted fake app-server (`tests/support/fake_app_server.py`,
//! python3): the request window holds back what does not fit and writes it as answers come.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{CodexPool, SharedSession};
use crate::restart::RestartPolicy;
use crate::runner::jsonrpc::{Incoming, Outgoing, RequestId};
use crate::runner::process::{CodexCommand, ProcessEvent};

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

#[tokio::test]
async fn test_requests_beyond_the_window_wait_and_go_out_as_answers_come() {
    let pool = CodexPool::new(10).with_window(2);
    let slot = pool.place(
        "spark-a",
        "fake",
        CodexCommand::new(FAKE, ""),
        RestartPolicy::default(),
    );
    let (tx, mut events) = mpsc::unbounded_channel();
    let sink = Arc::new(move |event| tx.send(event).is_ok());
    let session = SharedSession::attach(&slot, sink).expect("the fake starts");
    // Stopped, the fake answers nothing: what the window holds back stays held back.
    signal(session.pid(), "STOP");
    for n in 0..5 {
        let request = Outgoing::Request {
            id: RequestId::Int(n),
            method: "no/such/method".to_owned(),
            params: None,
        };
        session.send(&request).expect("queued");
    }
    let status = &pool.status()[0];
    assert_eq!(
        (status.requests_in_flight, status.requests_waiting),
        (2, 3),
        "{status:?}"
    );
    signal(session.pid(), "CONT");
    let mut answered = Vec::new();
    while answered.len() < 5 {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("an answer within 20 s")
            .expect("the sink is alive");
        if let ProcessEvent::Message(Incoming::Response { id, outcome }) = event {
            assert!(outcome.is_err(), "the fake knows no such method");
            answered.push(id);
        }
    }
    let ids: Vec<RequestId> = (0..5).map(RequestId::Int).collect();
    assert_eq!(answered, ids, "every request answered once, in order");
    let status = &pool.status()[0];
    assert_eq!(
        (status.requests_in_flight, status.requests_waiting),
        (0, 0),
        "{status:?}"
    );
    if let Some(process) = session.detach() {
        process.stop(Default::default()).await;
    }
}
