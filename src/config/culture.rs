//! Culture's files, turned into the one document the checker reads (the legacy shape, whose
//! `agents:` is a list). Never writes them, never needs a codexd key in them.
//!
//! | the file read                          | becomes                                                |
//! |----------------------------------------|--------------------------------------------------------|
//! | `agents:` is a list (legacy)           | itself, archived agents taken out                      |
//! | `agents:` is a mapping (Culture 14's manifest, `server.yaml`, or an `agents.yaml` Culture's CLI migrated in place) | each `suffix: /dir` read from `/dir/culture.yaml`: nick `<server.name>-<suffix>`, directory `/dir`; hosted when `backend: codex` and not archived |
//! | codexd's own file with `culture: PATH` | the file at `PATH` read as above, then every other key of codexd's file laid over it (a section key by key) |
//!
//! What codexd understands in a manifest and does not use: `presence` (taken out here);
//! `telemetry.audit_*` is used (codexd's audit log, next to agentirc's); the `supervisor:` block Culture always writes does not switch the
//! overseer on (`supervisor.enabled` defaults to `false`), and agentirc's
//! `telemetry.service_name` default (`culture.agentirc`) is dropped so codexd's applies.
//! Agents that are not hosted are notices (warnings): archived, another backend, a
//! missing `culture.yaml` or suffix (Culture skips those too).

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::reader::{describe, quote};
use super::{ConfigError, Diagnostic};
use crate::env::Env;

/// The key of codexd's own file that names Culture's file.
pub(super) const CULTURE_KEY: &str = "culture";
/// The backend codexd hosts from a manifest (Culture's default is `claude`).
const BACKEND: &str = "codex";
/// agentirc's `TelemetryConfig.service_name` default, which Culture writes into every manifest.
const AGENTIRC_SERVICE_NAME: &str = "culture.agentirc";
/// Culture's per-directory agent file.
const CULTURE_YAML: &str = "culture.yaml";

/// One legacy-shaped document and what was found on the way.
#[derive(Debug, Default)]
pub(super) struct Assembled {
    /// The document to check.
    pub(super) value: Value,
    /// Problems in Culture's files (or the `culture:` key) the checker will not see.
    pub(super) errors: Vec<Diagnostic>,
    /// Agents not hosted, and why.
    pub(super) notices: Vec<Diagnostic>,
    /// Where each entry of the document's `agents` list came from.
    pub(super) origins: Vec<Origin>,
}

/// Where an agent entry came from, for its diagnostics' key paths.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    /// Item `n` of a legacy `agents:` list (archived agents before it were taken out).
    Legacy(usize),
    /// A manifest agent's `culture.yaml`.
    File(PathBuf),
}

impl Assembled {
    /// Key paths of the checked document back to the files': `agents[i].model` →
    /// `agents[n].model` (its place in the legacy file) or `/dir/culture.yaml: model`.
    pub(super) fn relabel(&self, diagnostics: &mut [Diagnostic]) {
        for diagnostic in diagnostics {
            let Some((index, rest)) = agent_index(&diagnostic.path) else {
                continue;
            };
            diagnostic.path = match (self.origins.get(index), rest.strip_prefix('.')) {
                (Some(Origin::Legacy(n)), _) => format!("agents[{n}]{rest}"),
                (Some(Origin::File(file)), Some(key)) => format!("{}: {key}", file.display()),
                (Some(Origin::File(file)), None) => format!("{}{rest}", file.display()),
                (None, _) => continue,
            };
        }
    }
}

/// `agents[3].x` → `(3, ".x")`.
fn agent_index(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix("agents[")?;
    let (index, rest) = rest.split_once(']')?;
    Some((index.parse().ok()?, rest))
}

/// The document `value` stands for (module table). Fails only when Culture's file named by
/// `culture:` cannot be read or is not YAML.
pub(super) fn assemble(mut value: Value, env: &Env) -> Result<Assembled, ConfigError> {
    let Some(reference) = take(&mut value, CULTURE_KEY) else {
        return Ok(culture_document(value));
    };
    let path = match culture_path(&reference, env) {
        Ok(path) => path,
        Err(error) => return Err(invalid(CULTURE_KEY, error)),
    };
    let culture = read_yaml(&path)?;
    let mut assembled = culture_document(culture);
    if value.get("agents").is_some() {
        assembled.errors.push(Diagnostic::new(
            "agents",
            format!(
                "not allowed with culture: ({} lists the agents); an agent's codexd keys go in its culture.yaml or its entry there",
                path.display()
            ),
        ));
        take(&mut value, "agents");
    }
    overlay(&mut assembled.value, value);
    Ok(assembled)
}

/// `culture:`: a path, `~` expanded; relative paths stay relative to the working directory.
fn culture_path(reference: &Value, env: &Env) -> Result<PathBuf, String> {
    let Some(text) = reference.as_str().filter(|t| !t.is_empty()) else {
        return Err(format!(
            "expected the path of Culture's config file (e.g. \"~/.culture/server.yaml\"), got {}",
            describe(reference)
        ));
    };
    env.expand_tilde(text)
        .ok_or_else(|| format!("{} starts with \"~\" but HOME is unset", quote(text)))
}

/// A legacy file as it is (archived agents out), or a manifest made legacy-shaped.
fn culture_document(value: Value) -> Assembled {
    match value.get("agents") {
        Some(Value::Mapping(_)) => manifest(value),
        _ => legacy(value),
    }
}

/// The legacy shape: archived agents are not hosted.
fn legacy(mut value: Value) -> Assembled {
    let mut assembled = Assembled::default();
    if let Some(Value::Sequence(agents)) = value.get_mut("agents") {
        let entries = std::mem::take(agents);
        for (index, mut entry) in entries.into_iter().enumerate() {
            match archived(&entry) {
                Some(why) => assembled
                    .notices
                    .push(Diagnostic::new(&format!("agents[{index}]"), why)),
                None => {
                    forget_archive_keys(&mut entry);
                    agents.push(entry);
                    assembled.origins.push(Origin::Legacy(index));
                }
            }
        }
    }
    assembled.value = value;
    assembled
}

/// Culture 14's manifest: `agents: {suffix: /dir}`, each agent in `/dir/culture.yaml`.
fn manifest(mut value: Value) -> Assembled {
    let mut assembled = Assembled::default();
    let server = value
        .get("server")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("culture")
        .to_owned();
    let Some(Value::Mapping(entries)) = take(&mut value, "agents") else {
        unreachable!("manifest() is only called with an agents mapping");
    };
    let mut agents = Vec::new();
    for (suffix, directory) in &entries {
        let (Some(suffix), Some(directory)) = (suffix.as_str(), directory.as_str()) else {
            let message = format!(
                "expected suffix: /directory pairs of strings, got {}: {}",
                describe(suffix),
                describe(directory)
            );
            assembled.errors.push(Diagnostic::new("agents", message));
            continue;
        };
        let at = format!("agents.{suffix}");
        let file = Path::new(directory).join(CULTURE_YAML);
        match manifest_agent(&server, suffix, directory, &file) {
            Ok(Hosted::Yes(entry)) => {
                agents.push(entry);
                assembled.origins.push(Origin::File(file));
            }
            Ok(Hosted::No(why)) => assembled.notices.push(Diagnostic::new(&at, why)),
            Err(error) => assembled.errors.push(Diagnostic::new(&at, error)),
        }
    }
    understood_culture_keys(&mut value);
    if let Value::Mapping(top) = &mut value {
        top.insert("agents".into(), Value::Sequence(agents));
    }
    assembled.value = value;
    assembled
}

/// Whether codexd hosts a manifest agent.
enum Hosted {
    /// Yes, as this legacy-shaped entry.
    Yes(Value),
    /// No, for this reason.
    No(String),
}

/// The agent `suffix` of `file`, legacy-shaped; `Err` when the file cannot be read or parsed.
fn manifest_agent(
    server: &str,
    suffix: &str,
    directory: &str,
    file: &Path,
) -> Result<Hosted, String> {
    let nick = format!("{server}-{suffix}");
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Hosted::No(format!(
                "{nick}: {} is missing; not hosted",
                file.display()
            )));
        }
        Err(error) => return Err(format!("cannot read {}: {error}", file.display())),
    };
    let document = parse_yaml(&text).map_err(|message| format!("{}: {message}", file.display()))?;
    let Some(mut entry) = entry_for(&document, suffix) else {
        return Ok(Hosted::No(format!(
            "{nick}: {} has no agent with suffix {}; not hosted",
            file.display(),
            quote(suffix)
        )));
    };
    if let Some(why) = archived(&entry) {
        return Ok(Hosted::No(format!("{nick} {why}")));
    }
    let backend = entry
        .get("backend")
        .and_then(Value::as_str)
        .unwrap_or("claude");
    if backend != BACKEND {
        return Ok(Hosted::No(format!(
            "{nick}: backend {} in {}; codexd hosts backend {BACKEND} only; not hosted",
            quote(backend),
            file.display()
        )));
    }
    forget_archive_keys(&mut entry);
    let Value::Mapping(mut fields) = entry else {
        unreachable!("entry_for() returns mappings");
    };
    fields.remove("suffix");
    fields.remove("backend");
    let mut legacy = Mapping::new();
    legacy.insert("nick".into(), nick.into());
    legacy.insert("directory".into(), directory.into());
    legacy.extend(fields);
    Ok(Hosted::Yes(Value::Mapping(legacy)))
}

/// The entry with `suffix` in a `culture.yaml`: its `agents:` list, or the file itself.
fn entry_for(document: &Value, suffix: &str) -> Option<Value> {
    let candidates = match document.get("agents") {
        Some(Value::Sequence(agents)) => agents.clone(),
        _ => vec![document.clone()],
    };
    candidates
        .into_iter()
        .filter(Value::is_mapping)
        .find(|entry| entry.get("suffix").and_then(Value::as_str) == Some(suffix))
}

/// Why an agent entry is archived (`archived: true`), or `None`.
fn archived(entry: &Value) -> Option<String> {
    if entry.get("archived").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let text = |key: &str| {
        entry
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (since, reason) = (text("archived_at"), text("archived_reason"));
    let mut why = "archived".to_owned();
    if !since.is_empty() {
        why.push_str(&format!(" since {since}"));
    }
    if !reason.is_empty() {
        why.push_str(&format!(" ({reason})"));
    }
    Some(format!("{why}; not hosted"))
}

/// Takes Culture's archive keys out of an entry that is not archived (`archived: false`,
/// or none); an `archived` that is not a boolean stays, for the checker to warn about.
fn forget_archive_keys(entry: &mut Value) {
    let Value::Mapping(fields) = entry else {
        return;
    };
    if fields.get("archived").is_none_or(Value::is_bool) {
        for key in ["archived", "archived_at", "archived_reason"] {
            fields.remove(key);
        }
    }
}

/// Keys every manifest carries that codexd understands and does not use (module doc):
/// `presence`, `server.archived*` (Culture archives each agent as well) and
/// `supervisor.thinking`. (`telemetry.audit_*` stays: codexd writes the audit log it asks
/// for.)
fn understood_culture_keys(value: &mut Value) {
    take(value, "presence");
    if let Some(Value::Mapping(server)) = value.get_mut("server") {
        server.retain(|key, _| !key.as_str().is_some_and(|k| k.starts_with("archived")));
    }
    if let Some(Value::Mapping(telemetry)) = value.get_mut("telemetry") {
        if telemetry.get("service_name").and_then(Value::as_str) == Some(AGENTIRC_SERVICE_NAME) {
            telemetry.remove("service_name");
        }
    }
    if let Some(Value::Mapping(supervisor)) = value.get_mut("supervisor") {
        supervisor.remove("thinking");
        if !supervisor.contains_key("enabled") {
            supervisor.insert("enabled".into(), false.into());
        }
    }
}

/// codexd's own keys laid over Culture's document: a mapping over a mapping key by key,
/// anything else replaces.
fn overlay(base: &mut Value, own: Value) {
    let (Value::Mapping(base), Value::Mapping(own)) = (base, own) else {
        return;
    };
    for (key, value) in own {
        match (base.get_mut(&key), value) {
            (Some(Value::Mapping(section)), Value::Mapping(keys)) => section.extend(keys),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Removes `key` from a mapping, returning its value.
fn take(value: &mut Value, key: &str) -> Option<Value> {
    match value {
        Value::Mapping(mapping) => mapping.remove(key),
        _ => None,
    }
}

/// Reads and parses Culture's file named by `culture:`.
fn read_yaml(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_yaml(&text).map_err(|message| ConfigError::Syntax {
        message: format!("{}: {message}", path.display()),
    })
}

/// YAML text to a value, merge keys applied; an empty document is null.
pub(super) fn parse_yaml(text: &str) -> Result<Value, String> {
    let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    value.apply_merge().map_err(|e| e.to_string())?;
    Ok(value)
}

fn invalid(path: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        errors: vec![Diagnostic::new(path, message)],
    }
}
