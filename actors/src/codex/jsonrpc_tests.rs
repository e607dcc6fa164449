use std::time::Duration;

use serde_json::json;

use super::*;

fn garbage(line: &[u8]) -> Malformed {
    match classify(line) {
        Incoming::Garbage { line: kept, error } => {
            assert_eq!(kept.as_bytes(), String::from_utf8_lossy(line).as_bytes());
            error
        }
        other => panic!(
            "{}: expected garbage, got {other:?}",
            String::from_utf8_lossy(line)
        ),
    }
}

#[test]
fn lines_are_classified_by_their_keys() {
    let int = RequestId::Int;
    let cases: Vec<(&str, Incoming)> = vec![
        (
            r#"{"id":0,"result":{"userAgent":"x"}}"#,
            Incoming::Response {
                id: int(0),
                outcome: Ok(json!({"userAgent": "x"})),
            },
        ),
        (
            r#"{"id":"a","result":null}"#,
            Incoming::Response {
                id: RequestId::Str("a".into()),
                outcome: Ok(Value::Null),
            },
        ),
        (
            r#"{"id":3,"error":{"code":-32600,"message":"Not initialized"}}"#,
            Incoming::Response {
                id: int(3),
                outcome: Err(RpcError {
                    code: INVALID_REQUEST,
                    message: "Not initialized".into(),
                    data: None,
                }),
            },
        ),
        (
            r#"{"id":4,"error":{"code":-32001,"message":"busy","data":[1]},"result":{}}"#,
            Incoming::Response {
                id: int(4),
                outcome: Err(RpcError {
                    code: SERVER_OVERLOADED,
                    message: "busy".into(),
                    data: Some(json!([1])),
                }),
            },
        ),
        (
            r#"{"id":5,"error":"boom"}"#,
            Incoming::Response {
                id: int(5),
                outcome: Err(RpcError {
                    code: 0,
                    message: "\"boom\"".into(),
                    data: None,
                }),
            },
        ),
        (
            r#"{"method":"turn/started","params":{"threadId":"t"},"emittedAtMs":1795265612000}"#,
            Incoming::Notification {
                method: "turn/started".into(),
                params: json!({"threadId": "t"}),
            },
        ),
        (
            r#"{"jsonrpc":"2.0","method":"initialized"}"#,
            Incoming::Notification {
                method: "initialized".into(),
                params: Value::Null,
            },
        ),
        (
            r#"{"method":"item/fileChange/requestApproval","id":0,"params":{"itemId":"c"}}"#,
            Incoming::ServerRequest {
                id: int(0),
                method: "item/fileChange/requestApproval".into(),
                params: json!({"itemId": "c"}),
            },
        ),
        (
            r#"{"id":-7,"method":"x/y"}"#,
            Incoming::ServerRequest {
                id: int(-7),
                method: "x/y".into(),
                params: Value::Null,
            },
        ),
    ];
    for (line, want) in cases {
        assert_eq!(classify(line.as_bytes()), want, "{line}");
    }
}

#[test]
fn garbage_is_classified_not_fatal() {
    let cases: &[(&[u8], Malformed)] = &[
        (b"[1,2]", Malformed::NotAnObject),
        (b"null", Malformed::NotAnObject),
        (b"\"text\"", Malformed::NotAnObject),
        (br#"{"method":7}"#, Malformed::BadMethod),
        (br#"{"id":null,"result":1}"#, Malformed::BadId),
        (br#"{"id":1.5,"result":1}"#, Malformed::BadId),
        (br#"{"id":{"n":1},"method":"m"}"#, Malformed::BadId),
        (
            br#"{"id":18446744073709551615,"result":1}"#,
            Malformed::BadId,
        ),
        (br#"{"id":1}"#, Malformed::NoOutcome),
        (br#"{"params":{}}"#, Malformed::NoKind),
        (b"{}", Malformed::NoKind),
    ];
    for (line, want) in cases {
        assert_eq!(&garbage(line), want, "{}", String::from_utf8_lossy(line));
    }
    for line in [
        &b""[..],
        b"not json at all",
        b"{\"id\":1,",
        b"{\"id\":1}{\"id\":2}",
        b"\xff\xfe{}",
        b"{\"method\":\"\xc3\x28\"}",
    ] {
        assert!(
            matches!(garbage(line), Malformed::NotJson(_)),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn a_ten_mib_line_is_classified_intact() {
    let delta = "x".repeat(10 * 1024 * 1024);
    let line = json!({"method": "item/agentMessage/delta", "params": {"delta": delta}}).to_string();
    let Incoming::Notification { method, params } = classify(line.as_bytes()) else {
        panic!("expected a notification");
    };
    assert_eq!(method, "item/agentMessage/delta");
    assert_eq!(
        params["delta"].as_str().map(str::len),
        Some(10 * 1024 * 1024)
    );

    let mut junk = line.into_bytes();
    junk.truncate(junk.len() - 1);
    assert!(matches!(garbage(&junk), Malformed::NotJson(_)));
}

#[test]
fn messages_encode_as_single_lines_without_jsonrpc() {
    let cases = vec![
        (
            Outgoing::Request {
                id: RequestId::Int(1),
                method: "thread/start".into(),
                params: Some(json!({"cwd": "/w", "developerInstructions": "a\nb"})),
            },
            r#"{"id":1,"method":"thread/start","params":{"cwd":"/w","developerInstructions":"a\nb"}}"#,
        ),
        (
            Outgoing::notification("initialized", None),
            r#"{"method":"initialized"}"#,
        ),
        (
            Outgoing::Response {
                id: RequestId::Int(0),
                outcome: Ok(json!({"decision": "accept"})),
            },
            r#"{"id":0,"result":{"decision":"accept"}}"#,
        ),
        (
            Outgoing::method_not_found(RequestId::Str("s1".into()), "item/tool/call"),
            r#"{"id":"s1","error":{"code":-32601,"message":"unsupported by this client: item/tool/call"}}"#,
        ),
        (
            Outgoing::Response {
                id: RequestId::Int(2),
                outcome: Err(RpcError {
                    code: -1,
                    message: "m".into(),
                    data: Some(json!({"k": 1})),
                }),
            },
            r#"{"id":2,"error":{"code":-1,"message":"m","data":{"k":1}}}"#,
        ),
    ];
    for (message, want) in cases {
        let line = message.encode();
        assert_eq!(line, want);
        assert!(!line.contains('\n'));
    }
}

#[test]
fn an_encoded_response_classifies_back() {
    let reply = Outgoing::method_not_found(RequestId::Int(9), "attestation/generate");
    let Incoming::Response { id, outcome } = classify(reply.encode().as_bytes()) else {
        panic!("expected a response");
    };
    assert_eq!(id, RequestId::Int(9));
    assert_eq!(outcome.map_err(|e| e.code), Err(METHOD_NOT_FOUND));
}

#[test]
fn outstanding_ids_increase_and_resolve_once() {
    let now = Instant::now();
    let mut outstanding = Outstanding::new();
    let first = outstanding.start("initialize", None, now, "a");
    let second = outstanding.start("thread/start", Some(json!({})), now, "b");
    assert_eq!(first.id(), Some(&RequestId::Int(1)));
    assert_eq!(second.id(), Some(&RequestId::Int(2)));
    assert_eq!(outstanding.len(), 2);

    let pending = outstanding.resolve(&RequestId::Int(2)).expect("pending");
    assert_eq!(
        (pending.method.as_str(), pending.waiter),
        ("thread/start", "b")
    );
    assert!(outstanding.resolve(&RequestId::Int(2)).is_none());
    assert!(outstanding.resolve(&RequestId::Str("1".into())).is_none());
    assert!(outstanding.resolve(&RequestId::Int(7)).is_none());

    let third = outstanding.start("turn/start", None, now, "c");
    assert_eq!(third.id(), Some(&RequestId::Int(3)), "ids are never reused");
}

#[test]
fn outstanding_expires_by_deadline_and_drains_in_order() {
    let now = Instant::now();
    let s = Duration::from_secs;
    let mut outstanding = Outstanding::new();
    outstanding.start("a", None, now + s(30), 'a');
    outstanding.start("b", None, now + s(10), 'b');
    outstanding.start("c", None, now + s(10), 'c');
    outstanding.start("d", None, now + s(60), 'd');
    assert_eq!(outstanding.next_deadline(), Some(now + s(10)));

    assert!(outstanding.expire(now + s(9)).is_empty());
    let expired: Vec<_> = outstanding
        .expire(now + s(30))
        .into_iter()
        .map(|(id, p)| (id, p.waiter))
        .collect();
    assert_eq!(
        expired,
        vec![
            (RequestId::Int(1), 'a'),
            (RequestId::Int(2), 'b'),
            (RequestId::Int(3), 'c')
        ]
    );
    assert_eq!(outstanding.next_deadline(), Some(now + s(60)));

    let drained: Vec<_> = outstanding
        .drain()
        .into_iter()
        .map(|(id, p)| (id, p.waiter))
        .collect();
    assert_eq!(drained, vec![(RequestId::Int(4), 'd')]);
    assert!(outstanding.is_empty());
    assert_eq!(outstanding.next_deadline(), None);
}
