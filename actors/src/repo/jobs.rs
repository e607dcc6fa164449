//! The `repo` child: an agent's repository jobs, run beside its turns. A job is the
//! workflow of [`super::workflow`] on the agent's own codex process, in a workspace of its
//! own, journaled ([`super::journal`]) so that a daemon restart re-runs what was cut off.
//!
//! | message        | from                                 | does                                           |
//! |----------------|--------------------------------------|------------------------------------------------|
//! | `Start`        | IPC `repo_run`, the `repo_run` tool  | checks, journals, queues; answers the job id   |
//! | `Cancel`       | IPC `repo_cancel`, `codexd repo cancel` | a queued job is dropped; a running one is stopped (git killed, turn interrupted): nothing is pushed after it |
//! | `List`         | IPC `repo_jobs`                      | the jobs queued and running                    |
//! | `Phase`        | a job's progress                     | what `status` shows                            |
//! | `Finished`     | a job's task                         | reported in its channel, forgotten; the next one starts (a job whose codex died or went silent under it runs once more, as after a restart) |
//!
//! Never pushed twice: each job's commit carries `Codexd-Job: <nick>/<id>.<nonce>`; every
//! attempt looks for it on `origin/<branch>` after cloning (and after a rejected push) and,
//! when it is there, reports that commit instead of pushing again. A push is never cut in
//! half: a cancel that arrives during it lets it finish, and says so.
//!
//! What goes to the job's channel, through the `irc` actor's sanitising send path:
//! `[job 3, 0s] cloning <remote> for branch <b>`, `[job 3, 1s] codex is working on: <task>`,
//! `[job 3, 9s] codex done (2 tool calls)`, `[job 3, 9s] pushing <sha> to origin/<b>`, then one of
//! `[job 3] pushed: branch=<b> commit=<sha> target=origin/<b>`, `[job 3] no changes: nothing
//! pushed`, `[job 3] failed: <why>`, `[job 3] cancelled; nothing was pushed`.
//!
//! | part                                          | module     |
//! |-----------------------------------------------|------------|
//! | settings, a request, the allowed remotes      | `settings` |
//! | starting one attempt of a job                 | `launch`   |
//! | what `status` and `repo_jobs` show            | `view`     |

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::journal::{JobJournal, JobRecord, MAX_ATTEMPTS};
use super::report::{self, Reporter};
use super::{Cancel, RepoError, validate};
use crate::child::{ChildFactory, ChildHandle, ControlMsg, Report, spawn_linked};
use crate::fault;
use crate::trace::TraceCtx;

mod launch;
mod settings;
mod view;

pub use settings::{JobPeers, JobRequest, JobSettings, allowed};
pub use view::{JobStats, JobView};

/// How long a stopping `repo` child waits for its jobs to stop (git killed, turn interrupted).
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Messages of the [`RepoJobs`] actor.
#[derive(Debug)]
pub enum RepoJobsMessage {
    /// Supervisor requests (status, faults).
    Control(ControlMsg),
    /// Accept a job: its id, or why not.
    Start {
        /// The job.
        request: JobRequest,
        /// The request (tool call, IPC request) it continues.
        trace: TraceCtx,
        /// The job's id, or the refusal.
        reply: RpcReplyPort<Result<u64, String>>,
    },
    /// Stop job `job`: what was done, or why not.
    Cancel {
        /// The job's id.
        job: u64,
        /// `cancelled job 3` / `cancelling job 3 …`, or the refusal.
        reply: RpcReplyPort<Result<String, String>>,
    },
    /// The jobs queued and running.
    List {
        /// Them.
        reply: RpcReplyPort<Vec<JobView>>,
    },
    /// A running job reached a phase.
    Phase {
        /// The job.
        id: u64,
        /// Its attempt (an older attempt's news is dropped).
        attempt: u32,
        /// The phase.
        phase: &'static str,
    },
    /// A job's task ended.
    Finished {
        /// The job.
        id: u64,
        /// Its attempt.
        attempt: u32,
        /// How.
        result: Result<super::Outcome, RepoError>,
    },
}

impl From<ControlMsg> for RepoJobsMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// Starts the actor; keeps the counters across its restarts.
pub struct RepoJobsFactory {
    settings: Arc<JobSettings>,
    peers: JobPeers,
    stats: Arc<Mutex<JobStats>>,
}

impl RepoJobsFactory {
    /// A factory for `settings`.
    pub fn new(settings: JobSettings, peers: JobPeers) -> Self {
        Self {
            settings: Arc::new(settings),
            peers,
            stats: Arc::default(),
        }
    }
}

impl ChildFactory for RepoJobsFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let args = RepoJobsArgs {
            settings: self.settings.clone(),
            peers: self.peers.clone(),
            stats: self.stats.clone(),
        };
        spawn_linked(RepoJobs, args, supervisor)
    }
}

/// The actor.
pub struct RepoJobs;

/// What each instance starts with.
pub struct RepoJobsArgs {
    settings: Arc<JobSettings>,
    peers: JobPeers,
    stats: Arc<Mutex<JobStats>>,
}

/// A job whose task runs.
struct Running {
    record: JobRecord,
    cancel: Cancel,
    task: JoinHandle<()>,
    started: Instant,
    phase: &'static str,
    cancel_requested: bool,
}

/// The actor's state.
pub struct RepoJobsState {
    settings: Arc<JobSettings>,
    peers: JobPeers,
    stats: Arc<Mutex<JobStats>>,
    myself: ActorRef<RepoJobsMessage>,
    journal: JobJournal,
    queue: VecDeque<JobRecord>,
    running: BTreeMap<u64, Running>,
    reporter: Reporter,
}

impl Drop for RepoJobsState {
    /// However the actor ends, its jobs stop (their files stay: the next start re-runs them).
    fn drop(&mut self) {
        for running in self.running.values() {
            running.cancel.cancel();
        }
    }
}

impl Actor for RepoJobs {
    type Msg = RepoJobsMessage;
    type State = RepoJobsState;
    type Arguments = RepoJobsArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RepoJobsMessage>,
        args: RepoJobsArgs,
    ) -> Result<RepoJobsState, ActorProcessingErr> {
        let (journal, pending, set_aside) = JobJournal::open(&args.settings.dir)?;
        let nick = &args.settings.nick;
        for path in &set_aside {
            tracing::warn!(agent.nick = %nick, path = %path.display(), "unreadable repository job file set aside");
        }
        let ids: Vec<u64> = pending.iter().map(|record| record.id).collect();
        journal.clear_finished(&ids);
        let mut state = RepoJobsState {
            reporter: Reporter::start(args.peers.irc.clone()),
            settings: args.settings,
            peers: args.peers,
            stats: args.stats,
            myself: myself.clone(),
            journal,
            queue: VecDeque::new(),
            running: BTreeMap::new(),
        };
        for record in pending {
            state.resume(record);
        }
        state.peers.link.set(myself);
        state.next();
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RepoJobsMessage>,
        msg: RepoJobsMessage,
        state: &mut RepoJobsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RepoJobsMessage::Control(control) => return state.on_control(control).await,
            RepoJobsMessage::Start {
                request,
                trace,
                reply,
            } => {
                let _ = reply.send(state.start(request, trace));
            }
            RepoJobsMessage::Cancel { job, reply } => {
                let _ = reply.send(state.cancel(job));
            }
            RepoJobsMessage::List { reply } => {
                let _ = reply.send(state.views());
            }
            RepoJobsMessage::Phase { id, attempt, phase } => state.on_phase(id, attempt, phase),
            RepoJobsMessage::Finished {
                id,
                attempt,
                result,
            } => state.finished(id, attempt, result),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RepoJobsMessage>,
        state: &mut RepoJobsState,
    ) -> Result<(), ActorProcessingErr> {
        state.peers.link.clear(&state.myself);
        // Stopped, not finished: their files stay and the next start re-runs them.
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut state.running)
            .into_values()
            .map(|running| {
                running.cancel.cancel();
                running.task
            })
            .collect();
        let _ = tokio::time::timeout(STOP_WAIT, futures::future::join_all(tasks)).await;
        Ok(())
    }
}

impl RepoJobsState {
    async fn on_control(&mut self, control: ControlMsg) -> Result<(), ActorProcessingErr> {
        match control {
            ControlMsg::Status { reply, .. } => {
                let _ = reply.send(Report::leaf(&self.status()));
                Ok(())
            }
            other => fault::handle_leaf(other, "repo").await,
        }
    }

    /// Checks a request (module docs of [`validate`]; the remote must be one of
    /// `repo.remotes`), journals it and queues it.
    fn start(&mut self, request: JobRequest, trace: TraceCtx) -> Result<u64, String> {
        let remote = validate::remote(&request.remote)?;
        if !allowed(remote.as_str(), &self.settings.remotes) {
            return Err(format!(
                "remote {} is not one this agent may work on (repo.remotes in its config)",
                remote.shown()
            ));
        }
        if remote.is_path() && !std::path::Path::new(remote.as_str()).exists() {
            return Err(validate::REMOTE_FORM.to_owned());
        }
        validate::checkout_name(&remote)?;
        validate::branch(&request.branch)?;
        if let Some(base) = &request.base {
            validate::base_ref(base)?;
        }
        validate::task(&request.task)?;
        let target = request.report_to.trim();
        if target.is_empty() || target.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "cannot report to {target:?}: give a channel (#name) or a nick"
            ));
        }
        let on_file: Vec<u64> = self.known_ids();
        let id = self
            .journal
            .next_id(&on_file)
            .map_err(|e| format!("journal: {e}"))?;
        let record = JobRecord {
            id,
            remote: request.remote,
            branch: request.branch,
            base: request.base,
            task: request.task,
            report_to: target.to_owned(),
            requested_by: request.requested_by,
            attempts: 0,
            nonce: super::journal::nonce(),
            accepted_at: report::epoch_now(),
            trace,
        };
        self.journal
            .write(&record)
            .map_err(|e| format!("journal: {e}"))?;
        tracing::info!(agent.nick = %self.settings.nick, repo.job = id, repo.remote = %remote.shown(), repo.branch = %record.branch, "repository job accepted");
        let line = match self.running.len() >= self.settings.max_jobs {
            true => format!(
                "[job {id}] queued: {} job(s) run before it",
                self.running.len() + self.queue.len()
            ),
            false => format!(
                "[job {id}] accepted: {} on branch {}",
                remote.shown(),
                record.branch
            ),
        };
        self.say(&record, line);
        self.queue.push_back(record);
        self.next();
        Ok(id)
    }

    /// A job found on file at start: re-run (it was cut off), or given up after
    /// [`MAX_ATTEMPTS`].
    fn resume(&mut self, record: JobRecord) {
        if record.attempts >= MAX_ATTEMPTS {
            let line = format!(
                "[job {}] given up: cut off {} times by restarts; look at origin/{} before asking again",
                record.id, record.attempts, record.branch
            );
            self.say(&record, line);
            self.forget(record.id);
            self.stats().failed += 1;
            return;
        }
        if record.attempts > 0 {
            let line = format!(
                "[job {}] cut off by a restart; running it again from a clean checkout (attempt {} of {MAX_ATTEMPTS})",
                record.id,
                record.attempts + 1
            );
            self.say(&record, line);
        }
        self.queue.push_back(record);
    }

    /// Starts queued jobs while fewer than `max_jobs` run.
    fn next(&mut self) {
        while self.running.len() < self.settings.max_jobs {
            let Some(record) = self.queue.pop_front() else {
                return;
            };
            self.launch(record);
        }
    }

    fn cancel(&mut self, job: u64) -> Result<String, String> {
        if let Some(at) = self.queue.iter().position(|record| record.id == job) {
            let record = self.queue.remove(at).expect("found");
            self.say(
                &record,
                format!("[job {job}] cancelled before it started; nothing was pushed"),
            );
            self.forget(job);
            self.stats().cancelled += 1;
            return Ok(format!("cancelled job {job}"));
        }
        let Some(running) = self.running.get_mut(&job) else {
            let known = self.known_ids();
            return Err(format!(
                "no job {job} is queued or running for {} (jobs: {})",
                self.settings.nick,
                report::list(&known)
            ));
        };
        running.cancel_requested = true;
        running.cancel.cancel();
        tracing::info!(agent.nick = %self.settings.nick, repo.job = job, "repository job cancelled");
        Ok(format!(
            "cancelling job {job}: nothing is pushed after this (a push under way finishes)"
        ))
    }

    fn finished(&mut self, id: u64, attempt: u32, result: Result<super::Outcome, RepoError>) {
        let current = self
            .running
            .get(&id)
            .is_some_and(|r| r.record.attempts == attempt);
        let Some(running) = current.then(|| self.running.remove(&id)).flatten() else {
            return; // an attempt the actor already let go
        };
        let record = running.record;
        let elapsed = running.started.elapsed();
        if let Err(error) = &result {
            if report::cut_off(error) && !running.cancel_requested && record.attempts < MAX_ATTEMPTS
            {
                // codex died or went silent under it: as a restart would, run it again.
                tracing::warn!(agent.nick = %self.settings.nick, repo.job = id, error = %error, "repository job cut off; running it again");
                let line = format!(
                    "[job {id}] cut off: its codex process died or stopped answering; running it again from a clean checkout (attempt {} of {MAX_ATTEMPTS})",
                    record.attempts + 1
                );
                self.say(&record, line);
                self.queue.push_front(record);
                self.next();
                return;
            }
        }
        let (line, keep_workspace) = match result {
            Ok(outcome) => {
                let mut stats = self.stats();
                match &outcome {
                    super::Outcome::NoChanges { .. } => stats.no_changes += 1,
                    _ => stats.pushed += 1,
                }
                drop(stats);
                (
                    report::outcome_line(id, &outcome, elapsed, running.cancel_requested),
                    false,
                )
            }
            Err(error) if running.cancel_requested && report::was_cancelled(&error) => {
                self.stats().cancelled += 1;
                (format!("[job {id}] cancelled; nothing was pushed"), false)
            }
            Err(error) => {
                self.stats().failed += 1;
                tracing::warn!(agent.nick = %self.settings.nick, repo.job = id, error = %error, "repository job failed");
                (
                    format!("[job {id}] failed: {}", report::short(&error)),
                    true,
                )
            }
        };
        tracing::info!(agent.nick = %self.settings.nick, repo.job = id, result = %line, "repository job ended");
        self.say(&record, line);
        if !keep_workspace {
            self.journal.clear_workspaces(id, None);
        }
        self.forget(id);
        self.next();
    }

    /// Removes job `id`'s file (it ended and its end was handed to the reporter).
    fn forget(&self, id: u64) {
        if let Err(error) = self.journal.remove(id) {
            tracing::error!(agent.nick = %self.settings.nick, repo.job = id, error = %error, "repository job file not removed; a restart would run the job again (it would find its commit and not push twice)");
        }
    }

    fn say(&self, record: &JobRecord, line: String) {
        self.reporter.say(&record.report_to, line, &record.trace);
    }
}
