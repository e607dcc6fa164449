//! The repository-job verbs (codexd's own, beside Culture's): carried out by the agent's
//! `repo` child ([`crate::repo::jobs`]), for IPC clients, the `repo_run` tool and
//! `codexd repo cancel` alike.
//!
//! | verb          | fields                                         | answer `data`      | refused when                        |
//! |---------------|------------------------------------------------|--------------------|-------------------------------------|
//! | `repo_run`    | `remote`, `branch`, `task`, `base`?, `channel` | `{"job": <id>}`    | no `repo:` for the agent; a remote not in `repo.remotes`; a bad branch, ref or task (the `repo run` messages) |
//! | `repo_cancel` | `job`                                          | `{"job": <id>, "result": "…"}` | no such job queued or running |
//! | `repo_jobs`   | —                                              | `{"jobs": [...]}`  | no `repo:` for the agent            |

use std::time::Duration;

use serde_json::{Value, json};

use super::protocol::RepoRun;
use crate::link::{CallError, Link};
use crate::repo::jobs::{JobRequest, RepoJobsMessage};
use crate::trace::TraceCtx;

/// What the verbs reach of the agent: its nick and its `repo` child, if it takes jobs.
pub(super) struct Jobs<'a> {
    /// The agent's nick.
    pub(super) nick: &'a str,
    /// Whether the agent has `repo:` in its config.
    pub(super) repo_jobs: bool,
    /// Its `repo` child.
    pub(super) repo: &'a Link<RepoJobsMessage>,
}

/// How long a request waits for the `repo` child (it answers from memory and one fsync).
const REPO_TIMEOUT: Duration = Duration::from_secs(10);

/// The refusal when the agent takes no jobs, or its `repo` child is down.
fn unavailable(agent: &Jobs<'_>, error: CallError) -> String {
    match (agent.repo_jobs, error) {
        (false, _) => format!(
            "{} takes no repository jobs: give it `repo: {{remotes: [...]}}` in the config",
            agent.nick
        ),
        (true, CallError::NotRunning) => "the agent's repo child is not running".to_owned(),
        (true, CallError::Timeout(after)) => {
            format!(
                "the agent's repo child did not answer within {}s",
                after.as_secs()
            )
        }
    }
}

/// `repo_run`: the job's id once it is journaled.
pub(super) async fn run(
    agent: &Jobs<'_>,
    run: RepoRun,
    by: &str,
    trace: TraceCtx,
) -> Result<Value, String> {
    let request = JobRequest {
        remote: run.remote,
        branch: run.branch,
        task: run.task,
        base: run.base,
        report_to: run.channel,
        requested_by: by.to_owned(),
    };
    let make = |reply| RepoJobsMessage::Start {
        request,
        trace,
        reply,
    };
    match agent.repo.call(make, REPO_TIMEOUT).await {
        Ok(answer) => answer.map(|job| json!({ "job": job })),
        Err(error) => Err(unavailable(agent, error)),
    }
}

/// `repo_cancel`.
pub(super) async fn cancel(agent: &Jobs<'_>, job: u64) -> Result<Value, String> {
    let make = |reply| RepoJobsMessage::Cancel { job, reply };
    match agent.repo.call(make, REPO_TIMEOUT).await {
        Ok(answer) => answer.map(|result| json!({ "job": job, "result": result })),
        Err(error) => Err(unavailable(agent, error)),
    }
}

/// `repo_jobs`.
pub(super) async fn jobs(agent: &Jobs<'_>) -> Result<Value, String> {
    let make = |reply| RepoJobsMessage::List { reply };
    match agent.repo.call(make, REPO_TIMEOUT).await {
        Ok(jobs) => Ok(json!({ "jobs": jobs })),
        Err(error) => Err(unavailable(agent, error)),
    }
}
