//! Proves the fake model (`tests/support/fake_model.rs`) works, driven by raw HTTP/1.1
//! POSTs instead of codex: content rules answer by the last user message (used up, or not
//! with `when_always`) and leave tool-output follow-ups to the script; a held reply stops
//! after its first delta until its gate opens, and a client that hangs up while held is let
//! go. A self-test of the helper, not of codexd.

#[path = "support/fake_model.rs"]
mod fake_model;
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use fake_model::{FakeModel, Gate, Reply, last_user_text, user_texts};
use support::eventually;

/// Hang detector for the raw socket reads in this file.
const PATIENCE: Duration = Duration::from_secs(30);

/// A Responses request body whose `input` is `items`.
fn body(items: Vec<Value>) -> Value {
    json!({"model": "fake", "stream": true, "input": items})
}

fn user(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

/// A tool call and its output, as codex sends them after the user message.
fn tool_round() -> Vec<Value> {
    vec![
        json!({"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"}),
        json!({"type": "function_call_output", "call_id": "c1", "output": "Output:\nhi\n"}),
    ]
}

/// POSTs `body` to the fake's `/v1/responses`; the answer is read from the returned stream.
async fn post(model: &FakeModel, body: &Value) -> BufReader<TcpStream> {
    let address = model.base_url().replace("http://", "").replace("/v1", "");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let body = body.to_string();
    let head = format!(
        "POST /v1/responses HTTP/1.1\r\nhost: fake\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body.as_bytes()).await.expect("write body");
    BufReader::new(stream)
}

/// The next SSE event's JSON (`data:` line); `None` at the end of the stream.
async fn next_event(reader: &mut BufReader<TcpStream>) -> Option<Value> {
    let read = async {
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.expect("read") == 0 {
                return None;
            }
            if let Some(data) = line.trim_end().strip_prefix("data: ") {
                return Some(serde_json::from_str(data).expect("event is JSON"));
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("fake model: an event or the end of the stream")
}

/// Every event left in the stream, until the fake closes it.
async fn rest(reader: &mut BufReader<TcpStream>) -> Vec<Value> {
    let mut events = Vec::new();
    while let Some(event) = next_event(reader).await {
        events.push(event);
    }
    events
}

/// The deltas of `events`, joined.
fn deltas(events: &[Value]) -> String {
    events
        .iter()
        .filter(|event| event["type"] == "response.output_text.delta")
        .filter_map(|event| event["delta"].as_str())
        .collect()
}

/// The text the fake streams for `body`, which must end with `response.completed`.
async fn reply_text(model: &FakeModel, body: &Value) -> String {
    let events = rest(&mut post(model, body).await).await;
    let last = events.last().expect("some events");
    assert_eq!(last["type"], "response.completed", "events: {events:?}");
    deltas(&events)
}

#[test]
fn user_texts_read_every_user_message_in_order() {
    let request = body(vec![
        json!({"type": "message", "role": "developer",
               "content": [{"type": "input_text", "text": "be brief"}]}),
        user("first"),
        json!({"type": "message", "role": "assistant",
               "content": [{"type": "output_text", "text": "ok"}]}),
        json!({"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "second"},
            {"type": "input_image", "image_url": "data:"},
            {"type": "input_text", "text": "part"},
        ]}),
    ]);
    assert_eq!(user_texts(&request), ["first", "second\npart"]);
    assert_eq!(last_user_text(&request).as_deref(), Some("second\npart"));
    assert_eq!(last_user_text(&body(vec![])), None);
}

#[tokio::test]
async fn a_rule_answers_the_last_user_message_once() {
    let model = FakeModel::start(vec![Reply::text("scripted")]).await;
    model.when("weather", Reply::text("sunny"));
    model.when("weather", Reply::text("rainy"));

    let earlier = body(vec![user("the weather?"), user("never mind")]);
    assert_eq!(reply_text(&model, &earlier).await, "scripted");
    let asks = body(vec![user("never mind"), user("what is the weather?")]);
    assert_eq!(reply_text(&model, &asks).await, "sunny");
    assert_eq!(reply_text(&model, &asks).await, "rainy");
    assert_eq!(reply_text(&model, &asks).await, "ok", "both rules used up");
    assert_eq!(model.requests().len(), 4);
}

#[tokio::test]
async fn a_rule_leaves_a_tool_output_follow_up_to_the_script() {
    let model = FakeModel::start(vec![]).await;
    model.when("weather", Reply::text("sunny"));

    let mut follow_up = vec![user("what is the weather?")];
    follow_up.extend(tool_round());
    assert_eq!(reply_text(&model, &body(follow_up)).await, "ok");
    let mut answered = vec![user("what is the weather?")];
    answered.extend(tool_round());
    answered.push(user("and now the weather?"));
    assert_eq!(
        reply_text(&model, &body(answered)).await,
        "sunny",
        "the rule was kept for a request that does not end with a tool's output"
    );
}

#[tokio::test]
async fn an_always_rule_keeps_answering() {
    let model = FakeModel::start(vec![Reply::text("scripted")]).await;
    model.when_always("ping", Reply::text("pong"));

    for _ in 0..3 {
        assert_eq!(reply_text(&model, &body(vec![user("ping?")])).await, "pong");
    }
    assert_eq!(
        reply_text(&model, &body(vec![user("hello")])).await,
        "scripted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_reply_waits_for_its_gate() {
    let gate = Gate::new();
    let model = FakeModel::start(vec![Reply::held("one two three", &gate)]).await;
    let mut reader = post(&model, &body(vec![user("hi")])).await;

    let mut head = Vec::new();
    while head
        .last()
        .is_none_or(|e: &Value| e["type"] != "response.output_text.delta")
    {
        head.push(
            next_event(&mut reader)
                .await
                .expect("an event before the gate"),
        );
    }
    let kinds: Vec<&str> = head.iter().filter_map(|e| e["type"].as_str()).collect();
    let expected = [
        "response.created",
        "response.output_item.added",
        "response.output_text.delta",
    ];
    assert_eq!(kinds, expected);
    assert_eq!(deltas(&head), "one ");
    eventually("the reply is held at its gate", || {
        (model.held() == 1).then_some(())
    });
    let mut probe = [0; 1];
    let unread = reader.get_ref().try_read(&mut probe);
    // The buffer holds at most the blank line that ends the delta's frame.
    assert!(
        reader.buffer().trim_ascii().is_empty() && unread.is_err(),
        "nothing after the first delta while held: {unread:?}"
    );
    assert_eq!(model.deltas(), 1);

    assert!(!gate.is_open());
    gate.open();
    assert!(gate.is_open());
    let tail = rest(&mut reader).await;
    assert_eq!(deltas(&tail), "two three");
    let last = tail.last().expect("events after the gate");
    assert_eq!(last["type"], "response.completed");
    assert_eq!(model.held(), 0);

    model.push(Reply::held("open already", &gate));
    let again = reply_text(&model, &body(vec![user("hi")])).await;
    assert_eq!(again, "open already", "an open gate stays open");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_hangs_up_while_held_is_let_go() {
    let gate = Gate::new();
    let model = FakeModel::start(vec![Reply::held("one two", &gate)]).await;
    let mut reader = post(&model, &body(vec![user("hi")])).await;
    while next_event(&mut reader).await.expect("the first delta")["type"]
        != "response.output_text.delta"
    {}
    eventually("the reply is held at its gate", || {
        (model.held() == 1).then_some(())
    });

    drop(reader);
    eventually("the hung-up stream is no longer held", || {
        (model.held() == 0).then_some(())
    });
    assert!(!gate.is_open());
    let next = reply_text(&model, &body(vec![user("still there?")])).await;
    assert_eq!(next, "ok", "the fake keeps serving");
}
