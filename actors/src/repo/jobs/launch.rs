//! Starting one attempt of a job: its file rewritten with the attempt, its own workspace,
//! the workflow in a task of its own (a `codexd.repo.job` span following the request), and
//! its progress turned into `status` phases and channel lines.

use tokio::time::Instant;
use tracing::Instrument;

use super::{RepoJobsMessage, RepoJobsState, Running};
use crate::repo::journal::JobRecord;
use crate::repo::report;
use crate::repo::workflow::{RunSpec, Workflow};
use crate::repo::{Cancel, ProgressSink, validate};

impl RepoJobsState {
    pub(super) fn launch(&mut self, mut record: JobRecord) {
        record.attempts += 1;
        let (id, attempt) = (record.id, record.attempts);
        if let Err(error) = self.journal.write(&record) {
            tracing::error!(agent.nick = %self.settings.nick, repo.job = id, error = %error, "repository job not started: its file cannot be written");
            self.say(
                &record,
                format!("[job {id}] failed: its journal cannot be written: {error}"),
            );
            self.forget(id);
            return;
        }
        self.journal.clear_workspaces(id, Some(attempt));
        let spec = match self.spec(&record) {
            Ok(spec) => spec,
            Err(problem) => {
                self.say(&record, format!("[job {id}] failed: {problem}"));
                self.forget(id);
                return;
            }
        };
        let workflow = Workflow {
            git: self.settings.git.clone(),
            turn: self.settings.turn.clone(),
            progress: self.progress(&record),
        };
        let cancel = Cancel::default();
        let span = record.trace.follow(tracing::info_span!(
            "codexd.repo.job",
            agent.nick = %self.settings.nick,
            repo.job = id,
            repo.attempt = attempt,
        ));
        let myself = self.myself.clone();
        let stop = cancel.clone();
        let task = tokio::spawn(
            async move {
                let result = workflow.run(&spec, &stop).await.map(|(outcome, _)| outcome);
                let _ = myself.cast(RepoJobsMessage::Finished {
                    id,
                    attempt,
                    result,
                });
            }
            .instrument(span),
        );
        self.running.insert(
            id,
            Running {
                record,
                cancel,
                task,
                started: Instant::now(),
                phase: "starting",
                cancel_requested: false,
            },
        );
    }

    pub(super) fn spec(&self, record: &JobRecord) -> Result<RunSpec, String> {
        Ok(RunSpec {
            remote: validate::remote(&record.remote)?,
            branch: validate::branch(&record.branch)?,
            base: record.base.as_deref().map(validate::base_ref).transpose()?,
            task: validate::task(&record.task)?,
            root: self.journal.workspace(record.id, record.attempts),
            job: Some(record.marker(&self.settings.nick)),
        })
    }

    /// The job's progress: its phase for `status`, some lines for its channel.
    pub(super) fn progress(&self, record: &JobRecord) -> ProgressSink {
        let (id, attempt) = (record.id, record.attempts);
        let myself = self.myself.clone();
        let reporter = self.reporter.clone();
        let target = record.report_to.clone();
        let trace = record.trace.clone();
        ProgressSink::new(move |progress| {
            if let Some(phase) = report::phase(&progress.progress) {
                let _ = myself.cast(RepoJobsMessage::Phase { id, attempt, phase });
            }
            if let Some(line) = report::progress_line(id, &progress) {
                reporter.say(&target, line, &trace);
            }
        })
    }

    pub(super) fn on_phase(&mut self, id: u64, attempt: u32, phase: &'static str) {
        if let Some(running) = self.running.get_mut(&id) {
            if running.record.attempts == attempt {
                running.phase = phase;
            }
        }
    }
}
