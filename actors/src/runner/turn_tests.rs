use serde_json::json;

use super::*;

fn turn(id: &str) -> Turn {
    let mut turn = Turn::new(tracing::Span::none());
    turn.id = Some(id.to_owned());
    turn
}

fn completed(turn: &str, status: &str, error: Value) -> Value {
    json!({"threadId": "t", "turn": {"id": turn, "status": status, "error": error, "items": []}})
}

#[test]
fn started_before_the_answer_teaches_the_turn_id() {
    let mut t = Turn::new(tracing::Span::none());
    let started = json!({"threadId": "t", "turn": {"id": "u1", "status": "inProgress"}});
    assert_eq!(t.on_notification("turn/started", &started), Step::None);
    assert_eq!(t.id.as_deref(), Some("u1"));
    let done = completed("u1", "completed", Value::Null);
    assert_eq!(
        t.on_notification("turn/completed", &done),
        Step::Ended(Outcome::Completed)
    );
}

#[test]
fn agent_messages_are_relayed_as_they_complete_and_empty_ones_are_not() {
    let mut t = turn("u1");
    let message = |text: &str| json!({"threadId": "t", "turnId": "u1", "item": {"type": "agentMessage", "id": "m", "text": text}});
    assert_eq!(
        t.on_notification("item/completed", &message("first")),
        Step::Message("first".into())
    );
    assert_eq!(
        t.on_notification("item/completed", &message("  \n")),
        Step::None
    );
    assert_eq!(
        t.on_notification("item/completed", &message("second")),
        Step::Message("second".into())
    );
    assert_eq!(t.messages, ["first", "second"]);
}

#[test]
fn other_turns_are_ignored() {
    let mut t = turn("u1");
    let late = json!({"threadId": "t", "turnId": "u0", "item": {"type": "agentMessage", "id": "m", "text": "old"}});
    assert_eq!(t.on_notification("item/completed", &late), Step::None);
    let other = completed("u0", "completed", Value::Null);
    assert_eq!(t.on_notification("turn/completed", &other), Step::None);
}

#[test]
fn retrying_errors_do_not_end_the_turn_and_final_ones_name_the_failure() {
    let mut t = turn("u1");
    let retry = json!({"threadId": "t", "turnId": "u1", "willRetry": true,
        "error": {"message": "Reconnecting... 1/2", "codexErrorInfo": "other"}});
    assert_eq!(t.on_notification("error", &retry), Step::None);
    let fatal = json!({"threadId": "t", "turnId": "u1", "willRetry": false,
        "error": {"message": "high demand", "codexErrorInfo": "internalServerError"}});
    assert_eq!(t.on_notification("error", &fatal), Step::None);
    let done = completed("u1", "failed", Value::Null);
    assert_eq!(
        t.on_notification("turn/completed", &done),
        Step::Ended(Outcome::Failed("high demand".into()))
    );
}

#[test]
fn statuses_map_to_outcomes() {
    let table = [
        ("completed", Value::Null, None, Outcome::Completed),
        (
            "failed",
            json!({"message": "boom"}),
            None,
            Outcome::Failed("boom".into()),
        ),
        (
            "interrupted",
            Value::Null,
            None,
            Outcome::Failed("turn interrupted".into()),
        ),
        (
            "interrupted",
            Value::Null,
            Some(Instant::now()),
            Outcome::Timeout,
        ),
    ];
    for (status, error, interrupted, expected) in table {
        let mut t = turn("u1");
        t.interrupted = interrupted;
        let done = completed("u1", status, error);
        assert_eq!(
            t.on_notification("turn/completed", &done),
            Step::Ended(expected),
            "{status}"
        );
    }
}

#[test]
fn tool_items_open_and_close_and_dangling_ones_close_at_turn_end() {
    let mut t = turn("u1");
    let item = |id: &str, kind: &str| json!({"threadId": "t", "turnId": "u1", "item": {"type": kind, "id": id, "status": "completed"}});
    t.on_notification("item/started", &item("c1", "commandExecution"));
    t.on_notification("item/started", &item("f1", "fileChange"));
    t.on_notification("item/started", &item("r1", "reasoning"));
    assert_eq!(t.open_tools(), 2);
    t.on_notification("item/completed", &item("c1", "commandExecution"));
    assert_eq!(t.open_tools(), 1);
    t.on_notification(
        "turn/completed",
        &completed("u1", "interrupted", Value::Null),
    );
    assert_eq!(t.open_tools(), 0);
}

#[test]
fn token_usage_is_the_last_call() {
    let mut t = turn("u1");
    let usage = json!({"threadId": "t", "turnId": "u1", "tokenUsage": {
        "total": {"inputTokens": 99, "outputTokens": 99},
        "last": {"totalTokens": 15, "inputTokens": 10, "outputTokens": 5}}});
    t.on_notification("thread/tokenUsage/updated", &usage);
    assert_eq!(t.tokens, Some((10, 5)));
}
