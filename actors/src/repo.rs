//! Repository work (codexd-spec §18, every defect of §18.5 fixed): clone a remote into a
//! managed workspace, let codex do a task on a branch, commit, push. The same workflow runs
//! in-process for `codexd repo run` and as an agent's job.
//!
//! | part                                             | module        |
//! |--------------------------------------------------|---------------|
//! | what a job is given, checked (pure)              | [`validate`]  |
//! | where the workspace may be; wiping it safely     | [`workspace`] |
//! | the `git` binary: timeouts, no prompts, reaped   | [`git`]       |
//! | the codex turn, on the agents' codex machinery   | [`turn`]      |
//! | the steps: run, push, clean                      | [`workflow`]  |
//! | an agent's jobs: the `repo` child                | [`jobs`], [`journal`], `report` |
//!
//! What the caller sees while it runs is [`Progress`]; the run can be stopped at any step
//! with a [`Cancel`] (git is killed, the turn interrupted, nothing is pushed after it).

pub mod git;
pub mod jobs;
pub mod journal;
mod report;
pub mod turn;
pub mod validate;
pub mod workflow;
pub mod workspace;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use git::{Git, GitError};
pub use turn::{TurnError, TurnSettings};
pub use workflow::{Outcome, RunSpec, Timings};

/// Stops a run: git calls are killed, the codex turn is interrupted, nothing is committed
/// or pushed after it. Every clone is the same switch.
#[derive(Debug, Clone)]
pub struct Cancel(Arc<watch::Sender<bool>>);

impl Default for Cancel {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl Cancel {
    /// Flips the switch (for good).
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// Whether it was flipped.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once it is flipped.
    pub async fn cancelled(&self) {
        let mut flipped = self.0.subscribe();
        // The sender lives in `self`: the channel cannot close while we wait.
        let _ = flipped.wait_for(|cancelled| *cancelled).await;
    }
}

/// A step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Emptying the workspace.
    Prepare,
    /// `git clone`.
    Clone,
    /// `git checkout -B` (after `git fetch` for a base).
    Branch,
    /// The codex turn.
    Turn,
    /// `git add` and `git commit`.
    Commit,
    /// `git push`.
    Push,
}

impl Step {
    /// How progress names it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Prepare => "preparing the workspace",
            Step::Clone => "cloning",
            Step::Branch => "branching",
            Step::Turn => "running codex on",
            Step::Commit => "committing",
            Step::Push => "pushing",
        }
    }
}

/// What happened, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A step began; `detail` says on what (a redacted remote, a branch, a sha).
    Step {
        /// Which.
        step: Step,
        /// On what.
        detail: String,
    },
    /// The model started a tool call: its type and a short, secret-free description.
    Tool {
        /// `commandExecution`, `fileChange`, …
        kind: String,
        /// What it does (a command's first words, the files a patch touches).
        detail: String,
    },
    /// The turn is still running (every [`HEARTBEAT`]).
    Working,
    /// The turn ended well: tool calls made, agent messages.
    TurnDone {
        /// Tool calls in the turn.
        tools: usize,
        /// The agent's last message, if any.
        said: Option<String>,
    },
}

/// How often a running turn reports [`Progress::Working`].
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// One progress report: what happened, and how long the run has been going.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Since the run started.
    pub elapsed: Duration,
    /// What.
    pub progress: Progress,
}

/// Where a run's progress goes (the terminal, an IRC channel). Called from the run's task:
/// it must not block.
#[derive(Clone)]
pub struct ProgressSink(Arc<dyn Fn(Report) + Send + Sync>);

impl ProgressSink {
    /// A sink calling `f` for each report.
    pub fn new(f: impl Fn(Report) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A sink that drops everything.
    pub fn none() -> Self {
        Self::new(|_| {})
    }

    /// Hands `report` over.
    pub fn report(&self, report: Report) {
        (self.0)(report)
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// Why a run did not finish; [`RepoError::is_input`] tells the user's mistakes (exit 1)
/// from the environment's (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Bad input (a remote, branch, ref, task or workspace): nothing was done.
    #[error("{0}")]
    Input(String),
    /// A workspace that is not codexd's, or a file-system step that failed.
    #[error(transparent)]
    Workspace(#[from] workspace::WorkspaceError),
    /// git failed, timed out or was killed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The codex turn failed, timed out or could not run: nothing was committed.
    #[error("{0}; nothing was committed")]
    Turn(#[from] TurnError),
    /// The checkout is not what it must be (e.g. `repo push` outside a checkout).
    #[error("{0}")]
    Checkout(String),
    /// The run was cancelled: nothing was pushed after it.
    #[error("cancelled; nothing was pushed")]
    Cancelled,
}

impl RepoError {
    /// A mistake in what the user gave (exit 1), not in the environment (exit 2).
    pub fn is_input(&self) -> bool {
        matches!(self, RepoError::Input(_))
    }
}
