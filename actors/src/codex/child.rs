//! The codex **process**: one `codex app-server` child with its pipes, and nothing about
//! threads or turns (those belong to a thread session on top; DESIGN.md "Codex processes").
//!
//! [`CodexChild::spawn`] starts the child in its own process group with all three pipes
//! and four tasks; the handle only queues lines and asks for a stop, so an actor holding it
//! never awaits I/O.
//!
//! | task   | owns      | reports to the sink                                     |
//! |--------|-----------|---------------------------------------------------------|
//! | stdout | the pipe  | [`ProcessEvent::Message`] per line (garbage included)   |
//! | stdin  | the pipe  | nothing (a dead pipe shows up as the exit)              |
//! | stderr | the pipe  | nothing; keeps its tail (`stderr_tail`) and logs it     |
//! | reaper | the child | exactly one [`ProcessEvent::Exited`], after every line  |
//!
//! Stopping ([`CodexChild::request_stop`], [`CodexChild::stop`]) escalates, and the
//! child is always reaped, whichever way it ends:
//!
//! | step | action                                   | ends as                 |
//! |------|------------------------------------------|-------------------------|
//! | 1    | close stdin (codex exits in < 100 ms)    | [`Ended::StdinClosed`]  |
//! | 2    | after `grace.eof`: SIGTERM to the group  | [`Ended::Terminated`]   |
//! | 3    | after `grace.term`: SIGKILL to the group | [`Ended::Killed`]       |
//! | 4    | `wait()`: reap, always                   |                         |
//!
//! Dropping the handle without a stop is step 3 at once (then 4). A crash is reaped by the
//! reaper ([`Ended::OnItsOwn`]); a failed spawn leaves no child behind. Signals go to the
//! process group only while the child is unreaped (its pid, the group id, cannot be reused
//! then), so a grandchild that outlives a codex that exited on its own is not signalled;
//! the reaper stops waiting for the pipes such a grandchild holds open after 2 s.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::jsonrpc::{Incoming, Outgoing};
use super::stdio::{StderrTail, read_stderr, read_stdout, write_stdin};

/// Lines the stdin queue holds before [`SendError::Backlogged`].
const STDIN_QUEUE: usize = 256;
/// How long the reaper waits for stdout/stderr to reach EOF after the child is gone (a
/// grandchild may hold them open).
const DRAIN: Duration = Duration::from_secs(2);

/// Where the process's events go: a non-blocking hand-off (an actor `cast`, an unbounded
/// channel send) that returns false once nobody listens.
type Sink = Arc<dyn Fn(ProcessEvent) -> bool + Send + Sync>;

/// How to start codex.
#[derive(Debug, Clone)]
pub struct CodexCommand {
    /// The binary; a bare name is looked up in `PATH`.
    pub program: PathBuf,
    /// Its arguments; `["app-server", "--strict-config"]` by default: codex refuses config
    /// fields it does not know (in `config.toml` or a thread's `config`) instead of silently
    /// ignoring them, so a typo cannot drop an agent's settings.
    pub args: Vec<OsString>,
    /// Its working directory; the daemon's when `None`.
    pub cwd: Option<PathBuf>,
    /// The agent's nick, set as `CULTURE_NICK` (after `env`, so it always wins); empty for a
    /// process shared by several agents (their threads set it for their shells).
    pub nick: String,
    /// Variables set on top of the inherited environment.
    pub env: Vec<(OsString, OsString)>,
    /// Start from an empty environment instead of the daemon's.
    pub clear_env: bool,
    /// The longest stdout line accepted, in bytes; longer ones become garbage.
    pub max_line: usize,
    /// How many bytes of stderr to keep for status and exit reports.
    pub stderr_tail: usize,
}

impl CodexCommand {
    /// `program app-server --strict-config` for `nick`: inherited environment, 256 MiB lines, 16 KiB of
    /// stderr.
    pub fn new(program: impl Into<PathBuf>, nick: &str) -> Self {
        Self {
            program: program.into(),
            args: vec!["app-server".into(), "--strict-config".into()],
            cwd: None,
            nick: nick.to_owned(),
            env: Vec::new(),
            clear_env: false,
            max_line: 256 * 1024 * 1024,
            stderr_tail: 16 * 1024,
        }
    }
}

/// Why codex did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The working directory is missing or not a directory.
    #[error("cannot start codex in {}: {source}", path.display())]
    Cwd {
        /// The directory.
        path: PathBuf,
        /// What checking it said.
        source: io::Error,
    },
    /// The binary could not be executed (missing, not executable, …).
    #[error("cannot start codex {}: {source}", program.display())]
    Program {
        /// The binary as configured.
        program: PathBuf,
        /// What `exec` said.
        source: io::Error,
    },
}

/// Why a line could not be queued for codex's stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The process is stopping or gone.
    #[error("codex stdin is closed")]
    Closed,
    /// codex is not reading its stdin; the queue is full.
    #[error("codex stdin is backed up")]
    Backlogged,
}

/// How long each stop step waits before the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace {
    /// After closing stdin, before SIGTERM.
    pub eof: Duration,
    /// After SIGTERM, before SIGKILL.
    pub term: Duration,
}

impl Default for Grace {
    /// 5 s each: codex exits within 100 ms of either; Culture's SIGTERM grace is 5 s.
    fn default() -> Self {
        Self {
            eof: Duration::from_secs(5),
            term: Duration::from_secs(5),
        }
    }
}

/// What the process's tasks report, in order: messages, then one `Exited`.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEvent {
    /// One stdout line, classified.
    Message(Incoming),
    /// The child is gone and reaped; nothing follows.
    Exited(ProcessExit),
}

/// How the child's life ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessExit {
    /// Its wait status.
    pub status: ExitStatus,
    /// Which stop step (if any) ended it.
    pub ended: Ended,
    /// The last of its stderr.
    pub stderr: String,
}

/// A wait status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// `wait` failed (not expected: the reaper is the only waiter).
    Unknown(String),
}

impl From<io::Result<std::process::ExitStatus>> for ExitStatus {
    fn from(status: io::Result<std::process::ExitStatus>) -> Self {
        match status {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => Self::Code(code),
                (None, Some(signal)) => Self::Signal(signal),
                (None, None) => Self::Unknown(status.to_string()),
            },
            Err(error) => Self::Unknown(error.to_string()),
        }
    }
}

/// Which stop step the child ended at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Nobody asked: it exited or crashed.
    OnItsOwn,
    /// Within the grace after its stdin was closed.
    StdinClosed,
    /// Within the grace after SIGTERM.
    Terminated,
    /// SIGKILL was needed (or the handle was dropped).
    Killed,
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.status {
            ExitStatus::Code(code) => write!(f, "exited with code {code}")?,
            ExitStatus::Signal(signal) => write!(f, "killed by signal {signal}")?,
            ExitStatus::Unknown(why) => write!(f, "ended ({why})")?,
        }
        match self.ended {
            Ended::OnItsOwn => Ok(()),
            Ended::StdinClosed => write!(f, " after stdin was closed"),
            Ended::Terminated => write!(f, " after SIGTERM"),
            Ended::Killed => write!(f, " after SIGKILL"),
        }
    }
}

/// The actor's handle on a running codex process.
#[derive(Debug)]
pub struct CodexChild {
    pid: u32,
    stdin: Option<mpsc::Sender<String>>,
    stop: Option<oneshot::Sender<Grace>>,
    exit: watch::Receiver<Option<ProcessExit>>,
    stderr: StderrTail,
}

impl CodexChild {
    /// Starts codex and its tasks (within a tokio runtime); events go to `sink`, tagged by
    /// nothing: the sink's closure adds whatever the actor needs (e.g. a generation).
    pub fn spawn(
        command: &CodexCommand,
        sink: impl Fn(ProcessEvent) -> bool + Send + Sync + 'static,
    ) -> Result<Self, SpawnError> {
        let mut child = start(command)?;
        let (Some(pid), Some(stdin), Some(stdout), Some(stderr)) = (
            child.id(),
            child.stdin.take(),
            child.stdout.take(),
            child.stderr.take(),
        ) else {
            // Not reachable with piped stdio; still, leave no child behind.
            tokio::spawn(async move { child.kill().await });
            let source = io::Error::other("child started without its pipes");
            let program = command.program.clone();
            return Err(SpawnError::Program { program, source });
        };
        let sink: Sink = Arc::new(sink);
        let span = tracing::Span::current();
        let tail = StderrTail::new(command.stderr_tail);
        let (lines, lines_rx) = mpsc::channel(STDIN_QUEUE);
        let (stop, stop_rx) = oneshot::channel();
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(write_stdin(stdin, lines_rx, pid).instrument(span.clone()));
        let max_line = command.max_line;
        let reader_sink = sink.clone();
        let readers = [
            tokio::spawn(
                async move {
                    let deliver = |incoming| reader_sink(ProcessEvent::Message(incoming));
                    read_stdout(stdout, max_line, pid, deliver).await
                }
                .instrument(span.clone()),
            ),
            tokio::spawn(read_stderr(stderr, tail.clone(), pid).instrument(span.clone())),
        ];
        let reaper = Reaper {
            child,
            pid,
            readers,
            tail: tail.clone(),
            sink,
            exit: exit_tx,
        };
        tokio::spawn(reaper.run(stop_rx).instrument(span));
        tracing::info!(codex.pid = pid, program = %command.program.display(), "codex started");
        Ok(Self {
            pid,
            stdin: Some(lines),
            stop: Some(stop),
            exit,
            stderr: tail,
        })
    }

    /// The child's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Queues one message for codex's stdin.
    pub fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let Some(stdin) = self.stdin.as_ref().filter(|_| self.exit.borrow().is_none()) else {
            return Err(SendError::Closed);
        };
        stdin
            .try_send(message.encode())
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => SendError::Backlogged,
                mpsc::error::TrySendError::Closed(_) => SendError::Closed,
            })
    }

    /// Starts the stop escalation without waiting for it: stdin closes once the queued
    /// lines are written, and [`ProcessEvent::Exited`] follows. Later calls do nothing.
    pub fn request_stop(&mut self, grace: Grace) {
        self.stdin = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(grace);
        }
    }

    /// Stops the process (see the module table) and returns how it ended; returns at once
    /// if it had already exited.
    pub async fn stop(mut self, grace: Grace) -> ProcessExit {
        self.stop_in_place(grace).await
    }

    /// [`CodexChild::stop`] for a handle that stays where it is (an actor's state).
    pub async fn stop_in_place(&mut self, grace: Grace) -> ProcessExit {
        self.request_stop(grace);
        let exited = self.exit.wait_for(Option::is_some).await;
        match exited.as_deref() {
            Ok(Some(exit)) => exit.clone(),
            _ => ProcessExit {
                status: ExitStatus::Unknown("the reaper task was cancelled".into()),
                ended: Ended::Killed,
                stderr: self.stderr.snapshot(),
            },
        }
    }

    /// How the process ended, once it has (and has been reaped).
    pub fn exit(&self) -> Option<ProcessExit> {
        self.exit.borrow().clone()
    }

    /// SIGKILLs the process group at once, as a crash or an OOM kill would (the fault
    /// `codexd fault <nick> runner kill`); the exit is reported as [`Ended::OnItsOwn`].
    /// Does nothing once the child has been reaped (its pid may then be reused).
    pub fn kill(&self) {
        if self.exit.borrow().is_some() {
            return;
        }
        let Some(group) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else {
            return;
        };
        if let Err(error) = kill_process_group(group, Signal::KILL) {
            tracing::debug!(codex.pid = self.pid, error = %error, "killing codex failed");
        }
    }

    /// The last of codex's stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.snapshot()
    }
}

/// Builds the command and executes it (in its own process group, all three pipes); the
/// overseer starts its `codex exec` with it too.
pub(crate) fn start(command: &CodexCommand) -> Result<Child, SpawnError> {
    let mut cmd = Command::new(&command.program);
    cmd.args(&command.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if command.clear_env {
        cmd.env_clear();
    }
    cmd.envs(command.env.iter().map(|(k, v)| (k, v)));
    if !command.nick.is_empty() {
        cmd.env("CULTURE_NICK", &command.nick);
    }
    if let Some(cwd) = &command.cwd {
        let checked = std::fs::metadata(cwd).and_then(|meta| {
            if meta.is_dir() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "not a directory",
                ))
            }
        });
        if let Err(source) = checked {
            let path = cwd.clone();
            return Err(SpawnError::Cwd { path, source });
        }
        cmd.current_dir(cwd);
    }
    cmd.spawn().map_err(|source| SpawnError::Program {
        program: command.program.clone(),
        source,
    })
}

/// The task that owns the `Child`: it waits for the exit (or runs the stop escalation),
/// reaps, lets the readers drain, and reports.
struct Reaper {
    child: Child,
    pid: u32,
    readers: [JoinHandle<()>; 2],
    tail: StderrTail,
    sink: Sink,
    exit: watch::Sender<Option<ProcessExit>>,
}

/// What the reaper saw first.
enum First {
    Exited(io::Result<std::process::ExitStatus>),
    /// A stop request; `None` when the handle was dropped.
    Stop(Option<Grace>),
}

impl Reaper {
    async fn run(mut self, stop: oneshot::Receiver<Grace>) {
        let first = tokio::select! {
            status = self.child.wait() => First::Exited(status),
            grace = stop => First::Stop(grace.ok()),
        };
        let (status, ended) = match first {
            First::Exited(status) => (status, Ended::OnItsOwn),
            First::Stop(Some(grace)) => self.escalate(grace).await,
            First::Stop(None) => (self.kill().await, Ended::Killed),
        };
        for reader in &mut self.readers {
            if tokio::time::timeout(DRAIN, &mut *reader).await.is_err() {
                reader.abort();
            }
        }
        let exit = ProcessExit {
            status: status.into(),
            ended,
            stderr: self.tail.snapshot(),
        };
        tracing::info!(codex.pid = self.pid, exit = %exit, "codex exited");
        (self.sink)(ProcessEvent::Exited(exit.clone()));
        self.exit.send_replace(Some(exit));
    }

    /// Steps 1–4 of the module table; stdin is already closing (the handle let go of it).
    async fn escalate(&mut self, grace: Grace) -> (io::Result<std::process::ExitStatus>, Ended) {
        if let Ok(status) = tokio::time::timeout(grace.eof, self.child.wait()).await {
            return (status, Ended::StdinClosed);
        }
        self.signal(Signal::TERM);
        if let Ok(status) = tokio::time::timeout(grace.term, self.child.wait()).await {
            return (status, Ended::Terminated);
        }
        (self.kill().await, Ended::Killed)
    }

    /// SIGKILL to the group (and the child itself), then reap.
    async fn kill(&mut self) -> io::Result<std::process::ExitStatus> {
        self.signal(Signal::KILL);
        let _ = self.child.start_kill();
        self.child.wait().await
    }

    /// Signals the child's process group. The child is not reaped yet, so its pid (the
    /// group id) cannot have been reused.
    fn signal(&self, signal: Signal) {
        let Some(group) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else {
            return;
        };
        if let Err(error) = kill_process_group(group, signal) {
            tracing::debug!(codex.pid = self.pid, error = %error, "signalling codex failed");
        }
    }
}

#[cfg(test)]
#[path = "child_tests.rs"]
mod tests;
