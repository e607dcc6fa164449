//! The process environment, captured once and injected (STYLE rule 7): logic never reads
//! `std::env` itself, so tests can hand it any environment they like.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A snapshot of environment variables plus the home directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Captures the real process environment.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// Builds an environment from explicit pairs (tests, embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`, treating an empty value as unset.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `$HOME`, when set.
    pub fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }

    /// Expands a leading `~` or `~/` with `$HOME`; other paths are returned unchanged.
    /// Returns `None` when the path needs `$HOME` and it is unset.
    pub fn expand_tilde(&self, path: &str) -> Option<PathBuf> {
        match path.strip_prefix('~') {
            Some("") => self.home(),
            Some(rest) if rest.starts_with('/') => self.home().map(|h| h.join(&rest[1..])),
            _ => Some(PathBuf::from(path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_tilde_only_at_the_start() {
        let env = Env::from_pairs([("HOME", "/home/a")]);
        let cases = [
            ("~", Some("/home/a")),
            ("~/x/y", Some("/home/a/x/y")),
            ("/abs/~", Some("/abs/~")),
            ("rel", Some("rel")),
            ("~other", Some("~other")),
        ];
        for (input, want) in cases {
            assert_eq!(env.expand_tilde(input), want.map(PathBuf::from), "{input}");
        }
        assert_eq!(Env::default().expand_tilde("~/x"), None);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let env = Env::from_pairs([("A", ""), ("B", "b")]);
        assert_eq!(env.var("A"), None);
        assert_eq!(env.var("B"), Some("b"));
    }
}
