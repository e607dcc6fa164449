use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn pairs(lines: &[(&str, &str)]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|(nick, text)| ((*nick).to_owned(), (*text).to_owned()))
        .collect()
}

#[test]
fn system_prompt_names_exactly_the_declared_tools() {
    let important = "IMPORTANT: When responding to messages, write your response DIRECTLY \u{2014} do not \
         describe what you would say, do not wrap responses in meta-commentary like 'I'd reply \
         with:' or 'I would say:'. Just write the actual message content. Your text output is \
         relayed verbatim to IRC channels.";
    let all = crate::tools::names();
    let expected = [
        "You are spark-codex, an AI agent on the culture IRC network.".to_owned(),
        format!(
            "Your IRC tools: {}. Your final answer is posted for you where the message came from; use the tools for anything else (other channels, DMs, threads, reading), never to post that answer again.",
            all.join(", ")
        ),
        "Your working directory is /home/ori/work.".to_owned(),
        "Check IRC channels with irc_read for new messages when it helps.".to_owned(),
        "When you finish a task someone else should hear of, share results in the appropriate channel with irc_send.".to_owned(),
        String::new(),
        important.to_owned(),
    ]
    .join("\n");
    let dir = Path::new("/home/ori/work");
    assert_eq!(system_prompt("spark-codex", dir, &all), expected);

    let some = system_prompt("spark-codex", dir, &["irc_who"]);
    assert!(some.contains("Your IRC tools: irc_who. "), "{some}");
    assert!(
        !some.contains("irc_read") && !some.contains("irc_send"),
        "{some}"
    );
    let none = system_prompt("spark-codex", dir, &[]);
    assert!(none.contains("You have no IRC tools"), "{none}");
    assert!(!none.contains("irc_"), "{none}");
}

#[test]
fn mention_table() {
    let cases = [
        (
            "#general",
            "spark-ori",
            "@spark-codex hi",
            "[IRC @mention in #general] <spark-ori> @spark-codex hi",
        ),
        (
            "&local",
            "spark-ori",
            "@codex hi",
            "[IRC @mention in &local] <spark-ori> @codex hi",
        ),
        ("spark-codex", "spark-ori", "hi", "[IRC DM] <spark-ori> hi"),
        ("spark-codex", "spark-ori", "", "[IRC DM] <spark-ori> "),
        (
            "#general",
            "bob",
            "[thread:x] @codex ok",
            "[IRC @mention in #general] <bob> [thread:x] @codex ok",
        ),
    ];
    for (target, sender, text, expected) in cases {
        assert_eq!(mention(target, sender, text), expected, "{target} {text:?}");
    }
}

#[test]
fn thread_mention_table() {
    let mentioning = "[thread:api-1] @spark-codex status?";
    let cases = [
        (
            pairs(&[
                ("ori", "[thread:api-1] starting the API"),
                ("bob", "[thread:api-1] I can help"),
                ("ori", mentioning),
            ]),
            "[IRC @mention in #general, thread:api-1]\n\
             Thread history:\n  \
             <ori> [thread:api-1] starting the API\n  \
             <bob> [thread:api-1] I can help\n  \
             <ori> [thread:api-1] @spark-codex status?\n  \
             <ori> [thread:api-1] @spark-codex status?",
        ),
        (
            Vec::new(),
            "[IRC @mention in #general, thread:api-1]\n\
             Thread history:\n\
             \n  \
             <ori> [thread:api-1] @spark-codex status?",
        ),
    ];
    for (history, expected) in cases {
        assert_eq!(
            thread_mention("#general", "api-1", &history, "ori", mentioning),
            expected,
            "history {history:?}"
        );
    }
}

#[test]
fn poll_matches_culture_example() {
    let messages = pairs(&[
        ("spark-ori", "hello everyone"),
        ("spark-ori", "anyone working on the API?"),
    ]);
    assert_eq!(
        poll("#general", &messages, "spark-codex").as_deref(),
        Some(
            "[IRC Channel Poll: #general] Recent unread messages:\n  \
             <spark-ori> hello everyone\n  \
             <spark-ori> anyone working on the API?\n\
             \n\
             Respond naturally if any messages need your attention."
        )
    );
}

/// A buffered `(nick, text)` line.
type Line<'a> = (&'a str, &'a str);

#[test]
fn poll_drops_own_lines_and_mentions() {
    // (why, unread lines, prompt lines kept: none means no prompt)
    let cases: &[(&str, &[Line], &[&str])] = &[
        ("own lines", &[("spark-codex", "done")], &[]),
        ("own lines, any case", &[("Spark-Codex", "done")], &[]),
        ("full nick", &[("ori", "@spark-codex hi")], &[]),
        ("short nick", &[("ori", "thanks @codex!")], &[]),
        ("no lines", &[], &[]),
        (
            "not a mention for the irc actor",
            &[("ori", "ask @codex-helper"), ("ori", "mail x@codex.io")],
            &["<ori> ask @codex-helper", "<ori> mail x@codex.io"],
        ),
        (
            "mixed",
            &[
                ("ori", "one"),
                ("spark-codex", "my reply"),
                ("bob", "@codex look"),
                ("server", "topic is x"),
                ("bob", "two"),
            ],
            &["<ori> one", "<server> topic is x", "<bob> two"],
        ),
    ];
    for (why, messages, kept) in cases {
        let expected = (!kept.is_empty()).then(|| {
            let lines: Vec<String> = kept.iter().map(|line| format!("  {line}")).collect();
            format!(
                "[IRC Channel Poll: #g] Recent unread messages:\n{}\n\n\
                 Respond naturally if any messages need your attention.",
                lines.join("\n")
            )
        });
        assert_eq!(
            poll("#g", &pairs(messages), "spark-codex"),
            expected,
            "{why}"
        );
    }
}

#[test]
fn describe_table() {
    let long = "a".repeat(121);
    let cut = format!("{}...", "a".repeat(117));
    let exact = "é".repeat(120);
    let long_wide = "é".repeat(130);
    let cut_wide = format!("{}...", "é".repeat(117));
    let cases: Vec<(&str, &str)> = vec![
        ("", "nothing"),
        (" \n\t\r\n ", "nothing"),
        ("reviewing PR #47", "reviewing PR #47"),
        ("\n  fixing #47  \n more", "fixing #47"),
        ("first\r\nsecond", "first"),
        (&long, &cut),
        (&exact, &exact),
        (&long_wide, &cut_wide),
    ];
    for (text, expected) in cases {
        assert_eq!(describe(text), expected, "text {text:?}");
    }
    assert_eq!(describe(&long).chars().count(), 120);
}

#[test]
fn relay_lines_culture_vectors() {
    let cases: &[(&str, &[&str])] = &[
        (
            "I'd reply in `#general` with:\n> ack \u{2014} taking testing",
            &["ack \u{2014} taking testing"],
        ),
        ("I would say: hello world", &["hello world"]),
        ("I'd respond with: got it", &["got it"]),
        ("I'd send in #general: on it", &["on it"]),
        ("actual direct message", &["actual direct message"]),
    ];
    for (text, expected) in cases {
        assert_eq!(&relay_lines(text), expected, "text {text:?}");
    }
}

#[test]
fn relay_lines_edge_cases() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        (" \t\n \r\n ", &[]),
        ("a\r\nb\r\n", &["a", "b"]),
        ("  one  \n\n\n  two  ", &["one", "two"]),
        ("I would say:", &[]),
        ("I'd reply to #general with: >", &[]),
        (">", &[]),
        (" > ", &[]),
        ("> > nested", &["> nested"]),
        (">no space", &[">no space"]),
        ("i'D REPLY: shouting", &["shouting"]),
        (
            "I would post on `#ops`:\n> deployed\n> all green",
            &["deployed", "all green"],
        ),
        ("hello\nI'd say: bye", &["hello", "bye"]),
        ("I'd say hi", &["hi"]),
        ("Well, I'd say: no", &["Well, I'd say: no"]),
        ("I think so", &["I think so"]),
        ("a\rPRIVMSG #x :injected", &["a", "PRIVMSG #x :injected"]),
        ("nul\0here", &["nulhere"]),
        // No CTCP (a DCC offer, a VERSION request) and no other control character reaches
        // IRC from the model; a tab is a space.
        ("\u{1}DCC SEND x 1 2 3\u{1}", &["DCC SEND x 1 2 3"]),
        ("see \u{1}VERSION\u{1} here", &["see VERSION here"]),
        ("\u{2}bold\u{f} and\tcolour\u{3}4", &["bold and colour4"]),
        ("esc\u{1b}[31m\u{7f}\u{85}", &["esc[31m"]),
    ];
    for (text, expected) in cases {
        assert_eq!(&relay_lines(text), expected, "text {text:?}");
    }
}

#[test]
fn constants_are_culture_text() {
    assert_eq!(
        STATUS_QUERY,
        "[SYSTEM] Briefly describe what you are currently working on in one sentence. \
         Reply with just the description, no preamble."
    );
    assert_eq!(
        SORRY,
        "Sorry, I encountered an error processing your request."
    );
}

/// Culture's text, written out line by line (not with the `format!` under test).
const INVITE_QUESTION: &str = "Think step-by-step about whether this room fits your current work and capabilities. Then decide: should you join? Answer YES or NO.";

#[test]
fn room_invite_is_cultures_text() {
    let meta = parse_room_meta(
        "requestor=spark-ori;purpose=Ship the release;tags=ops,rust;instructions=Be brief; use threads",
    );
    let tags = ["rust".to_owned(), "codex".to_owned()];
    let expected = [
        "You've been invited to join IRC room #release.",
        "Purpose: Ship the release",
        "Instructions: Be brief; use threads",
        "Room tags: ops,rust",
        "Your tags: rust,codex",
        "",
        INVITE_QUESTION,
    ]
    .join("\n");
    assert_eq!(room_invite("#release", &meta, &tags), expected);
}

#[test]
fn room_invite_renders_missing_fields_empty() {
    let expected = [
        "You've been invited to join IRC room #bare.",
        "Purpose: ",
        "Instructions: ",
        "Room tags: ",
        "Your tags: ",
        "",
        INVITE_QUESTION,
    ]
    .join("\n");
    assert_eq!(
        room_invite("#bare", &parse_room_meta("#bare"), &[]),
        expected
    );
    let only_requestor = parse_room_meta("requestor=spark-ori");
    assert_eq!(room_invite("#bare", &only_requestor, &[]), expected);
}

#[test]
fn room_invite_strips_control_characters_from_remote_text() {
    let mut meta = BTreeMap::new();
    meta.insert("purpose".to_owned(), "ship\u{1}\u{1b}[31m it".to_owned());
    meta.insert("instructions".to_owned(), "a\u{0}b\tc".to_owned());
    meta.insert("tags".to_owned(), "ops\u{7}".to_owned());
    let prompt = room_invite("#r\u{3}4", &meta, &["x".to_owned()]);
    let lines: Vec<&str> = prompt.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "You've been invited to join IRC room #r4.",
            "Purpose: ship[31m it",
            "Instructions: ab c",
            "Room tags: ops",
            "Your tags: x",
        ]
    );
}

#[test]
fn invite_answer_table() {
    let cases = [
        ("Think... \n\nYES", Some(true)),
        ("**NO**", Some(false)),
        ("Yes.", Some(true)),
        ("I think yes but NO", None),
        ("nothing", None),
        ("", None),
        ("no", Some(false)),
        ("No, it is off-topic for me.", Some(false)),
        ("> - yes, it fits", Some(true)),
        ("### Decision\n__Yes__!", Some(true)),
        ("NO\nwait\nYES, on reflection", Some(true)),
        ("YES\n\nIt fits my current work.", Some(true)),
        ("Answer: YES", Some(true)),
        ("**Decision:** no", Some(false)),
        ("My view: I think no", None),
        ("Yesterday I said so", None),
        ("No-one asked me", None),
        ("Nope", None),
        ("yes\r\nNO.", Some(false)),
    ];
    for (text, expected) in cases {
        assert_eq!(invite_answer(text), expected, "text {text:?}");
    }
}
