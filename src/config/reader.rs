//! A path-tracking walk over a parsed YAML value.
//!
//! Every [`Node`] knows its key path (`agents[2].nick`). Accessors never fail fast: a wrong
//! value is reported to the [`Report`] with its path and the accessor returns `None`, so the
//! caller falls back to the default and the walk goes on to find the next problem.
//!
//! | accessor     | accepts                                        | `None` when               |
//! |--------------|------------------------------------------------|---------------------------|
//! | `mapping`    | a mapping whose keys are all known             | absent, null or wrong     |
//! | `string`     | a string                                       | absent, null or wrong     |
//! | `boolean`    | `true` / `false`                               | absent, null or wrong     |
//! | `integer`    | an integer inside the given range              | absent, null or wrong     |
//! | `number`     | a finite integer or float                      | absent, null or wrong     |
//! | `seconds`    | a number of seconds `> 0`                      | absent, null or wrong     |
//! | `duration`   | a humantime string `> 0` and `<= 30 days`      | absent, null or wrong     |
//! | `items`      | a list                                         | absent, null or wrong     |
//!
//! A key whose value is null (`key:` or `key: ~`) reads like an absent key: the default.

use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::Diagnostic;

/// The longest duration codexd accepts anywhere. It also catches `"1M"`, which humantime reads
/// as one month, not one minute.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A place in the document: the printable key path plus, for sorting diagnostics into file
/// order, the index of each step (`usize::MAX` for a key the file does not contain).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct At {
    path: String,
    order: Vec<usize>,
}

impl At {
    /// The printable key path, e.g. `agents[2].nick`; empty for the top level.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// The place of `name` inside this mapping, `index` being its position in the file.
    pub(super) fn key(&self, name: &str, index: usize) -> At {
        let path = match self.path.is_empty() {
            true => name.to_owned(),
            false => format!("{}.{name}", self.path),
        };
        self.step(path, index)
    }

    /// The place of item `index` of this list.
    pub(super) fn item(&self, index: usize) -> At {
        self.step(format!("{}[{index}]", self.path), index)
    }

    fn step(&self, path: String, index: usize) -> At {
        let mut order = self.order.clone();
        order.push(index);
        At { path, order }
    }
}

/// Errors and warnings collected during one walk.
#[derive(Debug, Default)]
pub(super) struct Report {
    errors: Vec<(Vec<usize>, Diagnostic)>,
    warnings: Vec<(Vec<usize>, Diagnostic)>,
}

impl Report {
    /// Records an error at `at`.
    pub(super) fn error(&mut self, at: &At, message: impl Into<String>) {
        self.errors
            .push((at.order.clone(), diagnostic(at, message)));
    }

    /// Records a warning at `at`.
    pub(super) fn warn(&mut self, at: &At, message: impl Into<String>) {
        self.warnings
            .push((at.order.clone(), diagnostic(at, message)));
    }

    /// How many errors so far (to tell whether a section was valid).
    pub(super) fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// `(errors, warnings)`, each in file order.
    pub(super) fn finish(self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        (in_file_order(self.errors), in_file_order(self.warnings))
    }
}

fn diagnostic(at: &At, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        path: at.path.clone(),
        message: message.into(),
    }
}

fn in_file_order(mut entries: Vec<(Vec<usize>, Diagnostic)>) -> Vec<Diagnostic> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
        .into_iter()
        .map(|(_, diagnostic)| diagnostic)
        .collect()
}

/// A Culture key that codexd reads past with a warning instead of rejecting it.
#[derive(Debug)]
pub(super) struct Ignored {
    /// The key; a trailing `*` matches every key with that prefix.
    pub(super) key: &'static str,
    /// Why it is ignored (the warning text).
    pub(super) why: &'static str,
}

/// The keys one mapping may contain.
#[derive(Debug)]
pub(super) struct Keys {
    /// Keys that codexd reads.
    pub(super) known: &'static [&'static str],
    /// Keys that draw a warning and are otherwise skipped.
    pub(super) ignored: &'static [Ignored],
}

impl Keys {
    fn ignored(&self, key: &str) -> Option<&Ignored> {
        self.ignored
            .iter()
            .find(|ignored| match ignored.key.strip_suffix('*') {
                Some(prefix) => key.starts_with(prefix),
                None => key == ignored.key,
            })
    }
}

/// The known key closest to a misspelt `key`, if any is close enough.
pub(super) fn did_you_mean(key: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    candidates
        .iter()
        .map(|candidate| (strsim::jaro_winkler(&key, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// `"unknown <what>"` plus a did-you-mean hint when a candidate is close.
pub(super) fn unknown(what: &str, key: &str, candidates: &[&'static str]) -> String {
    match did_you_mean(key, candidates) {
        Some(close) => format!("unknown {what}; did you mean \"{close}\"?"),
        None => format!("unknown {what}"),
    }
}

/// How a value reads in a message: strings quoted, containers named.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(tagged) => format!("a value tagged {}", tagged.tag),
    }
}

/// A string in double quotes, escaped, cut to 60 characters.
pub(super) fn quote(s: &str) -> String {
    const LIMIT: usize = 60;
    match s.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// One value in the document, or the absence of a key.
#[derive(Debug, Clone)]
pub(super) struct Node<'a> {
    value: Option<&'a Value>,
    at: At,
}

impl<'a> Node<'a> {
    /// The whole document.
    pub(super) fn root(value: &'a Value) -> Self {
        Node {
            value: Some(value),
            at: At::default(),
        }
    }

    /// Where this node is.
    pub(super) fn at(&self) -> &At {
        &self.at
    }

    /// Whether the key exists at all (even with a null value).
    pub(super) fn is_present(&self) -> bool {
        self.value.is_some()
    }

    /// The value when present and not null.
    pub(super) fn given(&self) -> Option<&'a Value> {
        self.value.filter(|value| !value.is_null())
    }

    /// Reports `expected <what>, got <value>` and returns `None`.
    pub(super) fn expected<T>(&self, report: &mut Report, what: &str) -> Option<T> {
        let got = self.value.map_or_else(|| "nothing".to_owned(), describe);
        report.error(&self.at, format!("expected {what}, got {got}"));
        None
    }

    /// This value as a mapping restricted to `keys`: unknown keys are errors (with a
    /// did-you-mean), ignored keys are warnings. Absent or null reads as an empty mapping.
    pub(super) fn mapping(&self, report: &mut Report, keys: &Keys) -> Fields<'a> {
        let fields = self.fields(report);
        for (index, (key, _)) in fields.map.into_iter().flatten().enumerate() {
            let Some(key) = key.as_str() else { continue };
            let at = self.at.key(key, index);
            if keys.known.contains(&key) {
                continue;
            }
            match keys.ignored(key) {
                Some(ignored) => report.warn(&at, format!("ignored: {}", ignored.why)),
                None => report.error(&at, unknown("key", key, keys.known)),
            }
        }
        fields
    }

    /// This value as a mapping with free-form keys (non-string keys are still errors).
    pub(super) fn fields(&self, report: &mut Report) -> Fields<'a> {
        let map = match self.given() {
            None => None,
            Some(Value::Mapping(map)) => Some(map),
            Some(_) => self.expected(report, "a mapping"),
        };
        for (index, (key, _)) in map.into_iter().flatten().enumerate() {
            if !key.is_string() {
                let at = self.at.key(&describe(key), index);
                report.error(&at, format!("keys must be strings, got {}", describe(key)));
            }
        }
        Fields {
            map,
            at: self.at.clone(),
        }
    }

    /// A string.
    pub(super) fn string(&self, report: &mut Report) -> Option<&'a str> {
        match self.given()? {
            Value::String(s) => Some(s),
            _ => self.expected(report, "a string"),
        }
    }

    /// A string that passes `check`, which returns the problem with it, if any.
    pub(super) fn string_where(
        &self,
        report: &mut Report,
        check: impl Fn(&str) -> Option<String>,
    ) -> Option<&'a str> {
        let text = self.string(report)?;
        match check(text) {
            Some(problem) => {
                report.error(&self.at, problem);
                None
            }
            None => Some(text),
        }
    }

    /// `true` or `false`.
    pub(super) fn boolean(&self, report: &mut Report) -> Option<bool> {
        match self.given()? {
            Value::Bool(b) => Some(*b),
            _ => self.expected(report, "true or false"),
        }
    }

    /// An integer within `min..=max`; `what` describes the range in the error.
    pub(super) fn integer(
        &self,
        report: &mut Report,
        min: i64,
        max: i64,
        what: &str,
    ) -> Option<i64> {
        let value = self.given()?;
        match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => self.expected(report, what),
        }
    }

    /// A finite number (integer or float).
    pub(super) fn number(&self, report: &mut Report) -> Option<f64> {
        match self.given()?.as_f64() {
            Some(n) if n.is_finite() => Some(n),
            _ => self.expected(report, "a number"),
        }
    }

    /// A number of seconds greater than 0 (integer or float).
    pub(super) fn seconds(&self, report: &mut Report) -> Option<Duration> {
        const WHAT: &str = "a number of seconds greater than 0";
        let value = self.given()?;
        match value
            .as_f64()
            .filter(|n| *n > 0.0)
            .map(Duration::try_from_secs_f64)
        {
            Some(Ok(duration)) if duration <= MAX_DURATION => Some(duration),
            Some(_) => too_long(report, &self.at),
            None => self.expected(report, WHAT),
        }
    }

    /// A humantime duration (`"300s"`, `"5m"`, `"1m 30s"`), greater than 0, at most 30 days.
    pub(super) fn duration(&self, report: &mut Report) -> Option<Duration> {
        const WHAT: &str = "a duration such as \"300s\" or \"5m\"";
        let text = match self.given()? {
            Value::String(text) => text,
            Value::Number(n) => {
                let message = format!("expected {WHAT}, got {n} (add a unit: \"{n}s\")");
                report.error(&self.at, message);
                return None;
            }
            _ => return self.expected(report, WHAT),
        };
        match humantime::parse_duration(text.trim()) {
            Err(_) => self.expected(report, WHAT),
            Ok(duration) if duration.is_zero() => {
                report.error(&self.at, "must be greater than 0");
                None
            }
            Ok(duration) if duration > MAX_DURATION && text.contains('M') => {
                let hint = "at most 30 days (\"M\" means months; use \"m\" for minutes)";
                report.error(&self.at, format!("must be {hint}, got {}", quote(text)));
                None
            }
            Ok(duration) if duration > MAX_DURATION => too_long(report, &self.at),
            Ok(duration) => Some(duration),
        }
    }

    /// The items of a list.
    pub(super) fn items(&self, report: &mut Report) -> Option<Vec<Node<'a>>> {
        match self.given()? {
            Value::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, value)| Node {
                        value: Some(value),
                        at: self.at.item(index),
                    })
                    .collect(),
            ),
            _ => self.expected(report, "a list"),
        }
    }

    /// The string items of a list, each with its place (wrong items are reported).
    pub(super) fn strings(&self, report: &mut Report) -> Option<Vec<(&'a str, At)>> {
        let items = self.items(report)?;
        let strings = items.iter().filter_map(|item| {
            let s = match item.value {
                Some(Value::String(s)) => Some(s.as_str()),
                _ => item.expected(report, "a string"),
            };
            s.map(|s| (s, item.at.clone()))
        });
        Some(strings.collect())
    }
}

fn too_long<T>(report: &mut Report, at: &At) -> Option<T> {
    report.error(at, "must be at most 30 days");
    None
}

/// The entries of one mapping (or of none, when absent, null or not a mapping).
#[derive(Debug, Clone)]
pub(super) struct Fields<'a> {
    map: Option<&'a Mapping>,
    at: At,
}

impl<'a> Fields<'a> {
    /// The value of `key` (an absent node when the key is missing).
    pub(super) fn get(&self, key: &str) -> Node<'a> {
        let found = self.map.and_then(|map| {
            map.iter()
                .enumerate()
                .find(|(_, (k, _))| k.as_str() == Some(key))
        });
        match found {
            Some((index, (_, value))) => Node {
                value: Some(value),
                at: self.at.key(key, index),
            },
            None => Node {
                value: None,
                at: self.at.key(key, usize::MAX),
            },
        }
    }

    /// Whether `key` is in the mapping (even with a null value).
    pub(super) fn has(&self, key: &str) -> bool {
        self.map.is_some_and(|map| map.contains_key(key))
    }

    /// Whether the mapping has no entries (or is absent).
    pub(super) fn is_empty(&self) -> bool {
        self.map.is_none_or(Mapping::is_empty)
    }

    /// Every entry with a string key, in file order.
    pub(super) fn entries(&self) -> Vec<(&'a str, Node<'a>)> {
        let entries = self.map.into_iter().flatten().enumerate();
        let with_string_keys =
            entries.filter_map(|(index, (key, value))| key.as_str().map(|key| (index, key, value)));
        with_string_keys
            .map(|(index, key, value)| {
                (
                    key,
                    Node {
                        value: Some(value),
                        at: self.at.key(key, index),
                    },
                )
            })
            .collect()
    }
}
