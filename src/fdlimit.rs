//! The open-file limit: at start the daemon raises `RLIMIT_NOFILE`'s soft limit to the hard
//! limit (a systemd service's soft limit is 1024 by default, its hard limit 524288) and warns,
//! with numbers, when the agents it hosts need more descriptors than even that allows.
//!
//! What one agent holds open while it runs (the estimate [`needed`] makes):
//!
//! | descriptor                                   | per agent                 |
//! |----------------------------------------------|---------------------------|
//! | its IRC connection                           | 1                         |
//! | its Culture IPC listener                     | 1                         |
//! | an IPC client, a webhook request, a journal file or an overseer's `codex exec` pipe, at a time | 2 |
//! | its share of a codex process's stdin, stdout, stderr and pidfd | 4 / `agents_per_process` |
//!
//! plus [`BASE`] for the daemon itself (stdio, the control socket and its clients, the
//! runtime's epoll and event fds, telemetry exporters, the audit log). Measured
//! (`cargo bench --bench scale`, idle after start): 100 agents held 254 descriptors with 10
//! codex processes and 222 with 2, i.e. 2 per agent, 4 per process and 14 besides; the
//! estimate leaves room for the transient ones.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors the daemon holds whatever the number of agents.
pub const BASE: u64 = 64;
/// Descriptors an agent holds itself (IRC, IPC listener, two transient).
pub const PER_AGENT: u64 = 4;
/// Descriptors codexd holds for one codex process (stdin, stdout, stderr, pidfd).
pub const PER_PROCESS: u64 = 4;
/// The soft limit asked for when the hard limit is unlimited (Linux's default
/// `fs.nr_open`, above which `setrlimit` fails).
pub const UNLIMITED_CAP: u64 = 1 << 20;

/// The descriptors `agents` agents need with `per_process` agents to a codex process.
///
/// | agents | per_process | needed                    |
/// |--------|-------------|---------------------------|
/// | 0      | 10          | 64                        |
/// | 1      | 10          | 64 + 4 + 4 = 72           |
/// | 100    | 10          | 64 + 400 + 40 = 504       |
/// | 1000   | 50          | 64 + 4000 + 80 = 4144     |
pub fn needed(agents: usize, per_process: usize) -> u64 {
    let agents = agents as u64;
    let per_process = per_process.max(1) as u64;
    let processes = agents.div_ceil(per_process);
    BASE + agents * PER_AGENT + processes * PER_PROCESS
}

/// The soft limit to set, given the current soft and hard limits (`None` is unlimited);
/// `None`: leave it.
///
/// | soft      | hard      | set to            |
/// |-----------|-----------|-------------------|
/// | 1024      | 524288    | 524288            |
/// | 524288    | 524288    | (leave)           |
/// | 1024      | unlimited | [`UNLIMITED_CAP`] |
/// | unlimited | any       | (leave)           |
/// | 2000000   | unlimited | (leave)           |
pub fn raised_soft(soft: Option<u64>, hard: Option<u64>) -> Option<u64> {
    let soft = soft?;
    let target = hard.unwrap_or(UNLIMITED_CAP);
    (soft < target).then_some(target)
}

/// How many descriptors short the limit `soft` (`None` is unlimited) falls for `needed`.
///
/// | needed | soft      | short      |
/// |--------|-----------|------------|
/// | 504    | 1024      | none       |
/// | 4144   | 1024      | 3120       |
/// | 4144   | unlimited | none       |
pub fn shortfall(needed: u64, soft: Option<u64>) -> Option<u64> {
    let soft = soft?;
    (needed > soft).then(|| needed - soft)
}

/// Raises this process's soft limit as far as allowed and logs before and after; warns when
/// `agents` agents (`per_process` to a codex process) need more than the result.
pub fn raise_for(agents: usize, per_process: usize) {
    let before = getrlimit(Resource::Nofile);
    let mut soft = before.current;
    if let Some(target) = raised_soft(before.current, before.maximum) {
        let new = Rlimit {
            current: Some(target),
            maximum: before.maximum,
        };
        match setrlimit(Resource::Nofile, new) {
            Ok(()) => soft = Some(target),
            Err(error) => tracing::warn!(
                soft = ?before.current,
                target,
                error = %error,
                "cannot raise the open-file limit"
            ),
        }
    }
    let needed = needed(agents, per_process);
    tracing::info!(
        soft.before = ?before.current,
        soft.after = ?soft,
        hard = ?before.maximum,
        agents,
        needed,
        "open-file limit"
    );
    if let Some(short) = shortfall(needed, soft) {
        tracing::warn!(
            soft = ?soft,
            hard = ?before.maximum,
            agents,
            needed,
            short,
            "the agents may need more open files than the limit allows: raise the hard limit \
             (LimitNOFILE= in the systemd unit, nofile in limits.conf)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_counts_agents_and_their_share_of_codex_processes() {
        let cases = [
            (0, 10, 64),
            (1, 10, 72),
            (10, 10, 108),
            (11, 10, 116),
            (100, 10, 504),
            (300, 10, 1384),
            (1000, 50, 4144),
            (1000, 10, 4464),
            (5, 0, 64 + 20 + 20),
        ];
        for (agents, per_process, want) in cases {
            assert_eq!(
                needed(agents, per_process),
                want,
                "{agents} agents, {per_process}"
            );
        }
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit_or_the_cap() {
        let cases = [
            (Some(1024), Some(524_288), Some(524_288)),
            (Some(524_288), Some(524_288), None),
            (Some(1024), None, Some(UNLIMITED_CAP)),
            (None, None, None),
            (None, Some(4096), None),
            (Some(2_000_000), None, None),
        ];
        for (soft, hard, want) in cases {
            assert_eq!(raised_soft(soft, hard), want, "soft {soft:?} hard {hard:?}");
        }
    }

    #[test]
    fn a_shortfall_is_the_descriptors_missing() {
        let cases = [
            (504, Some(1024), None),
            (1024, Some(1024), None),
            (4144, Some(1024), Some(3120)),
            (4144, None, None),
        ];
        for (needed, soft, want) in cases {
            assert_eq!(
                shortfall(needed, soft),
                want,
                "needed {needed} soft {soft:?}"
            );
        }
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_least_where_it_was() {
        let before = getrlimit(Resource::Nofile);
        raise_for(1, 10);
        let after = getrlimit(Resource::Nofile);
        assert_eq!(
            after.maximum, before.maximum,
            "the hard limit is never touched"
        );
        match (before.current, after.current) {
            (Some(b), Some(a)) => assert!(a >= b, "soft went down: {b} -> {a}"),
            (None, after) => assert_eq!(after, None),
            (Some(_), None) => {}
        }
    }
}
