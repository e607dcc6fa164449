use serde_json::json;

use super::*;

fn request(line: &str) -> Request {
    match parse(line.as_bytes()) {
        Parsed::Request(request) => request,
        other => panic!("{line}: expected a request, got {other:?}"),
    }
}

fn rejected(line: &str) -> String {
    match parse(line.as_bytes()) {
        Parsed::Reject(response) => String::from_utf8(encode_line(&response)).expect("utf8"),
        other => panic!("{line}: expected a rejection, got {other:?}"),
    }
}

#[test]
fn every_verb_parses_with_its_fields() {
    let cases: &[(&str, Verb)] = &[
        (
            r##"{"type":"irc_send","channel":"#g","message":"hi"}"##,
            Verb::IrcSend {
                channel: "#g".into(),
                message: "hi".into(),
            },
        ),
        (
            r#"{"type":"irc_read","channel":"DM:bob"}"#,
            Verb::IrcRead {
                channel: "DM:bob".into(),
                limit: 50,
            },
        ),
        (
            r##"{"type":"irc_read","channel":"#g","limit":"7"}"##,
            Verb::IrcRead {
                channel: "#g".into(),
                limit: 7,
            },
        ),
        (
            r##"{"type":"irc_join","channel":"#g"}"##,
            Verb::IrcJoin {
                channel: "#g".into(),
            },
        ),
        (
            r##"{"type":"irc_part","channel":"#g"}"##,
            Verb::IrcPart {
                channel: "#g".into(),
            },
        ),
        (r#"{"type":"irc_channels"}"#, Verb::IrcChannels),
        (
            r##"{"type":"irc_who","target":"#g"}"##,
            Verb::IrcWho {
                target: "#g".into(),
            },
        ),
        (
            r##"{"type":"irc_topic","channel":"#g"}"##,
            Verb::IrcTopic {
                channel: "#g".into(),
                topic: None,
            },
        ),
        (
            r##"{"type":"irc_topic","channel":"#g","topic":""}"##,
            Verb::IrcTopic {
                channel: "#g".into(),
                topic: Some(String::new()),
            },
        ),
        (
            r##"{"type":"irc_ask","channel":"#g","message":"q?","timeout":30}"##,
            Verb::IrcAsk {
                channel: "#g".into(),
                message: "q?".into(),
            },
        ),
        (
            r##"{"type":"irc_thread_create","channel":"#g","thread":"t","message":"m"}"##,
            Verb::ThreadCreate {
                channel: "#g".into(),
                thread: "t".into(),
                message: "m".into(),
            },
        ),
        (
            r##"{"type":"irc_thread_reply","channel":"#g","thread":"t","message":"m"}"##,
            Verb::ThreadReply {
                channel: "#g".into(),
                thread: "t".into(),
                message: "m".into(),
            },
        ),
        (
            r##"{"type":"irc_threads","channel":"#g"}"##,
            Verb::Threads {
                channel: "#g".into(),
            },
        ),
        (
            r##"{"type":"irc_thread_close","channel":"#g","thread":"t"}"##,
            Verb::ThreadClose {
                channel: "#g".into(),
                thread: "t".into(),
                summary: String::new(),
            },
        ),
        (
            r##"{"type":"irc_thread_read","channel":"#g","thread":"t","limit":3}"##,
            Verb::ThreadRead {
                channel: "#g".into(),
                thread: "t".into(),
                limit: 3,
            },
        ),
        (
            r#"{"type":"compact"}"#,
            Verb::Compact { conversation: None },
        ),
        (r#"{"type":"clear"}"#, Verb::Clear { conversation: None }),
        (
            r##"{"type":"clear","conversation":"DM:spark-ori"}"##,
            Verb::Clear {
                conversation: Some("DM:spark-ori".into()),
            },
        ),
        (r#"{"type":"status"}"#, Verb::Status { query: false }),
        (
            r#"{"type":"status","query":true}"#,
            Verb::Status { query: true },
        ),
        (r#"{"type":"pause"}"#, Verb::Pause),
        (r#"{"type":"resume"}"#, Verb::Resume),
        (r#"{"type":"shutdown"}"#, Verb::Shutdown),
    ];
    for (line, verb) in cases {
        assert_eq!(&request(line).verb, verb, "{line}");
    }
}

#[test]
fn the_id_is_echoed_verbatim_and_defaults_to_empty() {
    assert_eq!(request(r#"{"type":"pause","id":"abc"}"#).id, json!("abc"));
    assert_eq!(request(r#"{"type":"pause","id":7}"#).id, json!(7));
    assert_eq!(request(r#"{"type":"pause"}"#).id, json!(""));
}

#[test]
fn culture_error_strings_are_exact() {
    let cases = [
        (
            r#"{"type":"irc_send","id":"1","message":"x"}"#,
            "Missing 'channel'",
        ),
        (
            r##"{"type":"irc_send","id":"1","channel":"#g","message":"  \t"}"##,
            "Missing 'message'",
        ),
        (
            r##"{"type":"irc_send","id":"1","channel":"#g"}"##,
            "Missing 'message'",
        ),
        (r#"{"type":"irc_read","id":"1"}"#, "Missing 'channel'"),
        (
            r#"{"type":"irc_join","id":"1","channel":"g"}"#,
            "Channel name must start with '#'",
        ),
        (r#"{"type":"irc_part","id":"1"}"#, "Missing 'channel'"),
        (
            r#"{"type":"irc_topic","id":"1","channel":"g"}"#,
            "Channel name must start with '#'",
        ),
        (
            r#"{"type":"irc_who","id":"1","target":""}"#,
            "Missing 'target'",
        ),
        (
            r##"{"type":"irc_ask","id":"1","channel":"#g"}"##,
            "Missing 'message'",
        ),
        (
            r##"{"type":"irc_thread_create","id":"1","channel":"#g","message":"m"}"##,
            "Missing 'channel', 'thread', or 'message'",
        ),
        (
            r##"{"type":"irc_thread_close","id":"1","channel":"#g"}"##,
            "Missing 'channel' or 'thread'",
        ),
        (
            r#"{"type":"irc_thread_read","id":"1","thread":"t"}"#,
            "Missing 'channel' or 'thread'",
        ),
        (
            r#"{"type":"bogus","id":"1"}"#,
            "Unknown message type: 'bogus'",
        ),
        (r#"{"id":"1"}"#, "Unknown message type: ''"),
        (
            r#"{"type":"it's","id":"1"}"#,
            "Unknown message type: \"it's\"",
        ),
        (r#"{"type":5,"id":"1"}"#, "Unknown message type: 5"),
    ];
    for (line, error) in cases {
        let expected = format!(
            "{{\"type\":\"response\",\"id\":\"1\",\"ok\":false,\"error\":{}}}\n",
            serde_json::to_string(error).expect("json")
        );
        assert_eq!(rejected(line), expected, "{line}");
    }
}

#[test]
fn wrong_types_get_errors_naming_the_field() {
    let cases = [
        (
            r#"{"type":"irc_send","channel":5,"message":"x"}"#,
            "'channel' must be a string, got a number",
        ),
        (
            r##"{"type":"irc_send","channel":"#g","message":["x"]}"##,
            "'message' must be a string, got an array",
        ),
        (
            r##"{"type":"irc_read","channel":"#g","limit":"x"}"##,
            "'limit' must be a positive integer, got \"x\"",
        ),
        (
            r##"{"type":"irc_read","channel":"#g","limit":0}"##,
            "'limit' must be a positive integer, got 0",
        ),
        (
            r##"{"type":"irc_read","channel":"#g","limit":-3}"##,
            "'limit' must be a positive integer, got -3",
        ),
        (
            r##"{"type":"irc_topic","channel":"#g","topic":1}"##,
            "'topic' must be a string, got a number",
        ),
        (
            r#"{"type":"status","query":"yes"}"#,
            "'query' must be true or false, got \"yes\"",
        ),
    ];
    for (line, error) in cases {
        let answer = rejected(line);
        assert!(
            answer.contains(&serde_json::to_string(error).expect("json")),
            "{line} → {answer}"
        );
        assert!(answer.contains("\"ok\":false"), "{answer}");
    }
}

#[test]
fn blank_and_null_lines_are_ignored_and_garbage_is_answered() {
    assert_eq!(parse(b""), Parsed::Ignore);
    assert_eq!(parse(b"  \r"), Parsed::Ignore);
    assert_eq!(parse(b"null"), Parsed::Ignore);
    assert!(
        rejected("{not json")
            .starts_with(r#"{"type":"response","id":"","ok":false,"error":"invalid JSON: "#)
    );
    assert_eq!(
        rejected("[1]"),
        "{\"type\":\"response\",\"id\":\"\",\"ok\":false,\"error\":\"request must be a JSON object, got an array\"}\n"
    );
    assert!(rejected("\"text\"").contains("got a string"));
}

#[test]
fn output_is_compact_ascii_like_python_json_dumps() {
    let response = Response::ok(json!("i"), Some(json!({"text": "héllo 🎉", "n": 1.5})));
    assert_eq!(
        String::from_utf8(encode_line(&response)).expect("ascii"),
        "{\"type\":\"response\",\"id\":\"i\",\"ok\":true,\"data\":{\"text\":\"h\\u00e9llo \\ud83c\\udf89\",\"n\":1.5}}\n"
    );
    let warned =
        Response::ok(json!("w"), None).with_warnings(vec!["Mentioned nick not found: x".into()]);
    assert_eq!(
        String::from_utf8(encode_line(&warned)).expect("ascii"),
        "{\"type\":\"response\",\"id\":\"w\",\"ok\":true,\"warnings\":[\"Mentioned nick not found: x\"]}\n"
    );
    let whisper = WhisperLine {
        kind: "whisper",
        message: "look again",
        whisper_type: "CORRECTION",
    };
    assert_eq!(
        String::from_utf8(encode_line(&whisper)).expect("ascii"),
        "{\"type\":\"whisper\",\"message\":\"look again\",\"whisper_type\":\"CORRECTION\"}\n"
    );
}
