//! Configuration: Culture's agent-daemon YAML (the legacy `agents.yaml`, or Culture 14's
//! manifest: `server.yaml` plus each agent's `culture.yaml`) plus codexd's own sections,
//! possibly in a file of codexd's own that points at Culture's with `culture:`.
//! Parse, validate, then start (STYLE rule 6).
//!
//! [`parse`] turns YAML text into a typed, defaulted, validated [`Config`], or reports every
//! problem in the file at once, each with its key path (`agents[2].nick: ...`), in file order.
//! Unknown keys are errors (with a did-you-mean); Culture keys that codexd deliberately does not
//! use come back as warnings. docs/config.md is the reference for every key.

mod admission;
mod agents;
mod attention;
mod audit;
mod codex;
mod conversations;
mod culture;
mod daemon;
mod names;
mod paths;
mod reader;
mod repo;
mod restart;
mod secrets;
mod sections;
mod server;
mod telemetry;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_conversations;
#[cfg(test)]
mod tests_culture;
#[cfg(test)]
mod tests_manifest;
#[cfg(test)]
mod tests_reader;
#[cfg(test)]
mod tests_secrets;
#[cfg(test)]
mod tests_sections;
mod types;

use std::fmt;
use std::path::{Path, PathBuf};

pub(crate) use telemetry::percent_decode;
pub use types::*;

use crate::env::Env;

/// The variable that names the config file when `--config` is not given.
pub const CONFIG_ENV_VAR: &str = "CODEXD_CONFIG";

/// A parsed and validated config plus the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// Ignored keys and other things worth telling the operator, in file order.
    pub warnings: Vec<Diagnostic>,
}

/// One problem (or warning) at one key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The key path, e.g. `agents[2].nick`; empty for the document as a whole.
    pub path: String,
    /// What is wrong, e.g. `must start with "spark-"`.
    pub message: String,
}

impl Diagnostic {
    fn new(path: &str, message: String) -> Self {
        Diagnostic {
            path: path.to_owned(),
            message,
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `agents[2].nick: must start with "spark-"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.is_empty() {
            true => write!(f, "{}", self.message),
            false => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to load config '{}': {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not well-formed YAML.
    #[error("config is not valid YAML: {message}")]
    Syntax {
        /// serde_yaml_ng's message, with line and column where it has them.
        message: String,
    },
    /// The YAML is well-formed but some values are not acceptable.
    #[error("{}", invalid_summary(errors))]
    Invalid {
        /// Every error, in file order.
        errors: Vec<Diagnostic>,
    },
}

fn invalid_summary(errors: &[Diagnostic]) -> String {
    let lines: Vec<String> = errors.iter().map(|error| format!("\n  {error}")).collect();
    let plural = if errors.len() == 1 { "" } else { "s" };
    format!(
        "invalid config ({} error{plural}):{}",
        errors.len(),
        lines.concat()
    )
}

impl Config {
    /// The agent with exactly this nick (case-sensitive, as Culture does).
    pub fn agent(&self, nick: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|agent| agent.nick == nick)
    }
}

/// The config file to read when none is given (`--config` wins over all of these):
///
/// | order | path                                                                 | when          |
/// |-------|----------------------------------------------------------------------|---------------|
/// | 1     | `$CODEXD_CONFIG`, `~` expanded                                       | set           |
/// | 2     | `$XDG_CONFIG_HOME/codexd/config.yaml`, else `~/.config/codexd/config.yaml` | it exists |
/// | 3     | `~/.culture/server.yaml` (Culture 14's manifest)                     | it exists     |
/// | 4     | `~/.culture/agents.yaml` (the legacy file, or the manifest Culture's CLI migrated it into) | otherwise |
///
/// `exists` is asked about 2 and 3 (injected: tests need no files). Relative paths are
/// returned as they are, i.e. relative to the working directory.
pub fn default_path(env: &Env, exists: &dyn Fn(&Path) -> bool) -> Result<PathBuf, ConfigError> {
    if let Some(text) = env.var(CONFIG_ENV_VAR) {
        let problem = format!(
            "{} starts with \"~\" but HOME is unset",
            reader::quote(text)
        );
        return env.expand_tilde(text).ok_or(ConfigError::Invalid {
            errors: vec![Diagnostic::new(CONFIG_ENV_VAR, problem)],
        });
    }
    let own = match env.var("XDG_CONFIG_HOME") {
        Some(dir) => Some(PathBuf::from(dir).join(paths::OWN_CONFIG)),
        None => env
            .home()
            .map(|home| home.join(".config").join(paths::OWN_CONFIG)),
    };
    let culture = [paths::MANIFEST_CONFIG, paths::LEGACY_CONFIG].map(|p| env.expand_tilde(p));
    let found = own
        .into_iter()
        .chain(culture[0].clone())
        .find(|path| exists(path));
    found.or(culture[1].clone()).ok_or_else(|| {
        let problem = format!(
            "unset, so the default config path {} cannot be resolved; set HOME or {CONFIG_ENV_VAR}",
            reader::quote(paths::LEGACY_CONFIG)
        );
        ConfigError::Invalid {
            errors: vec![Diagnostic::new("HOME", problem)],
        }
    })
}

/// Reads `path` and [`parse`]s it.
pub fn load(path: &Path, env: &Env) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, env)
}

/// Parses and validates config text. An empty document is a valid config with no agents.
/// Culture's manifest and a `culture:` key read the files they name (see `culture.rs`).
pub fn parse(text: &str, env: &Env) -> Result<Loaded, ConfigError> {
    let value = culture::parse_yaml(text).map_err(|message| ConfigError::Syntax { message })?;
    let assembled = culture::assemble(value, env)?;
    let mut report = reader::Report::default();
    let config = daemon::config(&reader::Node::root(&assembled.value), env, &mut report);
    let (mut errors, mut warnings) = report.finish();
    assembled.relabel(&mut errors);
    assembled.relabel(&mut warnings);
    let errors = [assembled.errors.clone(), errors].concat();
    let warnings = [assembled.notices.clone(), warnings].concat();
    match errors.is_empty() {
        true => Ok(Loaded { config, warnings }),
        false => Err(ConfigError::Invalid { errors }),
    }
}
