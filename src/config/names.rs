//! What may appear in strings that end up on IRC, in a child's argv or in its environment.
//! Each check returns the problem as a message, or `None` when the value is fine.
//!
//! | value                 | rule                                                                   |
//! |-----------------------|------------------------------------------------------------------------|
//! | single line           | no CR, LF or NUL (`line`: and not empty)                               |
//! | nick                  | 1..=32 chars; letters, digits, ``-[]\`^{}|_``; first not a digit/`-`;   |
//! |                       | starts with `<server.name>-` and has a name after it                   |
//! | server name           | non-empty; letters, digits, ``-[]\`^{}|_``; first not a digit/`-`        |
//! | channel               | `#` then 1..=49 chars; no space, comma, BEL, CR, LF, NUL               |
//! | tag                   | non-empty; no space, comma, CR, LF, NUL                                |
//! | environment name      | `[A-Za-z_][A-Za-z0-9_]*`                                               |
//! | http URL              | starts with `http://` or `https://`; no whitespace or NUL              |

use codexd_actors::redact;

/// The longest nick codexd accepts (agentirc and most IRCv3 servers allow at least 30).
pub(super) const NICK_MAX_LEN: usize = 32;

/// The longest channel name (`#` included), the common `CHANNELLEN`.
pub(super) const CHANNEL_MAX_LEN: usize = 50;

const NICK_SPECIALS: &str = "[]\\`^{}|_";

/// CR, LF or NUL: the characters that would split an IRC line or a C string.
pub(super) fn multi_line(value: &str) -> Option<String> {
    let bad = value.chars().find(|c| matches!(c, '\r' | '\n' | '\0'))?;
    Some(format!("must not contain {}", char_name(bad)))
}

/// A non-empty single line (models, hosts, labels).
pub(super) fn line(value: &str) -> Option<String> {
    match value.is_empty() {
        true => Some("must not be empty".to_owned()),
        false => multi_line(value),
    }
}

/// NUL, which no argv entry, environment entry or JSON-RPC string to codex should carry.
pub(super) fn nul(value: &str) -> Option<String> {
    value
        .contains('\0')
        .then(|| "must not contain NUL".to_owned())
}

/// A legal IRC nick that starts with `<server_name>-`.
pub(super) fn nick(nick: &str, server_name: &str) -> Option<String> {
    if nick.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if let Some(problem) = nick_chars(nick) {
        return Some(problem);
    }
    if nick.chars().count() > NICK_MAX_LEN {
        return Some(format!("must be at most {NICK_MAX_LEN} characters long"));
    }
    let prefix = format!("{server_name}-");
    match nick.strip_prefix(&prefix) {
        None => Some(format!("must start with \"{prefix}\"")),
        Some("") => Some(format!("must have a name after \"{prefix}\"")),
        Some(_) => None,
    }
}

/// A server name usable as the nick prefix.
pub(super) fn server_name(name: &str) -> Option<String> {
    match name.is_empty() {
        true => Some("must not be empty".to_owned()),
        false => nick_chars(name),
    }
}

fn nick_chars(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    if first.is_ascii_digit() || first == '-' {
        return Some(format!("must not start with {}", char_name(first)));
    }
    let bad = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || NICK_SPECIALS.contains(*c)))?;
    Some(format!(
        "must not contain {} (allowed: letters, digits and -[]\\`^{{}}|_)",
        char_name(bad)
    ))
}

/// A channel name: `#` and at least one more character, nothing that would break a line.
pub(super) fn channel(channel: &str) -> Option<String> {
    if !channel.starts_with('#') {
        return Some("must start with \"#\"".to_owned());
    }
    if channel.len() == 1 {
        return Some("must have a name after \"#\"".to_owned());
    }
    if channel.chars().count() > CHANNEL_MAX_LEN {
        return Some(format!("must be at most {CHANNEL_MAX_LEN} characters long"));
    }
    let bad = channel
        .chars()
        .find(|c| matches!(c, ' ' | ',' | '\x07' | '\r' | '\n' | '\0'))?;
    Some(format!("must not contain {}", char_name(bad)))
}

/// A `TAGS` entry: non-empty, no separators, one line.
pub(super) fn tag(tag: &str) -> Option<String> {
    if tag.is_empty() {
        return Some("must not be empty".to_owned());
    }
    let bad = tag
        .chars()
        .find(|c| matches!(c, ' ' | ',' | '\r' | '\n' | '\0'))?;
    Some(format!("must not contain {}", char_name(bad)))
}

/// An `http://` or `https://` URL without whitespace (webhook and OTLP endpoints). The
/// problem quotes only the URL's origin: a webhook's path and query carry its token.
pub(super) fn http_url(url: &str) -> Option<String> {
    let has_scheme = url.starts_with("http://") || url.starts_with("https://");
    match (
        has_scheme,
        url.chars().any(|c| c.is_whitespace() || c == '\0'),
    ) {
        (false, _) => Some(format!(
            "must be an http:// or https:// URL, got {}",
            super::reader::quote(&shown_url(url))
        )),
        (true, true) => Some("must not contain whitespace or NUL".to_owned()),
        (true, false) => None,
    }
}

/// `url`'s origin, `…` marking that more was left out.
fn shown_url(url: &str) -> String {
    let origin = redact::origin(url);
    match origin.len() < url.len() {
        true => format!("{origin}…"),
        false => origin,
    }
}

/// IRC's case-insensitive form of a nick (rfc1459 casemapping), for uniqueness checks.
pub(super) fn fold_nick(nick: &str) -> String {
    let fold = |c: char| match c {
        '[' => '{',
        ']' => '}',
        '\\' => '|',
        '~' => '^',
        c => c.to_ascii_lowercase(),
    };
    nick.chars().map(fold).collect()
}

/// An environment variable name.
pub(super) fn env_name(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    (!(first_ok && rest_ok))
        .then(|| "is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)".to_owned())
}

/// How a character is named in a message.
fn char_name(c: char) -> String {
    match c {
        '\r' => "CR".to_owned(),
        '\n' => "LF".to_owned(),
        '\0' => "NUL".to_owned(),
        '\x07' => "BEL".to_owned(),
        ' ' => "a space".to_owned(),
        ',' => "a comma".to_owned(),
        c if c.is_control() => format!("U+{:04X}", c as u32),
        c => format!("{c:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        let cases = [
            ("spark-codex", None),
            ("spark-a[1]_{x}|`^\\", None),
            ("spark-", Some("must have a name after \"spark-\"")),
            ("codex", Some("must start with \"spark-\"")),
            ("sparky-codex", Some("must start with \"spark-\"")),
            ("", Some("must not be empty")),
            ("1spark-x", Some("must not start with '1'")),
            ("-spark-x", Some("must not start with '-'")),
            (
                "spark-a b",
                Some("must not contain a space (allowed: letters, digits and -[]\\`^{}|_)"),
            ),
            (
                "spark-a\r\nQUIT",
                Some("must not contain CR (allowed: letters, digits and -[]\\`^{}|_)"),
            ),
            (
                "spark-a/b",
                Some("must not contain '/' (allowed: letters, digits and -[]\\`^{}|_)"),
            ),
            (
                "spark-a@b",
                Some("must not contain '@' (allowed: letters, digits and -[]\\`^{}|_)"),
            ),
            (
                "spark-é",
                Some("must not contain 'é' (allowed: letters, digits and -[]\\`^{}|_)"),
            ),
            (
                "spark-abcdefghijklmnopqrstuvwxyz0",
                Some("must be at most 32 characters long"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(nick(input, "spark").as_deref(), want, "{input:?}");
        }
        for c in ['\0', '\n', ',', '*', '?', '!', '#', ':'] {
            assert!(nick(&format!("spark-a{c}"), "spark").is_some(), "{c:?}");
        }
    }

    #[test]
    fn channels() {
        let cases = [
            ("#general", None),
            ("#a-b_c.d", None),
            ("general", Some("must start with \"#\"")),
            ("#", Some("must have a name after \"#\"")),
            ("#a b", Some("must not contain a space")),
            ("#a,#b", Some("must not contain a comma")),
            ("#a\x07", Some("must not contain BEL")),
            ("#a\rb", Some("must not contain CR")),
            ("#a\nb", Some("must not contain LF")),
            ("#a\0", Some("must not contain NUL")),
        ];
        for (input, want) in cases {
            assert_eq!(channel(input).as_deref(), want, "{input:?}");
        }
        assert!(channel(&format!("#{}", "x".repeat(50))).is_some());
    }

    #[test]
    fn tags_lines_and_env_names() {
        let tag_cases = [
            ("rust", None),
            ("a b", Some("must not contain a space")),
            ("a,b", Some("must not contain a comma")),
            ("", Some("must not be empty")),
        ];
        for (input, want) in tag_cases {
            assert_eq!(tag(input).as_deref(), want, "{input:?}");
        }
        assert_eq!(
            multi_line("one\ntwo").as_deref(),
            Some("must not contain LF")
        );
        assert_eq!(multi_line("one line"), None);
        assert_eq!(nul("a\0b").as_deref(), Some("must not contain NUL"));
        for (name, ok) in [
            ("PATH", true),
            ("_X1", true),
            ("1X", false),
            ("A-B", false),
            ("", false),
        ] {
            assert_eq!(env_name(name).is_none(), ok, "{name:?}");
        }
        assert_eq!(server_name("spark"), None);
        assert_eq!(fold_nick("Spark-A[x]\\"), "spark-a{x}|");
        assert_eq!(http_url("https://example.test/hook"), None);
        assert!(http_url("example.test").is_some());
        assert_eq!(
            http_url("user:pw@hooks.example.com/abc?token=1").as_deref(),
            Some("must be an http:// or https:// URL, got \"hooks.example.com…\"")
        );
        assert!(http_url("http://a b").is_some());
        assert_eq!(line("").as_deref(), Some("must not be empty"));
        assert!(server_name("my server").is_some());
    }
}
