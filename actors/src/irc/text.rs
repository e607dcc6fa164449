//! Outbound text safety: every value that ends up on an IRC line passes through here.
//!
//! Upstream interpolates IPC-supplied targets, channels, thread names and topics into raw
//! lines unchecked, so `"#a\r\nPRIVMSG x :y"` injects a command (spec §5.5, DEFECT 5.5-a),
//! and it sends over-long lines as they are (§19 item 17). The port validates fields and
//! splits text:
//!
//! | value                                   | function          | rejected                                   |
//! |-----------------------------------------|-------------------|--------------------------------------------|
//! | middle parameter (target, nick, thread) | [`check_param`]   | empty, CR/LF/NUL, whitespace, leading `:`, > 200 bytes |
//! | channel name                            | [`check_channel`] | as above, plus no `#`/`&` prefix, `,`, BEL |
//! | trailing parameter (topic, reason)      | [`check_trailing`]| CR/LF/NUL                                   |
//! | message text                            | [`lines`], then [`split_to_fit`] | nothing: split, never rejected |
//!
//! Length budget of a relayed line (`:<mask> <verb> <target> :<text>\r\n` ≤ 512 bytes):
//! [`privmsg_budget`], with [`assumed_mask_len`] until the server reveals our real mask.

use std::borrow::Cow;

/// The longest IRC line in bytes, CR LF included, IRCv3 tags excluded (RFC 1459 §2.3).
pub const IRC_LINE_MAX: usize = 512;

/// The longest middle parameter [`check_param`] accepts, in bytes.
const PARAM_MAX: usize = 200;

/// The smallest text budget [`privmsg_budget`] returns, however long the prefix.
const MIN_BUDGET: usize = 16;

/// USERLEN assumed by [`assumed_mask_len`] (a common ircd default).
const ASSUMED_USERLEN: usize = 10;

/// HOSTLEN assumed by [`assumed_mask_len`] (RFC 1035's longest host label set, ircd default).
const ASSUMED_HOSTLEN: usize = 63;

/// Why a field cannot be put on an IRC line. `field` names the offending input (for example
/// `"channel"` or `"target"`) so the IPC error tells the client which argument was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The value is empty where IRC needs a parameter.
    #[error("{field} is empty")]
    Empty {
        /// The name of the field.
        field: &'static str,
    },
    /// The value contains a character that would end the line or the parameter list
    /// (CR, LF, NUL; in channels also `,` and BEL).
    #[error("{field} contains a forbidden character {found:?}")]
    Forbidden {
        /// The name of the field.
        field: &'static str,
        /// The first forbidden character found.
        found: char,
    },
    /// A middle parameter contains whitespace, which would shift the parameters after it.
    #[error("{field} must not contain spaces")]
    Space {
        /// The name of the field.
        field: &'static str,
    },
    /// A middle parameter starts with `:`, which would turn it into the trailing parameter.
    #[error("{field} must not start with ':'")]
    LeadingColon {
        /// The name of the field.
        field: &'static str,
    },
    /// A channel name does not start with `#` or `&`.
    #[error("{field} must start with '#' or '&': {value:?}")]
    NotAChannel {
        /// The name of the field.
        field: &'static str,
        /// The rejected value.
        value: String,
    },
    /// The value is longer than `max` bytes.
    #[error("{field} is longer than {max} bytes")]
    TooLong {
        /// The name of the field.
        field: &'static str,
        /// The limit in bytes.
        max: usize,
    },
}

/// Checks a middle parameter: a target, channel, nick, thread name or WHO target.
///
/// | value          | result                  |
/// |----------------|-------------------------|
/// | `""`           | [`FieldError::Empty`]   |
/// | `"a\rb"`       | [`FieldError::Forbidden`] (`\r`, `\n` and `\0` alike) |
/// | `"a b"`        | [`FieldError::Space`] (any Unicode whitespace) |
/// | `":a"`         | [`FieldError::LeadingColon`] |
/// | 201 bytes      | [`FieldError::TooLong`] |
/// | `"a,b"`, `"#c"`| `Ok` (`,` separates TAGS lists) |
pub fn check_param(field: &'static str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::Empty { field });
    }
    check_trailing(field, value)?;
    if value.chars().any(char::is_whitespace) {
        return Err(FieldError::Space { field });
    }
    if value.starts_with(':') {
        return Err(FieldError::LeadingColon { field });
    }
    if value.len() > PARAM_MAX {
        return Err(FieldError::TooLong {
            field,
            max: PARAM_MAX,
        });
    }
    Ok(())
}

/// Checks a channel name: [`check_param`], then a `#` or `&` prefix and no `,` or BEL
/// (RFC 2812 §1.3).
///
/// | value        | result                          |
/// |--------------|---------------------------------|
/// | `"#rust"`    | `Ok`                            |
/// | `"&local"`   | `Ok`                            |
/// | `"rust"`     | [`FieldError::NotAChannel`]     |
/// | `"#a,#b"`    | [`FieldError::Forbidden`] (`,`) |
/// | `"#a\x07"`   | [`FieldError::Forbidden`] (BEL) |
pub fn check_channel(field: &'static str, value: &str) -> Result<(), FieldError> {
    check_param(field, value)?;
    if !is_channel(value) {
        return Err(FieldError::NotAChannel {
            field,
            value: value.to_owned(),
        });
    }
    match value.chars().find(|&c| c == ',' || c == '\x07') {
        Some(found) => Err(FieldError::Forbidden { field, found }),
        None => Ok(()),
    }
}

/// Checks a trailing parameter (a topic, a quit reason): spaces and the empty string are
/// fine, CR, LF and NUL are [`FieldError::Forbidden`].
pub fn check_trailing(field: &'static str, value: &str) -> Result<(), FieldError> {
    match value.chars().find(|&c| matches!(c, '\r' | '\n' | '\0')) {
        Some(found) => Err(FieldError::Forbidden { field, found }),
        None => Ok(()),
    }
}

/// Whether `target` names a channel (`#` or `&` prefix).
pub fn is_channel(target: &str) -> bool {
    target.starts_with('#') || target.starts_with('&')
}

/// Whether `c` ends a line for Python's `str.splitlines()`.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\x0b'
            | '\x0c'
            | '\x1c'
            | '\x1d'
            | '\x1e'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// The non-empty lines of `text`, with Python `str.splitlines()` breaks, NUL and the CTCP
/// delimiter `\x01` removed (so no text from IPC, a tool or a reply becomes a CTCP request,
/// e.g. `\x01VERSION\x01`, sent as the agent).
///
/// Returns `Cow` pieces: borrowed unless a character had to be stripped. A piece that is
/// empty after stripping is skipped, so nothing yielded can be empty or carry CR, LF, NUL
/// or `\x01`.
///
/// | text               | lines               |
/// |--------------------|---------------------|
/// | `"a\r\nb\n\nc"`    | `a`, `b`, `c`       |
/// | `"a\x0bb\u{2028}c"`| `a`, `b`, `c`       |
/// | `"  \nx"`          | `"  "`, `x` (spaces are kept, like Python `if line:`) |
/// | `"a\0b\n\0"`       | `ab`                |
/// | `"\x01VERSION\x01"` | `VERSION`           |
pub fn lines(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.split(is_line_break)
        .map(strip_nul)
        .filter(|line| !line.is_empty())
}

/// `line` without NUL and `\x01`, borrowed when there were none.
fn strip_nul(line: &str) -> Cow<'_, str> {
    let stripped = |c: char| matches!(c, '\0' | '\x01');
    if line.contains(stripped) {
        Cow::Owned(line.replace(stripped, ""))
    } else {
        Cow::Borrowed(line)
    }
}

/// `text` folded onto one line: the [`lines`] joined with one space, then trimmed (for
/// THREADCLOSE summaries). `" a\r\n\nb "` becomes `"a b"`.
pub fn one_line(text: &str) -> String {
    let pieces: Vec<Cow<'_, str>> = lines(text).collect();
    pieces.join(" ").trim().to_owned()
}

/// Splits one line into chunks of at most `max_bytes` bytes, never inside a UTF-8 character.
///
/// Each chunk breaks at the last whitespace within the limit when that whitespace lies in
/// the chunk's second half (a word wrap), otherwise at the last character boundary (a hard
/// split). Whitespace at a break is dropped, so the chunks plus the dropped whitespace give
/// back `line`. `max_bytes` below 4 counts as 4 (the longest UTF-8 character).
///
/// | line                | max | chunks                      |
/// |---------------------|-----|-----------------------------|
/// | `""`                | 10  | (none)                      |
/// | `"hello world foo"` | 12  | `hello world`, `foo`        |
/// | `"ab cdefghijkl"`   | 8   | `ab cdefg`, `hijkl` (space in first half: hard split) |
/// | `"ééé"`             | 5   | `éé`, `é`                   |
pub fn split_to_fit(line: &str, max_bytes: usize) -> Vec<&str> {
    let max = max_bytes.max(4);
    let mut chunks = Vec::new();
    let mut rest = line;
    while rest.len() > max {
        let cut = floor_boundary(rest, max);
        let end = word_break(&rest[..cut]).unwrap_or(cut);
        chunks.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() {
        chunks.push(rest);
    }
    chunks
}

/// The largest character boundary of `s` at or below `index` (`index` < `s.len()`).
fn floor_boundary(s: &str, index: usize) -> usize {
    (0..=index)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// Where a word wrap ends the chunk `window`: before the whitespace run that holds the last
/// whitespace, if that whitespace lies in the second half and some text precedes it.
fn word_break(window: &str) -> Option<usize> {
    let (index, _) = window
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace())?;
    if index < window.len() / 2 {
        return None;
    }
    let end = window[..index].trim_end().len();
    (end > 0).then_some(end)
}

/// Bytes left for `<text>` in `:<mask> <verb> <target> :<text>\r\n` within
/// [`IRC_LINE_MAX`], at least 16. `mask_len` is the length of `nick!user@host`, the prefix the
/// server adds when relaying; IRCv3 tags have their own budget and are not counted.
///
/// | mask_len | verb        | target         | budget |
/// |----------|-------------|----------------|--------|
/// | 86       | `PRIVMSG`   | `#general`     | 404    |
/// | 20       | `PRIVMSG`   | `bob`          | 475    |
/// | 20       | `NOTICE`    | `#c`           | 477    |
/// | 600      | `PRIVMSG`   | `#general`     | 16     |
pub fn privmsg_budget(mask_len: usize, verb: &str, target: &str) -> usize {
    // ':' mask ' ' verb ' ' target ' :' text '\r\n'
    let overhead = 1 + mask_len + 1 + verb.len() + 1 + target.len() + 2 + 2;
    IRC_LINE_MAX.saturating_sub(overhead).max(MIN_BUDGET)
}

/// The length of `nick!user@host` assumed before the server has told us our real mask:
/// the nick plus a 10-byte user and a 63-byte host. `spark-codex` gives 86.
pub fn assumed_mask_len(nick: &str) -> usize {
    nick.len() + 1 + ASSUMED_USERLEN + 1 + ASSUMED_HOSTLEN
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field name every check in these tables is called with.
    const F: &str = "f";

    fn forbidden(found: char) -> Result<(), FieldError> {
        Err(FieldError::Forbidden { field: F, found })
    }

    const EMPTY: Result<(), FieldError> = Err(FieldError::Empty { field: F });
    const SPACE: Result<(), FieldError> = Err(FieldError::Space { field: F });

    #[test]
    fn check_param_table() {
        let long = "a".repeat(201);
        let max = "a".repeat(200);
        let too_long = Err(FieldError::TooLong { field: F, max: 200 });
        let cases: &[(&str, Result<(), FieldError>)] = &[
            ("bob", Ok(())),
            ("#chan", Ok(())),
            ("a,b", Ok(())),
            ("x:y", Ok(())),
            (&max, Ok(())),
            ("", EMPTY),
            ("a\rb", forbidden('\r')),
            ("a\nb", forbidden('\n')),
            ("a\0b", forbidden('\0')),
            ("a b", SPACE),
            ("a\tb", SPACE),
            ("a\u{3000}b", SPACE),
            (":a", Err(FieldError::LeadingColon { field: F })),
            (&long, too_long),
        ];
        for (value, expected) in cases {
            assert_eq!(&check_param(F, value), expected, "value {value:?}");
        }
    }

    #[test]
    fn check_channel_table() {
        let not_a_channel = Err(FieldError::NotAChannel {
            field: F,
            value: "rust".into(),
        });
        let cases: &[(&str, Result<(), FieldError>)] = &[
            ("#rust", Ok(())),
            ("&local", Ok(())),
            ("", EMPTY),
            ("rust", not_a_channel),
            ("#a,#b", forbidden(',')),
            ("#a\x07", forbidden('\x07')),
            ("#a\r\nPRIVMSG x :y", forbidden('\r')),
            ("#a b", SPACE),
        ];
        for (value, expected) in cases {
            assert_eq!(&check_channel(F, value), expected, "value {value:?}");
        }
    }

    #[test]
    fn check_trailing_table() {
        let cases = [
            ("", Ok(())),
            ("a topic with spaces", Ok(())),
            (":leading colon is fine", Ok(())),
            ("a\rb", forbidden('\r')),
            ("a\nb", forbidden('\n')),
            ("a\0b", forbidden('\0')),
        ];
        for (value, expected) in cases {
            assert_eq!(check_trailing(F, value), expected, "value {value:?}");
        }
    }

    #[test]
    fn error_messages_name_the_field_and_escape_the_char() {
        let cases = [
            (FieldError::Empty { field: "target" }, "target is empty"),
            (
                FieldError::Forbidden {
                    field: "channel",
                    found: '\r',
                },
                "channel contains a forbidden character '\\r'",
            ),
            (
                FieldError::Space { field: "nick" },
                "nick must not contain spaces",
            ),
            (
                FieldError::NotAChannel {
                    field: "channel",
                    value: "rust".into(),
                },
                "channel must start with '#' or '&': \"rust\"",
            ),
            (
                FieldError::TooLong {
                    field: "thread",
                    max: 200,
                },
                "thread is longer than 200 bytes",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn lines_follow_python_splitlines() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("one", &["one"]),
            ("a\r\nb\n\nc", &["a", "b", "c"]),
            ("a\rb\r\r", &["a", "b"]),
            ("a\x0bb\x0cc", &["a", "b", "c"]),
            ("a\x1cb\x1dc\x1ed", &["a", "b", "c", "d"]),
            ("a\u{85}b\u{2028}c\u{2029}d", &["a", "b", "c", "d"]),
            ("  \nx", &["  ", "x"]),
            ("a\0b\n\0\nc", &["ab", "c"]),
            (
                "\x01VERSION\x01\n\x01ACTION waves\x01",
                &["VERSION", "ACTION waves"],
            ),
            ("tab\tstays", &["tab\tstays"]),
        ];
        for (text, expected) in cases {
            let got: Vec<Cow<'_, str>> = lines(text).collect();
            assert_eq!(&got, expected, "text {text:?}");
        }
    }

    #[test]
    fn lines_borrow_unless_a_nul_was_stripped() {
        let got: Vec<Cow<'_, str>> = lines("plain\nnu\0l").collect();
        assert!(matches!(got[0], Cow::Borrowed("plain")));
        assert!(matches!(&got[1], Cow::Owned(s) if s == "nul"));
    }

    #[test]
    fn one_line_table() {
        let cases = [
            ("", ""),
            ("done", "done"),
            (" a\r\n\nb ", "a b"),
            ("first\nsecond\rthird", "first second third"),
            ("\n\n", ""),
        ];
        for (text, expected) in cases {
            assert_eq!(one_line(text), expected, "text {text:?}");
        }
    }

    #[test]
    fn split_to_fit_table() {
        let cases: &[(&str, usize, &[&str])] = &[
            ("", 10, &[]),
            ("short", 10, &["short"]),
            ("exactly10!", 10, &["exactly10!"]),
            ("hello world foo", 12, &["hello world", "foo"]),
            ("ab cdefghijkl", 8, &["ab cdefg", "hijkl"]),
            ("abcdefghij", 4, &["abcd", "efgh", "ij"]),
            ("abcdefghij", 0, &["abcd", "efgh", "ij"]),
            ("ééé", 5, &["éé", "é"]),
            ("😀😀", 5, &["😀", "😀"]),
            ("😀😀", 1, &["😀", "😀"]),
            ("aaaa    bbbb", 6, &["aaaa", "bbbb"]),
            ("abcd   ", 4, &["abcd"]),
        ];
        for &(line, max, expected) in cases {
            assert_eq!(split_to_fit(line, max), expected, "{line:?} max {max}");
        }
    }

    /// A random line mixing 1- to 4-byte characters, emoji and whitespace.
    fn random_line(rng: &mut fastrand::Rng) -> String {
        const ALPHABET: &[char] = &[
            'a', 'b', 'Z', '0', ' ', ' ', '\t', 'é', 'ß', 'Ж', '€', '中', '\u{3000}', '😀', '🦀',
            '𝄞', '\u{2003}',
        ];
        let len = rng.usize(0..120);
        (0..len)
            .map(|_| ALPHABET[rng.usize(..ALPHABET.len())])
            .collect()
    }

    /// Chunks are sub-slices of `line`: their offsets show what was dropped between them.
    fn offset_in(line: &str, chunk: &str) -> usize {
        chunk.as_ptr() as usize - line.as_ptr() as usize
    }

    #[test]
    fn split_to_fit_loses_only_break_whitespace() {
        let mut rng = fastrand::Rng::with_seed(0x1bc);
        for _ in 0..5_000 {
            let line = random_line(&mut rng);
            let max = rng.usize(0..40);
            let chunks = split_to_fit(&line, max);
            let mut rebuilt = String::new();
            let mut position = 0;
            for chunk in &chunks {
                assert!(!chunk.is_empty(), "{line:?} max {max}: empty chunk");
                assert!(chunk.len() <= max.max(4), "{line:?} max {max}: {chunk:?}");
                let start = offset_in(&line, chunk);
                let gap = &line[position..start];
                assert!(
                    gap.chars().all(char::is_whitespace),
                    "{line:?}: dropped {gap:?}"
                );
                assert!(position == 0 || !chunk.starts_with(char::is_whitespace));
                rebuilt.push_str(gap);
                rebuilt.push_str(chunk);
                position = start + chunk.len();
            }
            let tail = &line[position..];
            assert!(
                tail.chars().all(char::is_whitespace),
                "{line:?}: dropped {tail:?}"
            );
            rebuilt.push_str(tail);
            assert_eq!(rebuilt, line);
        }
    }

    #[test]
    fn privmsg_budget_table() {
        let cases = [
            (86, "PRIVMSG", "#general", 404),
            (20, "PRIVMSG", "bob", 475),
            (20, "NOTICE", "#c", 477),
            (0, "", "", 505),
            (490, "PRIVMSG", "#general", 16),
            (600, "PRIVMSG", "#general", 16),
        ];
        for (mask_len, verb, target, budget) in cases {
            assert_eq!(
                privmsg_budget(mask_len, verb, target),
                budget,
                "{mask_len} {verb} {target}"
            );
        }
    }

    #[test]
    fn privmsg_budget_fills_the_line_exactly() {
        let mask = "spark-codex!codex@host.example";
        let text = "x".repeat(privmsg_budget(mask.len(), "PRIVMSG", "#general"));
        let wire = format!(":{mask} PRIVMSG #general :{text}\r\n");
        assert_eq!(wire.len(), IRC_LINE_MAX);
    }

    #[test]
    fn assumed_mask_len_table() {
        let cases = [("spark-codex", 86), ("bot", 78), ("", 75)];
        for (nick, len) in cases {
            assert_eq!(assumed_mask_len(nick), len, "nick {nick:?}");
        }
    }
}
