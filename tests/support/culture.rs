//! Culture's real agent-side clients, installed by `scripts/install-peers` into
//! `$CODEXD_PEERS/culture/venv` (default `<repo>/.peers`): the skill client
//! (`python -m cultureagent.clients.codex.skill.irc_client <subcommand> …`) and the culture CLI
//! (`culture channel <subcommand> …`). Each call runs one client process to completion against
//! the daemon socket `<runtime_dir>/culture-<nick>.sock` and returns what it printed.
//!
//! Every call gets a private HOME (one temp dir per [`Culture`]) holding
//! `~/.culture/server.yaml`, which `culture channel` reads for its direct IRC "observer"
//! connection (`who` always; `message` without `--create` to check that the channel exists;
//! `list`/`read`/`message` as a fallback when the IPC request fails or answers `ok:false`). By
//! default it names `127.0.0.1:9`, where nothing listens, so an observer attempt fails fast with
//! `error: cannot connect to IRC server. Is the server running?` (exit 1); point it at a real
//! server with [`Culture::irc_server`]. The file also keeps culture from printing its
//! "no server config" first-run note on stderr.
//!
//! The including test file must also declare, at its root:
//! `#[path = "support/otlp.rs"] mod otlp;` (for `peers_dir` and `skip_or_fail`).
//!
//! Calls block the calling thread (up to [`CALL_TIMEOUT`] or [`Culture::set_timeout`], then the client is killed and the
//! call panics with what it printed). From an async test use `tokio::task::block_in_place` on a
//! multi-thread runtime, or keep the test synchronous and run the async parts on a runtime of
//! its own.

#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::otlp::{peers_dir, skip_or_fail};

/// Hang detector for one client run: culture's own IPC timeouts are 3 s (connect) + 15 s
/// (response) and its observer's 10 s (register) + 5 s (per read); the skill client has none.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// `python -c` body for [`Culture::library`]: the skill CLI's own steps (socket from the
/// environment, connect, one request, pretty-printed response, whispers on stderr).
const LIBRARY_SCRIPT: &str = r#"
import asyncio, json, sys
from cultureagent.clients.shared.skill_irc_client import SkillClient, _sock_path_from_env

async def main():
    client = SkillClient(_sock_path_from_env())
    await client.connect()
    try:
        response = await client._request(sys.argv[1], **json.loads(sys.argv[2]))
        print(json.dumps(response, indent=2))
        for w in client.drain_whispers():
            print(f"[whisper:{w.get('whisper_type', '?')}] {w.get('message', '')}", file=sys.stderr)
    finally:
        await client.close()

asyncio.run(main())
"#;

/// The module the codex agent's skill runs.
pub(crate) const SKILL_MODULE: &str = "cultureagent.clients.codex.skill.irc_client";

/// The installed clients and a private HOME for them.
pub(crate) struct Culture {
    python: PathBuf,
    culture_bin: PathBuf,
    home: tempfile::TempDir,
    timeout: Duration,
}

/// What one client run printed.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    /// The exit code (128 + signal number if a signal ended it).
    pub(crate) status: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Output {
    /// stdout parsed as JSON (the skill client prints the whole response object
    /// `json.dumps(resp, indent=2)`); panics with the run's output if it is not JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("client stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts exit code 0 and returns `self`.
    pub(crate) fn success(self) -> Self {
        assert_eq!(self.status, 0, "client failed: {self:?}");
        self
    }
}

impl Culture {
    /// Where the installed clients would be.
    fn venv() -> PathBuf {
        peers_dir().join("culture/venv")
    }

    /// The clients, if `scripts/install-peers` installed them; None otherwise (no output: the
    /// caller decides, e.g. with [`Culture::find_or_skip`]).
    pub(crate) fn find() -> Option<Culture> {
        let venv = Self::venv();
        let python = venv.join("bin/python");
        let culture_bin = venv.join("bin/culture");
        if !python.exists() || !culture_bin.exists() {
            return None;
        }
        let home = tempfile::Builder::new()
            .prefix("culture-home")
            .tempdir()
            .expect("temp HOME for culture");
        std::fs::create_dir_all(home.path().join(".culture")).expect("~/.culture");
        let culture = Culture {
            python,
            culture_bin,
            home,
            timeout: CALL_TIMEOUT,
        };
        culture.irc_server("culture", "127.0.0.1", 9);
        Some(culture)
    }

    /// [`Culture::find`], or None after `skip_or_fail` (a loud SKIP; a panic under `CI=true`).
    pub(crate) fn find_or_skip() -> Option<Culture> {
        let found = Self::find();
        if found.is_none() {
            skip_or_fail(&format!(
                "Culture's clients not installed: {} is missing",
                Self::venv().join("bin/culture").display()
            ));
        }
        found
    }

    /// Rewrites `~/.culture/server.yaml` so `culture channel`'s observer connects to
    /// `host:port`. `name` is the server name: with `CULTURE_NICK=<name>-<agent>` the
    /// observer registers as `<name>-<agent>__peek<4 hex>`, otherwise as `<name>-_peek<4 hex>`
    /// (agentirc requires nicks to start with `<its name>-`).
    pub(crate) fn irc_server(&self, name: &str, host: &str, port: u16) {
        let yaml = format!("server:\n  name: {name}\n  host: {host}\n  port: {port}\n");
        std::fs::write(self.server_yaml(), yaml).expect("write server.yaml");
    }

    /// Changes the per-call hang detector (default [`CALL_TIMEOUT`]).
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The private HOME every client run gets.
    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }

    /// `~/.culture/server.yaml` inside [`Culture::home`].
    pub(crate) fn server_yaml(&self) -> PathBuf {
        self.home.path().join(".culture/server.yaml")
    }

    /// Runs the skill client: `python -m cultureagent.clients.codex.skill.irc_client <args>`
    /// with `CULTURE_NICK=<nick>` and `XDG_RUNTIME_DIR=<runtime_dir>`.
    pub(crate) fn skill(&self, runtime_dir: &Path, nick: &str, args: &[&str]) -> Output {
        let mut full = vec!["-m", SKILL_MODULE];
        full.extend_from_slice(args);
        self.run(&self.python, Some(runtime_dir), Some(nick), &full)
    }

    /// Runs `culture channel <args>` with `CULTURE_NICK=<nick>` and
    /// `XDG_RUNTIME_DIR=<runtime_dir>`. culture only routes through the socket when the nick
    /// has the `<server>-<agent>` shape (a `-` with text on both sides).
    pub(crate) fn channel(&self, runtime_dir: &Path, nick: &str, args: &[&str]) -> Output {
        let mut full = vec!["channel"];
        full.extend_from_slice(args);
        self.run(&self.culture_bin, Some(runtime_dir), Some(nick), &full)
    }

    /// Runs `culture <args>` (any group, e.g. `agents status`) with the same environment as
    /// [`Culture::channel`].
    pub(crate) fn culture(&self, runtime_dir: &Path, nick: &str, args: &[&str]) -> Output {
        self.run(&self.culture_bin, Some(runtime_dir), Some(nick), args)
    }

    /// Sends one request of any type through Culture's skill-client *library*
    /// (`SkillClient._request(verb, **fields)`, the call every CLI subcommand makes) and
    /// prints the response as the CLI does; for the verbs the CLI has no subcommand for
    /// (`status`, `pause`, `resume`, `shutdown`, the thread requests).
    pub(crate) fn library(
        &self,
        runtime_dir: &Path,
        nick: &str,
        verb: &str,
        fields: &serde_json::Value,
    ) -> Output {
        let fields = fields.to_string();
        let args = ["-c", LIBRARY_SCRIPT, verb, fields.as_str()];
        self.run(&self.python, Some(runtime_dir), Some(nick), &args)
    }

    /// Runs the skill client with `CULTURE_NICK` and/or `XDG_RUNTIME_DIR` left unset (None),
    /// e.g. to see its exit-2 hint, or its `~/.culture/run` fallback directory.
    pub(crate) fn skill_with(
        &self,
        runtime_dir: Option<&Path>,
        nick: Option<&str>,
        args: &[&str],
    ) -> Output {
        let mut full = vec!["-m", SKILL_MODULE];
        full.extend_from_slice(args);
        self.run(&self.python, runtime_dir, nick, &full)
    }

    /// Runs `culture channel <args>` with `CULTURE_NICK` and/or `XDG_RUNTIME_DIR` left unset.
    pub(crate) fn channel_with(
        &self,
        runtime_dir: Option<&Path>,
        nick: Option<&str>,
        args: &[&str],
    ) -> Output {
        let mut full = vec!["channel"];
        full.extend_from_slice(args);
        self.run(&self.culture_bin, runtime_dir, nick, &full)
    }

    /// One client process in a clean environment: HOME is private, nothing from the
    /// caller's CULTURE_*, XDG_RUNTIME_DIR, OTEL_* or PYTHON* leaks in.
    fn run(
        &self,
        program: &Path,
        runtime_dir: Option<&Path>,
        nick: Option<&str>,
        args: &[&str],
    ) -> Output {
        let mut command = Command::new(program);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CULTURE_")
                || key.starts_with("OTEL_")
                || key.starts_with("PYTHON")
                || key == "XDG_RUNTIME_DIR"
                || key == "TRACEPARENT"
            {
                command.env_remove(key.as_ref());
            }
        }
        command
            .args(args)
            .env("HOME", self.home.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(self.home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = runtime_dir {
            command.env("XDG_RUNTIME_DIR", dir);
        }
        if let Some(nick) = nick {
            command.env("CULTURE_NICK", nick);
        }
        let what = format!("{} {}", program.display(), args.join(" "));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));

        // Both pipes are drained by threads that report EOF; EOF on both (the client exited,
        // or at least closed its output) or the deadline, whichever comes first.
        let (eof_tx, eof_rx) = mpsc::channel();
        let stdout = collect(child.stdout.take().expect("piped stdout"), eof_tx.clone());
        let stderr = collect(child.stderr.take().expect("piped stderr"), eof_tx);
        let deadline = std::time::Instant::now() + self.timeout;
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if eof_rx.recv_timeout(left).is_err() {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} did not finish within {:?}; killed.\nstdout:\n{}\nstderr:\n{}",
                    self.timeout,
                    text(&stdout),
                    text(&stderr)
                );
            }
        }
        let status = child.wait().expect("wait for client");
        let status = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        Output {
            status,
            stdout: text(&stdout),
            stderr: text(&stderr),
        }
    }
}

/// `<runtime_dir>/culture-<nick>.sock`: where both clients look for the daemon.
pub(crate) fn socket_path(runtime_dir: &Path, nick: &str) -> PathBuf {
    runtime_dir.join(format!("culture-{nick}.sock"))
}

type Collected = Arc<Mutex<Vec<u8>>>;

/// Reads `pipe` to EOF on a thread into a shared buffer (readable even if the read never
/// ends), then sends on `eof`.
fn collect(mut pipe: impl Read + Send + 'static, eof: mpsc::Sender<()>) -> Collected {
    let buffer: Collected = Arc::default();
    let sink = Arc::clone(&buffer);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => break,
                Ok(n) => sink
                    .lock()
                    .expect("output buffer")
                    .extend_from_slice(&chunk[..n]),
            }
        }
        let _ = eof.send(());
    });
    buffer
}

fn text(buffer: &Collected) -> String {
    String::from_utf8_lossy(&buffer.lock().expect("output buffer")).into_owned()
}
