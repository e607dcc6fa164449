//! codexd's supervision tree: one supervisor implementation (with per-child circuit breakers)
//! used for the Host and for every agent, plus the agents' children.
#![forbid(unsafe_code)]

pub mod trace;
