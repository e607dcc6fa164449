//! `codex:` — how the runner starts `codex app-server` (codexd). An agent's partial `codex:`
//! overlays the daemon's: `binary` and `args` replace, `env` merges key by key.
//!
//! | key      | default | rule                                                          |
//! |----------|---------|---------------------------------------------------------------|
//! | `binary` | `codex` | non-empty string without NUL; `~` expanded; else PATH lookup  |
//! | `args`   | `[]`    | list of strings without NUL (after `app-server`)              |
//! | `env`    | `{}`    | mapping of `[A-Za-z_][A-Za-z0-9_]*` → string without NUL      |

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::reader::{Keys, Node, Report};
use super::{CodexConfig, names, paths};
use crate::env::Env;

const KEYS: Keys = Keys {
    known: &["binary", "args", "env"],
    ignored: &[],
};

impl Default for CodexConfig {
    fn default() -> Self {
        CodexConfig {
            binary: PathBuf::from("codex"),
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }
}

/// `codex:` overlaid on `base`.
pub(super) fn section(
    node: &Node<'_>,
    base: &CodexConfig,
    env: &Env,
    report: &mut Report,
) -> CodexConfig {
    let fields = node.mapping(report, &KEYS);
    let mut merged_env = base.env.clone();
    merged_env.extend(variables(&fields.get("env"), report));
    CodexConfig {
        binary: paths::path(&fields.get("binary"), env, report)
            .unwrap_or_else(|| base.binary.clone()),
        args: args(&fields.get("args"), report).unwrap_or_else(|| base.args.clone()),
        env: merged_env,
    }
}

fn args(node: &Node<'_>, report: &mut Report) -> Option<Vec<String>> {
    let items = node.strings(report)?;
    let args = items.into_iter().map(|(arg, at)| {
        if let Some(problem) = names::nul(arg) {
            report.error(&at, problem);
        }
        arg.to_owned()
    });
    Some(args.collect())
}

fn variables(node: &Node<'_>, report: &mut Report) -> BTreeMap<String, String> {
    let fields = node.fields(report);
    let mut variables = BTreeMap::new();
    for (name, value) in fields.entries() {
        if let Some(problem) = names::env_name(name) {
            report.error(value.at(), problem);
            continue;
        }
        let Some(text) = value.string(report) else {
            if value.given().is_none() {
                value.expected::<()>(report, "a string");
            }
            continue;
        };
        match names::nul(text) {
            Some(problem) => report.error(value.at(), problem),
            None => _ = variables.insert(name.to_owned(), text.to_owned()),
        }
    }
    variables
}
