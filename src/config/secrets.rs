//! Secret keys whose value may live outside the config file: `${VAR}` expansion in the value,
//! or a sibling `<key>_file` naming a file that holds it.
//!
//! | secret key               | file key                      |
//! |--------------------------|-------------------------------|
//! | `server.sasl.password`   | `server.sasl.password_file`   |
//! | `webhooks.url`           | `webhooks.url_file`           |
//! | `telemetry.otlp_headers` | `telemetry.otlp_headers_file` |
//!
//! | value text            | becomes                                     |
//! |-----------------------|---------------------------------------------|
//! | `${NAME}`             | `$NAME`; unset or empty is an error         |
//! | `a${NAME}b`           | `a`, `$NAME`, `b`                           |
//! | `$${`                 | a literal `${` (scanned left to right)      |
//! | `$x`, `$`             | themselves                                  |
//! | `${` without a name and `}` | an error                              |
//!
//! The `_file` path takes the same `${NAME}` expansion (`${CREDENTIALS_DIRECTORY}/sasl`)
//! and `~`. The file must be a regular file that only its owner may read or write
//! (`mode & 0o077 == 0`, as ssh demands of a private key); its content, minus one trailing
//! newline, is the value, taken literally (no expansion). Giving both keys is an error.
//! Errors name the key, the variable or the path, never the value.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde_yaml_ng::Value;

use super::paths;
use super::reader::{Fields, Node, Report, quote};
use crate::env::Env;

/// Why `${…}` expansion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExpandError {
    /// `${NAME}` names a variable that is unset or empty.
    Unset(String),
    /// `${` is not followed by a variable name and `}`.
    Malformed,
}

impl ExpandError {
    fn message(&self) -> String {
        match self {
            ExpandError::Unset(name) => {
                format!("environment variable {name} (referenced as ${{{name}}}) is unset or empty")
            }
            ExpandError::Malformed => "\"${\" must start a reference such as ${NAME}; \
                 write \"$${\" for a literal \"${\""
                .to_owned(),
        }
    }
}

/// The secret at `key` of `fields`: its value with `${VAR}` expanded, or the content of the
/// file named by `<key>_file`. `None` when neither is given or on error (reported).
pub(super) fn secret(
    fields: &Fields<'_>,
    key: &str,
    env: &Env,
    report: &mut Report,
) -> Option<String> {
    let file_key = format!("{key}_file");
    let inline = fields.get(key);
    let file = fields.get(&file_key);
    match (inline.given().is_some(), file.given().is_some()) {
        (true, true) => {
            report.error(
                file.at(),
                format!("give either {key} or {file_key}, not both"),
            );
            None
        }
        (true, false) => from_value(&inline, env, report),
        (false, true) => from_file(&file, env, report),
        (false, false) => None,
    }
}

/// Whether `key` or `<key>_file` is in the mapping (even with a null value).
pub(super) fn has(fields: &Fields<'_>, key: &str) -> bool {
    fields.has(key) || fields.has(&format!("{key}_file"))
}

/// Whether the secret at `key` comes from outside the file: `<key>_file`, or a value with a
/// `${` in it. Checks may quote a value written in the file, never one from outside.
pub(super) fn is_from_outside(fields: &Fields<'_>, key: &str) -> bool {
    let text = fields.get(key).given().and_then(Value::as_str);
    fields.has(&format!("{key}_file")) || text.is_some_and(|text| text.contains("${"))
}

fn from_value(node: &Node<'_>, env: &Env, report: &mut Report) -> Option<String> {
    // Never echo the value: `expected` would quote it.
    let Some(Value::String(text)) = node.given() else {
        report.error(node.at(), "must be a string");
        return None;
    };
    expand(text, env)
        .map_err(|error| report.error(node.at(), error.message()))
        .ok()
}

fn from_file(node: &Node<'_>, env: &Env, report: &mut Report) -> Option<String> {
    let text = node.string(report)?;
    let expanded = expand(text, env)
        .map_err(|error| report.error(node.at(), error.message()))
        .ok()?;
    if expanded.is_empty() {
        report.error(node.at(), "must not be empty");
        return None;
    }
    let path = paths::expand(node, &expanded, env, report)?;
    read(&path)
        .map_err(|problem| report.error(node.at(), problem))
        .ok()
}

/// Expands `${NAME}` references and `$${` escapes in `text`; see the module table.
pub(super) fn expand(text: &str, env: &Env) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let tail = &rest[dollar..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            continue;
        }
        let Some(reference) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let (name, after) = reference.split_once('}').ok_or(ExpandError::Malformed)?;
        if !is_variable_name(name) {
            return Err(ExpandError::Malformed);
        }
        let value = env
            .var(name)
            .ok_or_else(|| ExpandError::Unset(name.to_owned()))?;
        out.push_str(value);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the POSIX shell's variable names.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The content of a secret file, minus one trailing newline (`\n` or `\r\n`).
///
/// | file                                   | result                                   |
/// |----------------------------------------|------------------------------------------|
/// | missing, unreadable, not UTF-8         | error naming the path and the OS error   |
/// | not a regular file                     | error                                    |
/// | `mode & 0o077 != 0`                    | error: chmod 600                         |
/// | empty (after the newline is stripped)  | error                                    |
pub(super) fn read(path: &Path) -> Result<String, String> {
    let shown = quote(&path.display().to_string());
    let cannot = |error: std::io::Error| format!("cannot read {shown}: {error}");
    let metadata = std::fs::metadata(path).map_err(cannot)?;
    if !metadata.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{shown} may be read or written by group or others (mode {mode:03o}); \
             make it private with: chmod 600 {shown}"
        ));
    }
    let content = std::fs::read(path).map_err(cannot)?;
    let content = String::from_utf8(content).map_err(|_| format!("{shown} is not UTF-8 text"))?;
    let value = content
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(&content);
    match value.is_empty() {
        true => Err(format!("{shown} is empty")),
        false => Ok(value.to_owned()),
    }
}
