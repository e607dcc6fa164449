//! What an agent's jobs say in their channel: the lines (pure) and the [`Reporter`] that
//! hands them, in order, to the `irc` actor's sanitising send path.
//!
//! | progress or end                    | line                                                    |
//! |------------------------------------|---------------------------------------------------------|
//! | cloning                            | `[job 3, 0s] cloning <remote>`                          |
//! | the turn starts                    | `[job 3, 1s] codex is working on: <task's first line>`  |
//! | the turn ended well                | `[job 3, 9s] codex done (2 tool calls)`                 |
//! | pushing                            | `[job 3, 9s] pushing <sha> to origin/<b>`               |
//! | pushed                             | `[job 3] pushed: branch=<b> commit=<sha> target=origin/<b> (12s)` |
//! | found pushed by an earlier attempt | `… (pushed by an earlier attempt; not pushed again)`    |
//! | no changes                         | `[job 3] no changes: nothing pushed (branch <b>)`       |
//!
//! Tool calls, branching and committing are not posted (they are in `status` and the
//! trace): a channel gets at most four lines per job before its result.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::{GitError, Outcome, Progress, RepoError, Report, Step, TurnError};
use crate::irc::{IrcError, IrcMessage, SendPriority};
use crate::link::{CallError, Link};
use crate::trace::TraceCtx;

/// How long one line may wait for the `irc` actor's answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a line is tried while the `irc` actor is not running (restarting).
const ATTEMPTS: u32 = 60;

/// The line for a progress report, if it is one the channel gets (module table).
pub(super) fn progress_line(id: u64, report: &Report) -> Option<String> {
    let at = format!("[job {id}, {:.0}s]", report.elapsed.as_secs_f64());
    match &report.progress {
        Progress::Step {
            step: Step::Clone,
            detail,
        } => Some(format!("{at} cloning {detail}")),
        Progress::Step {
            step: Step::Turn,
            detail,
        } => Some(format!("{at} codex is working on: {detail}")),
        Progress::Step {
            step: Step::Push,
            detail,
        } => Some(format!("{at} pushing {detail}")),
        Progress::TurnDone { tools, .. } => Some(format!("{at} codex done ({tools} tool calls)")),
        _ => None,
    }
}

/// The phase `status` shows for a progress report.
pub(super) fn phase(progress: &Progress) -> Option<&'static str> {
    match progress {
        Progress::Step { step, .. } => Some(match step {
            Step::Prepare | Step::Clone => "cloning",
            Step::Branch => "branching",
            Step::Turn => "turn",
            Step::Commit => "committing",
            Step::Push => "pushing",
        }),
        _ => None,
    }
}

/// The line of a job that ended well (module table); `late_cancel`: a cancel arrived
/// during the push, which was let finish.
pub(super) fn outcome_line(
    id: u64,
    outcome: &Outcome,
    elapsed: Duration,
    late_cancel: bool,
) -> String {
    let took = format!("{:.0}s", elapsed.as_secs_f64());
    let mut line = match outcome {
        Outcome::NoChanges { branch, .. } => {
            format!("[job {id}] no changes: nothing pushed (branch {branch})")
        }
        Outcome::Pushed { branch, commit, .. } => {
            format!(
                "[job {id}] pushed: branch={branch} commit={commit} target=origin/{branch} ({took})"
            )
        }
        Outcome::AlreadyPushed { branch, commit, .. } => format!(
            "[job {id}] pushed: branch={branch} commit={commit} target=origin/{branch} (pushed by an earlier attempt; not pushed again)"
        ),
    };
    if late_cancel && !matches!(outcome, Outcome::NoChanges { .. }) {
        line.push_str(" — the cancel came during the push, which was let finish");
    }
    line
}

/// Whether a job's error is its cancellation (rather than a failure of its own).
pub(super) fn was_cancelled(error: &RepoError) -> bool {
    matches!(
        error,
        RepoError::Cancelled
            | RepoError::Turn(TurnError::Cancelled)
            | RepoError::Git(GitError::Cancelled { .. })
    )
}

/// Whether a job's error means its codex process died or went silent under it (the job
/// was cut off, as a restart cuts it off), rather than a failure of the job itself.
pub(super) fn cut_off(error: &RepoError) -> bool {
    matches!(
        error,
        RepoError::Turn(TurnError::Gone(_) | TurnError::Wedged(_))
    )
}

/// Most characters of an error in a channel line (the log has all of it).
const SHORT: usize = 300;

/// An error as one short line for the channel: its first line, at most [`SHORT`] characters.
pub(super) fn short(error: &RepoError) -> String {
    let text = error.to_string();
    let line = text.lines().next().unwrap_or_default();
    match line.chars().count() > SHORT {
        true => format!("{}…", line.chars().take(SHORT).collect::<String>()),
        false => line.to_owned(),
    }
}

/// `3, 4` or `none`.
pub(super) fn list(ids: &[u64]) -> String {
    match ids.is_empty() {
        true => "none".to_owned(),
        false => ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Seconds since the epoch.
pub(super) fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

struct Line {
    target: String,
    text: String,
    trace: TraceCtx,
}

/// Hands lines to the `irc` actor one at a time, in order, from a task of its own (a job
/// never waits for IRC). A line waits while the `irc` actor restarts (up to a minute); one
/// the server would refuse is logged and dropped.
#[derive(Debug, Clone)]
pub(super) struct Reporter {
    lines: mpsc::UnboundedSender<Line>,
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// Starts the task sending to `irc` (within a tokio runtime). It ends once every clone
    /// of the reporter is gone and its lines are sent.
    pub(super) fn start(irc: Link<IrcMessage>) -> Self {
        let (lines, mut queue) = mpsc::unbounded_channel::<Line>();
        tokio::spawn(async move {
            while let Some(line) = queue.recv().await {
                send(&irc, line).await;
            }
        });
        Self { lines }
    }

    /// Queues `text` for `target`.
    pub(super) fn say(&self, target: &str, text: String, trace: &TraceCtx) {
        let line = Line {
            target: target.to_owned(),
            text,
            trace: trace.clone(),
        };
        let _ = self.lines.send(line);
    }
}

async fn send(irc: &Link<IrcMessage>, line: Line) {
    for _ in 0..ATTEMPTS {
        let make = |reply| IrcMessage::Send {
            target: line.target.clone(),
            text: line.text.clone(),
            notice: false,
            require_joined: false,
            priority: SendPriority::Normal,
            trace: line.trace.clone(),
            reply,
        };
        match irc.call(make, SEND_TIMEOUT).await {
            Ok(Ok(_)) => return,
            Ok(Err(IrcError::Unavailable)) | Err(CallError::NotRunning) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(Err(error)) => {
                tracing::warn!(target = %line.target, error = %error, "repository job line not sent");
                return;
            }
            Err(CallError::Timeout(_)) => {
                tracing::warn!(target = %line.target, "repository job line not sent: irc did not answer");
                return;
            }
        }
    }
    tracing::warn!(target = %line.target, "repository job line not sent: irc was not running for a minute");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn at(secs: u64, progress: Progress) -> Report {
        Report {
            elapsed: Duration::from_secs(secs),
            progress,
        }
    }

    #[test]
    fn the_channel_gets_the_steps_that_matter() {
        let step = |step, detail: &str| Progress::Step {
            step,
            detail: detail.to_owned(),
        };
        let table = [
            (
                at(0, step(Step::Clone, "/srv/a.git")),
                Some("[job 3, 0s] cloning /srv/a.git"),
            ),
            (at(0, step(Step::Branch, "fix")), None),
            (
                at(1, step(Step::Turn, "Fix it")),
                Some("[job 3, 1s] codex is working on: Fix it"),
            ),
            (
                at(
                    2,
                    Progress::Tool {
                        kind: "fileChange".into(),
                        detail: "a".into(),
                    },
                ),
                None,
            ),
            (
                at(
                    9,
                    Progress::TurnDone {
                        tools: 2,
                        said: None,
                    },
                ),
                Some("[job 3, 9s] codex done (2 tool calls)"),
            ),
            (
                at(9, step(Step::Push, "abc to origin/fix")),
                Some("[job 3, 9s] pushing abc to origin/fix"),
            ),
            (at(12, Progress::Working), None),
        ];
        for (report, want) in table {
            assert_eq!(progress_line(3, &report).as_deref(), want, "{report:?}");
        }
    }

    #[test]
    fn the_end_names_the_branch_and_the_commit() {
        let checkout = PathBuf::from("/state/w");
        let pushed = Outcome::Pushed {
            checkout: checkout.clone(),
            branch: "fix".into(),
            commit: "abc1234".into(),
        };
        let took = Duration::from_secs(12);
        assert_eq!(
            outcome_line(3, &pushed, took, false),
            "[job 3] pushed: branch=fix commit=abc1234 target=origin/fix (12s)"
        );
        assert!(outcome_line(3, &pushed, took, true).ends_with("which was let finish"));
        let again = Outcome::AlreadyPushed {
            checkout: checkout.clone(),
            branch: "fix".into(),
            commit: "abc1234".into(),
        };
        assert!(outcome_line(3, &again, took, false).contains("not pushed again"));
        let none = Outcome::NoChanges {
            checkout,
            branch: "fix".into(),
        };
        assert_eq!(
            outcome_line(3, &none, took, false),
            "[job 3] no changes: nothing pushed (branch fix)"
        );
        assert!(was_cancelled(&RepoError::Turn(TurnError::Cancelled)));
        assert!(cut_off(&RepoError::Turn(TurnError::Gone("killed".into()))));
        let long = RepoError::Checkout(format!("{}\nsecond line", "x".repeat(400)));
        assert_eq!(short(&long), format!("{}…", "x".repeat(300)));
        assert!(!cut_off(&RepoError::Turn(TurnError::Failed("bad".into()))));
        assert!(!was_cancelled(&RepoError::Input("x".into())));
        assert_eq!(
            (list(&[]), list(&[3, 4])),
            ("none".to_owned(), "3, 4".to_owned())
        );
    }
}
