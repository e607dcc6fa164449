//! Running the `git` binary for a repository job (defects 18-c and 18-d fixed): every call
//! has a timeout, no stdin and no way to prompt, runs in its own process group, and is
//! killed and reaped when it runs too long or the job is cancelled.
//!
//! | what                         | how                                                          |
//! |------------------------------|--------------------------------------------------------------|
//! | stdin                        | `/dev/null`                                                  |
//! | git's own prompts            | `GIT_TERMINAL_PROMPT=0`, `GIT_ASKPASS=` (empty: none), `GCM_INTERACTIVE=never` |
//! | ssh's prompts                | `SSH_ASKPASS=false`, `SSH_ASKPASS_REQUIRE=force`: a key the agent lacks or a password fails at once |
//! | transports                   | `GIT_ALLOW_PROTOCOL=https:ssh:file`                          |
//! | the caller's repository      | `GIT_DIR`, `GIT_WORK_TREE`, `GIT_INDEX_FILE`, … removed      |
//! | hooks                        | `-c core.hooksPath=/dev/null` on every call                  |
//! | credentials                  | the user's own: ssh agent, credential helper (never on the command line, never logged) |
//! | longer than the timeout      | SIGKILL to the process group, reaped → [`GitError::TimedOut`] |
//! | cancelled                    | the same → [`GitError::Cancelled`]                            |
//! | exit ≠ 0                     | [`GitError::Failed`]: stderr, else stdout, else `git command failed` (`git clone failed` for a clone), redacted |
//!
//! Each call is a `codexd.repo.git` span (`git.step`, `git.exit_code`, `outcome`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::Instrument;

use super::Cancel;
use crate::group_kill::GroupKill;

/// The most of git's stdout or stderr kept (porcelain status of a huge change set aside).
const MAX_OUTPUT: u64 = 4 * 1024 * 1024;
/// How much of stderr an error message keeps.
const MESSAGE_CHARS: usize = 2000;

/// Variables that would point git at another repository than the one it runs in.
const REPOSITORY_VARIABLES: [&str; 8] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
];

/// Why a git call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    /// git could not be started.
    #[error("cannot run {program}: {reason}")]
    Spawn {
        /// The binary.
        program: String,
        /// Why.
        reason: String,
    },
    /// It ran longer than the timeout and was killed.
    #[error(
        "git {step} did not finish within {}s and was killed (is it waiting for credentials, or is the network stalled?)",
        after.as_secs()
    )]
    TimedOut {
        /// The step (`clone`, `push`, …).
        step: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The job was cancelled while it ran; it was killed.
    #[error("git {step} was cancelled")]
    Cancelled {
        /// The step.
        step: &'static str,
    },
    /// It exited with an error.
    #[error("{message}")]
    Failed {
        /// The step.
        step: &'static str,
        /// Its exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// What git said, redacted.
        message: String,
    },
}

/// What a successful call printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitOutput {
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

/// How git is run.
#[derive(Debug, Clone)]
pub struct Git {
    /// The binary (`git`: looked up in `PATH`).
    pub program: PathBuf,
    /// The budget of one call.
    pub timeout: Duration,
    /// Variables set on top of the inherited environment (before the prompt-free ones).
    pub env: Vec<(OsString, OsString)>,
}

impl Git {
    /// `git` from `PATH` with `timeout` per call.
    pub fn new(timeout: Duration) -> Self {
        Self {
            program: PathBuf::from("git"),
            timeout,
            env: Vec::new(),
        }
    }

    /// Runs `git -c core.hooksPath=/dev/null <args>` in `dir` as step `step`.
    pub async fn run(
        &self,
        step: &'static str,
        dir: &Path,
        args: &[&str],
        cancel: &Cancel,
    ) -> Result<GitOutput, GitError> {
        let span = tracing::info_span!(
            "codexd.repo.git",
            git.step = step,
            git.exit_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let result = self
            .call(step, dir, args, cancel)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(GitError::TimedOut { .. }) => "timeout",
            Err(GitError::Cancelled { .. }) => "cancelled",
            Err(_) => "error",
        };
        span.record("outcome", outcome);
        if let Err(GitError::Failed {
            code: Some(code), ..
        }) = &result
        {
            span.record("git.exit_code", code);
        }
        result
    }

    async fn call(
        &self,
        step: &'static str,
        dir: &Path,
        args: &[&str],
        cancel: &Cancel,
    ) -> Result<GitOutput, GitError> {
        let mut child = self
            .command(dir, args)
            .spawn()
            .map_err(|error| GitError::Spawn {
                program: self.program.display().to_string(),
                reason: error.to_string(),
            })?;
        let group = GroupKill::new(child.id(), "git");
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let talk = async {
            let (out, err) = tokio::join!(read_capped(stdout), read_capped(stderr));
            let status = child.wait().await;
            (out, err, status)
        };
        let ended = tokio::select! {
            ended = tokio::time::timeout(self.timeout, talk) => ended.ok(),
            () = cancel.cancelled() => None,
        };
        let Some((stdout, stderr, status)) = ended else {
            // Killed and reaped: nothing of it outlives the call.
            group.kill();
            let _ = child.start_kill();
            let _ = child.wait().await;
            group.disarm();
            if cancel.is_cancelled() {
                return Err(GitError::Cancelled { step });
            }
            tracing::warn!(
                git.step = step,
                timeout_s = self.timeout.as_secs(),
                "git timed out; killed"
            );
            return Err(GitError::TimedOut {
                step,
                after: self.timeout,
            });
        };
        group.disarm();
        let status = status.map_err(|error| GitError::Spawn {
            program: self.program.display().to_string(),
            reason: error.to_string(),
        })?;
        if status.success() {
            return Ok(GitOutput { stdout, stderr });
        }
        Err(GitError::Failed {
            step,
            code: status.code(),
            message: failure_message(step, &stdout, &stderr),
        })
    }

    fn command(&self, dir: &Path, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .arg("-c")
            .arg("core.hooksPath=/dev/null")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for name in REPOSITORY_VARIABLES {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.envs(prompt_free_env());
        command
    }
}

/// The variables that keep git and ssh from prompting (module table).
pub fn prompt_free_env() -> Vec<(OsString, OsString)> {
    [
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_ASKPASS", ""),
        ("GCM_INTERACTIVE", "never"),
        ("SSH_ASKPASS", "false"),
        ("SSH_ASKPASS_REQUIRE", "force"),
        ("GIT_ALLOW_PROTOCOL", "https:ssh:file"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect()
}

/// Upstream's message of a failed call: stderr stripped, else stdout stripped, else
/// `git command failed` (`git clone failed` for a clone); here redacted and bounded.
///
/// | stderr              | stdout   | step    | message                 |
/// |---------------------|----------|---------|-------------------------|
/// | `fatal: x\n`        | any      | any     | `fatal: x`              |
/// | empty               | `y`      | any     | `y`                     |
/// | empty               | empty    | `clone` | `git clone failed`      |
/// | empty               | empty    | `push`  | `git command failed`    |
pub fn failure_message(step: &str, stdout: &str, stderr: &str) -> String {
    let text = [stderr.trim(), stdout.trim()]
        .into_iter()
        .find(|text| !text.is_empty());
    match text {
        Some(text) => {
            let redacted = crate::redact::text(text);
            let start = redacted.chars().count().saturating_sub(MESSAGE_CHARS);
            redacted.chars().skip(start).collect()
        }
        None if step == "clone" => "git clone failed".to_owned(),
        None => "git command failed".to_owned(),
    }
}

async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        let mut pipe = pipe.take(MAX_OUTPUT);
        let _ = pipe.read_to_end(&mut bytes).await;
        // Drain the rest so git never blocks on a full pipe.
        let mut rest = pipe.into_inner();
        let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
#[path = "git_tests.rs"]
mod tests;
