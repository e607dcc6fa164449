//! agentirc's managed-room metadata, as a `ROOMINVITE` carries it (spec §5.7, §7.5):
//! `:<source> ROOMINVITE <#room> <nick> :requestor=<nick>;purpose=…;tags=a,b;instructions=…`.
//! `requestor` is there when a user asked for the invitation, absent when agentirc invites
//! on its own (the room's tags match the agent's).
//!
//! The `irc` actor reads the requestor from it; the runner renders it into Culture's
//! invitation prompt (re-exported as `runner::prompt::parse_room_meta`).

use std::collections::BTreeMap;

/// The key whose value runs to the end of the text (it may contain `;`).
const INSTRUCTIONS: &str = "instructions=";

/// Culture's `parse_room_meta` (agentirc `rooms_util.py`): `;`-separated `key=value` pairs,
/// keys and values trimmed, split at the first `=`, pieces without `=` skipped, a repeated
/// key keeps its last value. Everything after the **first** `instructions=` is the verbatim
/// `instructions` value; the part before it, with trailing `;` removed, is parsed as pairs.
///
/// | text                            | map                                      |
/// |---------------------------------|------------------------------------------|
/// | `""`                            | `{}`                                     |
/// | `"a=1;b=2;c=3"`                 | `{a: 1, b: 2, c: 3}`                     |
/// | `" a = 1 ; b = 2 "`             | `{a: 1, b: 2}`                           |
/// | `"a=1;justakey;b=2"`            | `{a: 1, b: 2}`                           |
/// | `"expr=a=b=c"`                  | `{expr: "a=b=c"}`                        |
/// | `"topic=t;;instructions=body"`  | `{topic: t, instructions: body}`         |
/// | `"instructions= x; y=1 "`       | `{instructions: " x; y=1 "}` (verbatim)  |
pub fn parse_room_meta(text: &str) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    let pairs = match text.split_once(INSTRUCTIONS) {
        Some((before, instructions)) => {
            meta.insert("instructions".to_owned(), instructions.to_owned());
            before.trim_end_matches(';')
        }
        None => text,
    };
    for piece in pairs.split(';') {
        if let Some((key, value)) = piece.trim().split_once('=') {
            meta.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parse_room_meta_spec_vectors() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("a=1;b=2;c=3", &[("a", "1"), ("b", "2"), ("c", "3")]),
            (" a = 1 ; b = 2 ", &[("a", "1"), ("b", "2")]),
            ("a=1;justakey;b=2", &[("a", "1"), ("b", "2")]),
            ("expr=a=b=c", &[("expr", "a=b=c")]),
            (
                "topic=t;;instructions=body",
                &[("topic", "t"), ("instructions", "body")],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_room_meta(text), map(expected), "text {text:?}");
        }
    }

    #[test]
    fn parse_room_meta_edge_cases() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("instructions= x; y=1 ", &[("instructions", " x; y=1 ")]),
            (
                "a=1;instructions=one;instructions=two",
                &[("a", "1"), ("instructions", "one;instructions=two")],
            ),
            ("a=1;a=2", &[("a", "2")]),
            ("=v;k=", &[("", "v"), ("k", "")]),
            ("#room", &[]),
            (
                "requestor=spark-ori;purpose=Ship it;tags=ops,rust;instructions=Be brief; use threads",
                &[
                    ("requestor", "spark-ori"),
                    ("purpose", "Ship it"),
                    ("tags", "ops,rust"),
                    ("instructions", "Be brief; use threads"),
                ],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_room_meta(text), map(expected), "text {text:?}");
        }
    }
}
