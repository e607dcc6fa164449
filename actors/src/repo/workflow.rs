//! The steps of `repo run`, `repo push` and `repo clean` (codexd-spec §18.2–18.4, with every
//! defect of §18.5 fixed). Each git call is a [`Git`] call (timeout, no prompt, reaped);
//! user data follows `--end-of-options` or `--`.
//!
//! `run` (a `codexd.repo.run` span):
//!
//! | # | step                                                        | on failure         |
//! |---|-------------------------------------------------------------|--------------------|
//! | 1 | the workspace emptied and marked ([`workspace::prepare`])    | exit 2             |
//! | 2 | `git clone -- <remote> <root>/<name>`                       | exit 2             |
//! | 3 | `git config user.email codexd@example.invalid`, `user.name codexd`; the work tree's top level must be the checkout | exit 2 |
//! | 4 | with a base: `git fetch origin`, `git rev-parse --verify --end-of-options <ref>^{commit}`, `git checkout -B <branch> <sha> --`; without: `git checkout -B <branch> --` | exit 2 |
//! | 5 | a job's re-run: a commit of this job already on `origin/<branch>` ends the run as [`Outcome::AlreadyPushed`] | — |
//! | 6 | the codex turn ([`super::turn`]); failed, timed out or cancelled: nothing committed | exit 2 |
//! | 7 | `git status --porcelain` empty: [`Outcome::NoChanges`], nothing pushed | —     |
//! | 8 | `git add -A`, `git commit --no-verify --no-gpg-sign -m "codexd: <first line>"` (+ the job's trailer), `git rev-parse --short HEAD` | exit 2 |
//! | 9 | not cancelled: `git push --end-of-options origin HEAD:refs/heads/<branch>` (never forced; once started, a cancel lets it finish); a job's rejected push: its commit found on the remote is [`Outcome::AlreadyPushed`] | exit 2 |
//!
//! The checkout is left in place on failure, so `repo push` can push it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::git::{Git, GitOutput};
use super::turn::{self, TurnSettings};
use super::validate::{self, BaseRef, Branch, Remote};
use super::{Cancel, Progress, ProgressSink, RepoError, Report, Step, workspace};

/// Upstream's commit identity, set in the checkout only.
const AUTHOR_EMAIL: &str = "codexd@example.invalid";
const AUTHOR_NAME: &str = "codexd";
/// The trailer that names an agent's job in its commit.
pub const JOB_TRAILER: &str = "Codexd-Job";

/// One run's input, already checked.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// What to clone.
    pub remote: Remote,
    /// The branch to create and push.
    pub branch: Branch,
    /// What to start the branch from (default: the clone's HEAD).
    pub base: Option<BaseRef>,
    /// The task for codex.
    pub task: String,
    /// The workspace root (checked: inside the current directory, or a job's own).
    pub root: PathBuf,
    /// An agent's job: `<nick>/<id>`, written as a [`JOB_TRAILER`] so that a re-run finds
    /// the commit an earlier attempt pushed instead of pushing another.
    pub job: Option<String>,
}

/// How a run ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// codex changed nothing: nothing was committed or pushed.
    NoChanges {
        /// The checkout.
        checkout: PathBuf,
        /// The branch.
        branch: String,
    },
    /// One commit pushed to `origin/<branch>`.
    Pushed {
        /// The checkout.
        checkout: PathBuf,
        /// The branch.
        branch: String,
        /// Its short sha.
        commit: String,
    },
    /// A job's earlier attempt had pushed its commit already: nothing was done again.
    AlreadyPushed {
        /// The checkout.
        checkout: PathBuf,
        /// The branch.
        branch: String,
        /// The earlier attempt's short sha.
        commit: String,
    },
}

impl Outcome {
    /// Upstream's stdout line.
    pub fn line(&self) -> String {
        match self {
            Outcome::NoChanges { checkout, branch } => {
                format!(
                    "no changes: workspace={} branch={branch}",
                    checkout.display()
                )
            }
            Outcome::Pushed {
                checkout,
                branch,
                commit,
            }
            | Outcome::AlreadyPushed {
                checkout,
                branch,
                commit,
            } => format!(
                "pushed: workspace={} branch={branch} commit={commit} target=origin/{branch}",
                checkout.display()
            ),
        }
    }
}

/// How long the parts of a run took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Workspace, clone, branch.
    pub clone: Duration,
    /// The codex turn (with its session setup).
    pub turn: Duration,
    /// Status, add, commit and push.
    pub commit_push: Duration,
}

/// What a run needs beyond its input.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// How git runs.
    pub git: Git,
    /// How the turn runs (its thread's cwd is set to the checkout).
    pub turn: TurnSettings,
    /// Where progress goes.
    pub progress: ProgressSink,
}

impl Workflow {
    /// `repo run` (module table).
    pub async fn run(
        &self,
        spec: &RunSpec,
        cancel: &Cancel,
    ) -> Result<(Outcome, Timings), RepoError> {
        let span = tracing::info_span!(
            "codexd.repo.run",
            repo.remote = %spec.remote.shown(),
            repo.branch = %spec.branch,
            repo.job = spec.job.as_deref().unwrap_or(""),
            repo.commit = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let result = self.steps(spec, cancel).instrument(span.clone()).await;
        let outcome = match &result {
            Ok((Outcome::NoChanges { .. }, _)) => "no_changes",
            Ok((Outcome::Pushed { commit, .. } | Outcome::AlreadyPushed { commit, .. }, _)) => {
                span.record("repo.commit", commit.as_str());
                "pushed"
            }
            Err(RepoError::Cancelled) => "cancelled",
            Err(_) => "error",
        };
        span.record("outcome", outcome);
        result
    }

    async fn steps(
        &self,
        spec: &RunSpec,
        cancel: &Cancel,
    ) -> Result<(Outcome, Timings), RepoError> {
        let started = Instant::now();
        let mut timings = Timings::default();
        if spec.remote.is_path() && !Path::new(spec.remote.as_str()).exists() {
            return Err(RepoError::Input(validate::REMOTE_FORM.to_owned()));
        }
        let name = validate::checkout_name(&spec.remote).map_err(RepoError::Input)?;
        let checkout = spec.root.join(&name);
        self.step(started, Step::Prepare, spec.root.display().to_string());
        workspace::prepare(&spec.root)?;
        self.step(started, Step::Clone, spec.remote.shown());
        let clone = [
            "clone",
            "--quiet",
            "--",
            spec.remote.as_str(),
            name.as_str(),
        ];
        self.git("clone", &spec.root, &clone, cancel).await?;
        self.configure(&checkout, cancel).await?;
        self.step(started, Step::Branch, spec.branch.to_string());
        self.branch(&checkout, spec, cancel).await?;
        if let Some(commit) = self.pushed_before(&checkout, spec, cancel).await? {
            let branch = spec.branch.to_string();
            return Ok((
                Outcome::AlreadyPushed {
                    checkout,
                    branch,
                    commit,
                },
                timings,
            ));
        }
        timings.clone = started.elapsed();

        let turn_started = Instant::now();
        self.step(started, Step::Turn, first_line(&spec.task));
        let mut settings = self.turn.clone();
        settings.thread.cwd = checkout.clone();
        turn::run(&settings, &spec.task, &self.progress, started, cancel).await?;
        timings.turn = turn_started.elapsed();

        let committing = Instant::now();
        let status = self
            .git("status", &checkout, &["status", "--porcelain"], cancel)
            .await?;
        if status.stdout.trim().is_empty() {
            timings.commit_push = committing.elapsed();
            let branch = spec.branch.to_string();
            return Ok((Outcome::NoChanges { checkout, branch }, timings));
        }
        let commit = self.commit(&checkout, spec, started, cancel).await?;
        if cancel.is_cancelled() {
            return Err(RepoError::Cancelled);
        }
        self.step(
            started,
            Step::Push,
            format!("{commit} to origin/{}", spec.branch),
        );
        let outcome = self.push(checkout, spec, commit).await?;
        timings.commit_push = committing.elapsed();
        Ok((outcome, timings))
    }

    /// Step 9. A push is never cut in half: a cancel from here on lets it finish. A job's
    /// rejected push may be an earlier attempt's commit already there: then that is the
    /// outcome, and nothing is pushed again.
    async fn push(
        &self,
        checkout: PathBuf,
        spec: &RunSpec,
        commit: String,
    ) -> Result<Outcome, RepoError> {
        let whole = Cancel::default();
        let refspec = format!("HEAD:refs/heads/{}", spec.branch);
        let push = [
            "push",
            "--quiet",
            "--end-of-options",
            "origin",
            refspec.as_str(),
        ];
        let branch = spec.branch.to_string();
        let Err(error) = self.git("push", &checkout, &push, &whole).await else {
            return Ok(Outcome::Pushed {
                checkout,
                branch,
                commit,
            });
        };
        if spec.job.is_none() {
            return Err(error);
        }
        let fetch = ["fetch", "--quiet", "--end-of-options", "origin"];
        self.git("fetch", &checkout, &fetch, &whole).await?;
        match self.pushed_before(&checkout, spec, &whole).await? {
            Some(commit) => Ok(Outcome::AlreadyPushed {
                checkout,
                branch,
                commit,
            }),
            None => Err(error),
        }
    }

    /// The checkout's own identity, and proof that git works in the checkout itself.
    async fn configure(&self, checkout: &Path, cancel: &Cancel) -> Result<(), RepoError> {
        for (key, value) in [("user.email", AUTHOR_EMAIL), ("user.name", AUTHOR_NAME)] {
            self.git("config", checkout, &["config", key, value], cancel)
                .await?;
        }
        verify_toplevel(&self.git, checkout, cancel).await
    }

    /// Step 4 of the module table.
    async fn branch(
        &self,
        checkout: &Path,
        spec: &RunSpec,
        cancel: &Cancel,
    ) -> Result<(), RepoError> {
        let branch = spec.branch.as_str();
        let Some(base) = &spec.base else {
            let args = ["checkout", "--quiet", "-B", branch, "--"];
            self.git("checkout", checkout, &args, cancel).await?;
            return Ok(());
        };
        let fetch = ["fetch", "--quiet", "--end-of-options", "origin"];
        self.git("fetch", checkout, &fetch, cancel).await?;
        let revision = format!("{}^{{commit}}", base.as_str());
        let verify = [
            "rev-parse",
            "--verify",
            "--end-of-options",
            revision.as_str(),
        ];
        let resolved = self
            .git("rev-parse", checkout, &verify, cancel)
            .await
            .map_err(|_| {
                RepoError::Checkout(format!(
                    "base ref '{}' is not a commit in the clone (try origin/<branch>)",
                    base.as_str()
                ))
            })?;
        let sha = resolved.stdout.trim().to_owned();
        let args = ["checkout", "--quiet", "-B", branch, sha.as_str(), "--"];
        self.git("checkout", checkout, &args, cancel).await?;
        Ok(())
    }

    /// A job's commit already on `origin/<branch>` (an earlier attempt pushed it): its
    /// short sha.
    async fn pushed_before(
        &self,
        checkout: &Path,
        spec: &RunSpec,
        cancel: &Cancel,
    ) -> Result<Option<String>, RepoError> {
        let Some(job) = &spec.job else {
            return Ok(None);
        };
        let remote_branch = format!("refs/remotes/origin/{}", spec.branch);
        let exists = [
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            remote_branch.as_str(),
        ];
        if self
            .git("rev-parse", checkout, &exists, cancel)
            .await
            .is_err()
        {
            return Ok(None); // no such branch on the remote yet
        }
        let grep = format!("--grep={JOB_TRAILER}: {job}");
        let log = [
            "log",
            "--fixed-strings",
            grep.as_str(),
            "--format=%h",
            "-n",
            "1",
            "--end-of-options",
            remote_branch.as_str(),
            "--",
        ];
        let found = self.git("log", checkout, &log, cancel).await?;
        let commit = found.stdout.trim();
        Ok((!commit.is_empty()).then(|| commit.to_owned()))
    }

    /// Step 8: everything codex changed, one commit; its short sha.
    async fn commit(
        &self,
        checkout: &Path,
        spec: &RunSpec,
        started: Instant,
        cancel: &Cancel,
    ) -> Result<String, RepoError> {
        let subject = validate::commit_subject(&spec.task);
        self.step(started, Step::Commit, subject.clone());
        self.git("add", checkout, &["add", "-A"], cancel).await?;
        let subject = format!("--message={subject}");
        let trailer = spec
            .job
            .as_ref()
            .map(|job| format!("--message={JOB_TRAILER}: {job}"));
        let mut args = vec![
            "commit",
            "--quiet",
            "--no-verify",
            "--no-gpg-sign",
            subject.as_str(),
        ];
        args.extend(trailer.as_deref());
        self.git("commit", checkout, &args, cancel).await?;
        let head = ["rev-parse", "--short", "HEAD"];
        let sha = self.git("rev-parse", checkout, &head, cancel).await?;
        Ok(sha.stdout.trim().to_owned())
    }

    async fn git(
        &self,
        step: &'static str,
        dir: &Path,
        args: &[&str],
        cancel: &Cancel,
    ) -> Result<GitOutput, RepoError> {
        match self.git.run(step, dir, args, cancel).await {
            Ok(output) => Ok(output),
            Err(_) if cancel.is_cancelled() => Err(RepoError::Cancelled),
            Err(error) => Err(error.into()),
        }
    }

    fn step(&self, started: Instant, step: Step, detail: String) {
        self.progress.report(Report {
            elapsed: started.elapsed(),
            progress: Progress::Step { step, detail },
        });
    }
}

/// `repo push`: pushes the workspace's checkout (never the repository around it: defect
/// 18-e) to `origin/<branch>`; the checkout pushed.
pub async fn push(
    git: &Git,
    root: &Path,
    branch: &Branch,
    cancel: &Cancel,
) -> Result<PathBuf, RepoError> {
    let checkout = workspace::find_checkout(root).map_err(RepoError::Checkout)?;
    verify_toplevel(git, &checkout, cancel).await?;
    let refspec = format!("HEAD:refs/heads/{branch}");
    let args = [
        "push",
        "--quiet",
        "--end-of-options",
        "origin",
        refspec.as_str(),
    ];
    git.run("push", &checkout, &args, cancel).await?;
    Ok(checkout)
}

/// `repo clean`: the workspace emptied (if codexd made it) and marked.
pub fn clean(root: &Path) -> Result<(), RepoError> {
    Ok(workspace::prepare(root)?)
}

/// git's work tree at `checkout` must be the checkout itself, not a repository around it.
async fn verify_toplevel(git: &Git, checkout: &Path, cancel: &Cancel) -> Result<(), RepoError> {
    let found = git
        .run(
            "rev-parse",
            checkout,
            &["rev-parse", "--show-toplevel"],
            cancel,
        )
        .await?;
    let toplevel = PathBuf::from(found.stdout.trim());
    let same = std::fs::canonicalize(&toplevel).ok() == std::fs::canonicalize(checkout).ok();
    match same {
        true => Ok(()),
        false => Err(RepoError::Checkout(format!(
            "{} is not a checkout of its own (git's work tree there is {})",
            checkout.display(),
            toplevel.display()
        ))),
    }
}

/// The task's first non-blank line, for progress.
fn first_line(task: &str) -> String {
    let line = task
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    line.chars().take(80).collect()
}
