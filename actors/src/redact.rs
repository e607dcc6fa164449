//! Redaction for text that leaves the daemon in logs, alert texts and status: URLs lose
//! their credentials, query and fragment; obvious secrets are masked.
//!
//! | function   | input                                           | output                          |
//! |------------|-------------------------------------------------|---------------------------------|
//! | [`url`]    | `https://user:tok@host:4318/v1/traces?key=x#f`  | `https://host:4318/v1/traces`   |
//! | [`url`]    | `hooks.example.com/abc?token=1` (no scheme)     | `hooks.example.com/abc`         |
//! | [`origin`] | `https://discord.com/api/webhooks/1/tok`        | `https://discord.com`           |
//! | [`text`]   | `GET https://u:p@h/x?sig=1 failed`              | `GET https://h/x failed`        |
//! | [`text`]   | `key sk-proj-abcdefghijklmnop`                  | `key sk-[redacted]`             |
//! | [`text`]   | `Authorization: Bearer abc.def`                 | `Authorization: [redacted]`     |
//! | [`text`]   | `Bearer abc.def`                                | `Bearer [redacted]`             |
//! | [`text`]   | `api_key=abc token="x y" password='z'`          | `api_key=[redacted] token=[redacted] password=[redacted]` |
//!
//! A URL's path is kept by [`url`] (an OTLP endpoint's path is not a secret); where the
//! path itself carries a token, as a webhook URL's does, show only its [`origin`].

use std::sync::LazyLock;

use regex_lite::{Captures, Regex};

/// What a masked secret becomes.
pub const MASK: &str = "[redacted]";

/// A URL in free text: a scheme, `://`, then anything up to a space, quote or bracket.
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>()\[\]{}]+"#).expect("the URL regex is valid")
});

/// Secrets in free text; each keeps its key and separator (`$1`, `$2`), the rest is masked.
static SECRETS: LazyLock<[Regex; 4]> = LazyLock::new(|| {
    [
        r"(?i)\b((?:proxy-)?authorization)(\s*[:=]\s*)(?:(?:bearer|basic|token|digest)\s+)?[^\s,;]+",
        r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+",
        r"\b(sk)(-)[A-Za-z0-9_-]{16,}",
        r#"(?i)\b([\w.-]*(?:(?:api|secret|access|private)[_-]?key|apikey|token|secret|password|passwd))(\s*=\s*|"\s*:\s*)(?:"[^"]*"|'[^']*'|[^\s&,;"']+)"#,
    ]
    .map(|pattern| Regex::new(pattern).expect("the secret regexes are valid"))
});

/// `url` without userinfo, query or fragment; with or without a scheme.
pub fn url(url: &str) -> String {
    let (scheme, host, path) = parts(url);
    format!("{scheme}{host}{path}")
}

/// `url`'s scheme and host (with its port): `https://discord.com`, `example.test:80`.
pub fn origin(url: &str) -> String {
    let (scheme, host, _) = parts(url);
    format!("{scheme}{host}")
}

/// `text` with every URL passed through [`url`] and the secrets of the module table masked.
pub fn text(text: &str) -> String {
    let urls = URL.replace_all(text, |found: &Captures<'_>| {
        let found = &found[0];
        // Sentence punctuation after a URL is not part of it.
        let kept = found.trim_end_matches(['.', ',', ';', ':', '!', '?']);
        format!("{}{}", url(kept), &found[kept.len()..])
    });
    let masked = format!("${{1}}${{2}}{MASK}");
    SECRETS.iter().fold(urls.into_owned(), |text, regex| {
        regex.replace_all(&text, masked.as_str()).into_owned()
    })
}

/// `(scheme://, host[:port], path)`: the userinfo, query and fragment left out.
fn parts(url: &str) -> (&str, &str, &str) {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = &tail[..tail.find(['?', '#']).unwrap_or(tail.len())];
    (scheme, host, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        let table = [
            (
                "https://user:tok@host:4318/v1/traces?key=x",
                "https://host:4318/v1/traces",
                "https://host:4318",
            ),
            (
                "hooks.example.com/abc?token=1",
                "hooks.example.com/abc",
                "hooks.example.com",
            ),
            ("user:pw@example.test", "example.test", "example.test"),
            ("localhost:4317", "localhost:4317", "localhost:4317"),
            (
                "http://[::1]:9/x#frag",
                "http://[::1]:9/x",
                "http://[::1]:9",
            ),
            ("https://h?q=1", "https://h", "https://h"),
            ("https://a@b@h/p@q", "https://h/p@q", "https://h"),
            ("", "", ""),
        ];
        for (input, want_url, want_origin) in table {
            assert_eq!(url(input), want_url, "url({input:?})");
            assert_eq!(origin(input), want_origin, "origin({input:?})");
        }
    }

    #[test]
    fn text_masks_urls_and_secrets() {
        let table = [
            (
                "GET https://user:secret@host/x?token=abc failed.",
                "GET https://host/x failed.",
            ),
            (
                "(see http://h:1/a?b=c), then ws://u:p@h2",
                "(see http://h:1/a), then ws://h2",
            ),
            (
                "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuv",
                "OPENAI_API_KEY=[redacted]",
            ),
            (
                "using key sk-proj-abcdefghijklmnopqrstuv now",
                "using key sk-[redacted] now",
            ),
            ("Authorization: Bearer abc.def", "Authorization: [redacted]"),
            (
                "proxy-authorization=Basic dXNlcjpwdw==, next",
                "proxy-authorization=[redacted], next",
            ),
            ("header bearer eyJhbGciOi.x.y", "header bearer [redacted]"),
            (
                "api_key=abc token=\"x y\" password='z' access_token=q&x=1",
                "api_key=[redacted] token=[redacted] password=[redacted] access_token=[redacted]&x=1",
            ),
            (
                r#"{"client_secret": "s3", "n": 1}"#,
                r#"{"client_secret": [redacted], "n": 1}"#,
            ),
            // Left alone: words that only look like keys.
            (
                "max_tokens=5 spark-codex task-abcdefghijklmnopqrstuv token: expired",
                "max_tokens=5 spark-codex task-abcdefghijklmnopqrstuv token: expired",
            ),
            (
                "Agent spark-a crashed (exit 4).",
                "Agent spark-a crashed (exit 4).",
            ),
        ];
        for (input, want) in table {
            assert_eq!(text(input), want, "text({input:?})");
        }
    }
}
