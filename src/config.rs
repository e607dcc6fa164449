//! Configuration: Culture's agent-daemon YAML plus codexd's own sections.
//! Parse, validate, then start (STYLE rule 6).

mod types;

pub use types::*;
// TEMPORARY STUB (not committed)
use crate::env::Env;
use std::path::{Path, PathBuf};
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    pub message: String,
}
impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{message}")]
    Syntax { message: String },
    #[error("invalid")]
    Invalid { errors: Vec<Diagnostic> },
}
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}
pub fn default_path(_env: &Env) -> Result<PathBuf, ConfigError> {
    todo!()
}
pub fn load(_path: &Path, _env: &Env) -> Result<Loaded, ConfigError> {
    todo!()
}
pub fn parse(_text: &str, _env: &Env) -> Result<Loaded, ConfigError> {
    todo!()
}
impl Config {
    pub fn agent(&self, nick: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.nick == nick)
    }
}
