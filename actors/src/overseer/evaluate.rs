//! One evaluation: `codex exec` with the prompt on stdin, its stdout the verdict.
//!
//! | step | what                                                                        |
//! |------|-----------------------------------------------------------------------------|
//! | 1    | start the agent's codex binary (its cwd and environment) in its own group   |
//! | 2    | write the prompt to stdin, close it; read stdout (≤ 1 MiB) and stderr's tail |
//! | 3    | exit 0 → stdout; another exit → [`EvalError::Failed`] with stderr's summary |
//! | 4    | past `timeout`: SIGKILL to the group, reap → [`EvalError::TimedOut`]        |
//!
//! Dropping the future (the overseer stopped mid-evaluation) SIGKILLs the group too; the
//! child itself is reaped by tokio (`kill_on_drop`).

use std::ffi::OsString;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::codex::child::{self, CodexCommand, ExitStatus};
use crate::codex::stderr_summary;
use crate::group_kill::GroupKill;

/// The most stdout kept: a verdict is one line.
const MAX_STDOUT: u64 = 1024 * 1024;
/// How much of stderr an error keeps.
const STDERR_TAIL: usize = 2048;

/// Why an evaluation produced no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// codex could not be started.
    #[error("{0}")]
    Spawn(String),
    /// codex ran past the timeout and was killed.
    #[error("timed out after {0:?}; killed")]
    TimedOut(Duration),
    /// codex ended badly.
    #[error("codex exec {status}: {stderr}")]
    Failed {
        /// How it ended.
        status: String,
        /// Its stderr's last lines, redacted ([`stderr_summary`]).
        stderr: String,
    },
}

/// `codex exec` arguments: read-only sandbox, no git check, no session files, plain
/// output, `model`; the prompt comes on stdin.
pub fn exec_args(model: &str) -> Vec<OsString> {
    [
        "exec",
        "--sandbox",
        "read-only",
        "--skip-git-repo-check",
        "--ephemeral",
        "--color",
        "never",
        "-m",
        model,
    ]
    .into_iter()
    .map(OsString::from)
    .collect()
}

/// Runs `command` (whose args are [`exec_args`]) with `prompt` on stdin; its stdout.
pub async fn run(
    command: &CodexCommand,
    prompt: String,
    timeout: Duration,
) -> Result<String, EvalError> {
    let mut child = child::start(command).map_err(|error| EvalError::Spawn(error.to_string()))?;
    let group = GroupKill::new(child.id(), "the evaluator");
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let talk = async {
        let write = async move {
            if let Some(mut stdin) = stdin {
                // codex may exit before reading it all; its exit status tells.
                let _ = stdin.write_all(prompt.as_bytes()).await;
            }
        };
        let (_, out, err) = tokio::join!(write, read_capped(stdout), read_tail(stderr));
        let status = child.wait().await;
        (out, err, status)
    };
    let outcome = tokio::time::timeout(timeout, talk).await;
    let Ok((out, err, status)) = outcome else {
        group.kill();
        let _ = child.start_kill();
        let _ = child.wait().await;
        group.disarm();
        return Err(EvalError::TimedOut(timeout));
    };
    group.disarm();
    match ExitStatus::from(status) {
        ExitStatus::Code(0) => Ok(out),
        status => Err(EvalError::Failed {
            status: describe(&status),
            stderr: stderr_summary(&err, 5),
        }),
    }
}

fn describe(status: &ExitStatus) -> String {
    match status {
        ExitStatus::Code(code) => format!("exited with code {code}"),
        ExitStatus::Signal(signal) => format!("killed by signal {signal}"),
        ExitStatus::Unknown(why) => format!("ended ({why})"),
    }
}

async fn read_capped(stdout: Option<impl AsyncRead + Unpin>) -> String {
    let mut bytes = Vec::new();
    if let Some(stdout) = stdout {
        let _ = stdout.take(MAX_STDOUT).read_to_end(&mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn read_tail(stderr: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stderr) = stderr else {
        return String::new();
    };
    let mut tail = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
    if tail.len() > STDERR_TAIL {
        tail.drain(..tail.len() - STDERR_TAIL);
    }
    String::from_utf8_lossy(&tail).trim().to_owned()
}
