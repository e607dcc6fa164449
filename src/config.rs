//! Configuration: Culture's agent-daemon YAML plus codexd's own sections.
//! Parse, validate, then start (STYLE rule 6).

mod types;

pub use types::*;
