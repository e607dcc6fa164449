//! Mention detection: does a channel message address this agent?
//!
//! An agent answers to `@<nick>` and, when the nick contains `-`, to `@<short>` where
//! `short` is the part after the first `-` (`spark-codex` answers to `@spark-codex` and
//! `@codex`). A mention must stand alone: the `@` starts the text or follows a character that
//! cannot be part of a nick, and the name ends the text or is followed by such a character.
//!
//! | text (nick `spark-codex`) | mention | why                                   |
//! |---------------------------|---------|---------------------------------------|
//! | `@codex, hi`              | yes     | `,` is not a nick character           |
//! | `(@codex)`                | yes     | `(` before `@` is not a nick character |
//! | `@Codex`                  | yes     | case-insensitive                      |
//! | `@codex-helper`           | no      | `-` continues a nick                  |
//! | `@codexy`                 | no      | `y` continues a nick                  |
//! | `mail user@codex.example` | no      | `r` before `@` is a nick character    |
//!
//! Divergences from upstream (spec §5.4, §19): upstream searches `@<nick>\b`, a regex word
//! boundary, so `@codex-helper` mentions `spark-codex` and `user@codex.example` mentions
//! `codex`; here both boundaries use IRC nick characters instead. Upstream also compares
//! case-sensitively; IRC nicks are case-insensitive, so matching here ignores ASCII case.

use super::text;

/// The names one agent answers to, compiled from its nick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mentions {
    /// The agent's nick as configured.
    nick: String,
    /// The names after `@` that address the agent: the nick, then its short form if any.
    names: Vec<String>,
}

impl Mentions {
    /// The mention matcher for `nick`: `@<nick>`, plus `@<short>` for a nick with a `-`.
    pub fn new(nick: &str) -> Self {
        let mut names = Vec::new();
        if !nick.is_empty() {
            names.push(nick.to_owned());
        }
        if let Some((_, short)) = nick.split_once('-') {
            if !short.is_empty() {
                names.push(short.to_owned());
            }
        }
        Self {
            nick: nick.to_owned(),
            names,
        }
    }

    /// The nick this matcher was built for.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// Whether any `@` in `text` starts a standalone mention of one of our names (see the
    /// module table).
    pub fn is_mention(&self, text: &str) -> bool {
        text.match_indices('@')
            .filter(|&(at, _)| !ends_with_nick_char(&text[..at]))
            .any(|(at, _)| self.names_lead(&text[at + 1..]))
    }

    /// Whether `after` (the text following an `@`) starts with one of our names followed by
    /// the end of the text or a non-nick character.
    fn names_lead(&self, after: &str) -> bool {
        self.names.iter().any(|name| {
            after
                .get(..name.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(name))
                && !starts_with_nick_char(&after[name.len()..])
        })
    }
}

/// Whether `c` may appear in an IRC nick: ASCII letters and digits and ``- _ [ ] \ ` ^ { } |``.
fn is_nick_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_[]\\`^{}|".contains(c)
}

/// Whether `text` is a well-formed nick (RFC 2812 §2.3.1): nick characters only, not starting
/// with a digit or `-`, and safe as an IRC parameter ([`text::check_param`]: at most 200
/// bytes).
///
/// | text            | nick |
/// |-----------------|------|
/// | `spark-ori`     | yes  |
/// | `[bot]_2`       | yes  |
/// | `""`            | no   |
/// | `2fast`, `-x`   | no   |
/// | `a b`, `#room`, `ori!u@h` | no |
pub fn is_nick(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    !first.is_ascii_digit()
        && first != '-'
        && text.chars().all(is_nick_char)
        && text::check_param("nick", text).is_ok()
}

/// Whether the last character of `text` is a nick character.
fn ends_with_nick_char(text: &str) -> bool {
    text.chars().next_back().is_some_and(is_nick_char)
}

/// Whether the first character of `text` is a nick character.
fn starts_with_nick_char(text: &str) -> bool {
    text.chars().next().is_some_and(is_nick_char)
}

/// Whether `c` matches the regex class `[\w-]` (`\w` as Python's Unicode word character).
fn is_word_or_dash(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Every `@([\w-]+)` match in `text`, in order, duplicates kept, as upstream collects them
/// for "Mentioned nick not found" warnings (spec §7.8). E-mail addresses match too.
///
/// | text                        | nicks                 |
/// |-----------------------------|-----------------------|
/// | `@bob and @alice-2, hi`     | `bob`, `alice-2`      |
/// | `mail me@host.org`          | `host`                |
/// | `@ alone, @@x, @bob @bob`   | `x`, `bob`, `bob`     |
/// | `@Ünïcode_1`                | `Ünïcode_1`           |
pub fn mentioned_nicks(text: &str) -> Vec<&str> {
    let mut nicks = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let after = &rest[at + 1..];
        let len = after
            .find(|c: char| !is_word_or_dash(c))
            .unwrap_or(after.len());
        if len > 0 {
            nicks.push(&after[..len]);
        }
        rest = &after[len..];
    }
    nicks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_mention_table() {
        let cases = [
            ("spark-codex", "@spark-codex hi", true),
            ("spark-codex", "@codex hi", true),
            ("spark-codex", "hey @codex", true),
            ("spark-codex", "@Codex", true),
            ("spark-codex", "@SPARK-CODEX", true),
            ("spark-codex", "@codex-helper", false),
            ("spark-codex", "@codexy", false),
            ("spark-codex", "x@codex", false),
            ("spark-codex", "mail user@codex.example", false),
            ("spark-codex", "(@codex)", true),
            ("spark-codex", "@codex,", true),
            ("spark-codex", "@codex?", true),
            ("spark-codex", "@codex:", true),
            ("spark-codex", "@codex.", true),
            ("spark-codex", "@codex)", true),
            ("spark-codex", "@spark-codex:", true),
            ("spark-codex", "@spark", false),
            ("spark-codex", "codex", false),
            ("spark-codex", "spark-codex", false),
            ("spark-codex", "@spark-codex-2", false),
            ("spark-codex", "@codex_", false),
            ("spark-codex", "@codex|away", false),
            ("spark-codex", "@codexé", true),
            ("spark-codex", "é@codex", true),
            ("spark-codex", "x@codex then @codex", true),
            ("spark-codex", "@codexy @codex-x @codex", true),
            ("spark-codex", "@", false),
            ("spark-codex", "", false),
            ("bot", "@bot", true),
            ("bot", "@bo", false),
            ("bot", "@bot!", true),
            ("bot", "@bots", false),
            ("a-b-c", "@b-c", true),
            ("a-b-c", "@b", false),
            ("trailing-", "@trailing-", true),
            ("trailing-", "@ hi", false),
            ("", "@ hi", false),
        ];
        for (nick, text, expected) in cases {
            let mentions = Mentions::new(nick);
            assert_eq!(
                mentions.is_mention(text),
                expected,
                "nick {nick:?}, text {text:?}"
            );
        }
    }

    #[test]
    fn is_nick_table() {
        let long = "a".repeat(201);
        let cases = [
            ("spark-ori", true),
            ("[bot]_2", true),
            ("a", true),
            ("", false),
            ("2fast", false),
            ("-x", false),
            ("a b", false),
            ("#room", false),
            ("ori!u@h", false),
            ("spark.example", false),
            ("é", false),
            ("a\r\nQUIT", false),
            (long.as_str(), false),
        ];
        for (text, expected) in cases {
            assert_eq!(is_nick(text), expected, "text {text:?}");
        }
    }

    #[test]
    fn nick_is_kept_as_given() {
        assert_eq!(Mentions::new("Spark-Codex").nick(), "Spark-Codex");
    }

    #[test]
    fn mentioned_nicks_table() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("no mentions here", &[]),
            ("@bob and @alice-2, hi", &["bob", "alice-2"]),
            ("mail me@host.org", &["host"]),
            ("@ alone, @@x, @bob @bob", &["x", "bob", "bob"]),
            ("@Ünïcode_1", &["Ünïcode_1"]),
            ("@codex-helper", &["codex-helper"]),
            ("trailing @", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(&mentioned_nicks(text), expected, "text {text:?}");
        }
    }
}
