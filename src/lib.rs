//! codexd: hosts OpenAI Codex agents on IRC, one supervised actor subtree per agent.
#![forbid(unsafe_code)]

pub mod config;
pub mod env;
pub mod telemetry;
