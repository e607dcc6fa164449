//! What the `repo` child shows: its jobs (`status`, IPC `repo_jobs`) and what they came to.

use serde::Serialize;

use super::RepoJobsState;

/// One job in `status` and `repo_jobs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    /// Its id.
    pub id: u64,
    /// `queued`, `running`, `cancelling`.
    pub state: &'static str,
    /// While running: `cloning`, `branching`, `turn`, `committing`, `pushing`.
    pub phase: Option<&'static str>,
    /// The remote, without credentials.
    pub remote: String,
    /// The branch.
    pub branch: String,
    /// Where it reports.
    pub report_to: String,
    /// Its attempt (1, or 2 after a restart cut the first off).
    pub attempt: u32,
    /// Seconds since this attempt started.
    pub elapsed_s: Option<f64>,
}

/// Jobs ended, by outcome (outlives restarts of the actor).
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStats {
    /// Pushed a commit (or found it pushed).
    pub pushed: u64,
    /// Ended with nothing to push.
    pub no_changes: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl RepoJobsState {
    pub(super) fn known_ids(&self) -> Vec<u64> {
        let queued = self.queue.iter().map(|record| record.id);
        self.running.keys().copied().chain(queued).collect()
    }

    pub(super) fn views(&self) -> Vec<JobView> {
        let running = self.running.values().map(|running| JobView {
            id: running.record.id,
            state: if running.cancel_requested {
                "cancelling"
            } else {
                "running"
            },
            phase: Some(running.phase),
            remote: crate::redact::url(&running.record.remote),
            branch: running.record.branch.clone(),
            report_to: running.record.report_to.clone(),
            attempt: running.record.attempts,
            elapsed_s: Some(running.started.elapsed().as_secs_f64()),
        });
        let queued = self.queue.iter().map(|record| JobView {
            id: record.id,
            state: "queued",
            phase: None,
            remote: crate::redact::url(&record.remote),
            branch: record.branch.clone(),
            report_to: record.report_to.clone(),
            attempt: record.attempts,
            elapsed_s: None,
        });
        running.chain(queued).collect()
    }

    pub(super) fn status(&self) -> serde_json::Value {
        let jobs = self.views();
        let stats = self.stats().clone();
        let summary = format!(
            "{} job(s) running, {} queued",
            self.running.len(),
            self.queue.len()
        );
        serde_json::json!({
            "remotes": self.settings.remotes.iter().map(|r| crate::redact::url(r)).collect::<Vec<_>>(),
            "max_jobs": self.settings.max_jobs,
            "jobs": jobs,
            "ended": stats,
            "summary": summary,
        })
    }

    pub(super) fn stats(&self) -> std::sync::MutexGuard<'_, JobStats> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
