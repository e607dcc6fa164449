//! codexd's supervision tree: one supervisor implementation (with per-child circuit breakers)
//! used for the Host and for every agent, plus the agents' children.
#![forbid(unsafe_code)]

pub mod agent;
pub mod attention;
pub mod audit;
pub mod child;
pub mod codex;
mod durable;
pub mod events;
pub mod fault;
pub mod genai;
pub mod grid;
mod group_kill;
pub mod host;
pub mod irc;
pub mod link;
pub mod overseer;
pub mod pause;
pub mod redact;
pub mod repo;
pub mod restart;
pub mod runner;
pub mod socket;
mod status;
pub mod supervisor;
pub mod test_child;
pub mod tools;
pub mod trace;
pub mod webhook;
