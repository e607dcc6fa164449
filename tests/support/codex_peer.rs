//! The real `codex app-server` for tests, offline: the native binary that
//! `scripts/install-peers` linked at `$CODEXD_PEERS/codex/codex` (default `<repo>/.peers`),
//! an isolated `CODEX_HOME` whose `config.toml` points the model provider at a
//! [`fake_model`](super::fake_model) server, and a bare JSON-RPC line client ([`AppServer`]) so
//! a test can speak the protocol by hand (reference/codex-app-server.md §2–6, §9).
//!
//! The including test file must also declare, at its root:
//! `#[path = "support/otlp.rs"] mod otlp;` (for `peers_dir` and `skip_or_fail`).
//!
//! Real time only: the hang detectors use tokio timers, so do not combine with
//! `#[tokio::test(start_paused = true)]`.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::otlp::{peers_dir, skip_or_fail};

/// Hang detector for one awaited message: not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// The version `scripts/install-peers` pins.
pub const CODEX_VERSION: &str = "0.169.0";

/// The native codex binary, or None after `skip_or_fail` (a loud SKIP; a panic under `CI=true`).
/// The symlink is resolved so codex sees its real location (its bundled `bwrap` and `rg`
/// live beside it).
pub fn codex_bin() -> Option<PathBuf> {
    let link = peers_dir().join("codex/codex");
    match std::fs::canonicalize(&link) {
        Ok(bin) => Some(bin),
        Err(_) => {
            skip_or_fail(&format!(
                "codex not installed: {} is missing",
                link.display()
            ));
            None
        }
    }
}

/// The `config.toml` knobs a test may turn.
#[derive(Clone, Debug)]
pub struct CodexConfig {
    /// `fake-model` (unknown slug: a "Model metadata … not found" `warning`, no `apply_patch`
    /// tool) or a bundled slug such as `gpt-5.5` (offers the freeform `apply_patch` tool).
    pub model: String,
    /// 0 fails a turn at the first HTTP error; n > 0 retries, each retry announced by an
    /// `error` notification with `willRetry: true`.
    pub request_max_retries: u32,
    pub stream_max_retries: u32,
}

impl Default for CodexConfig {
    fn default() -> Self {
        Self {
            model: "fake-model".to_owned(),
            request_max_retries: 0,
            stream_max_retries: 0,
        }
    }
}

/// The env var codex reads the provider's key from (sent as `authorization: Bearer dummy`).
const API_KEY_VAR: &str = "FAKE_API_KEY";

/// `config.toml` for an offline codex: provider `fake` at `base_url` (Responses API),
/// approvals `never`, sandbox `read-only`, no update check, no analytics, and no plugins:
/// with plugins on (the default), codex 0.169 syncs its curated plugins at start-up
/// (`git ls-remote https://github.com/openai/plugins.git`, then api.github.com and
/// chatgpt.com), network traffic an offline test must not make.
pub fn config_toml(base_url: &str, config: &CodexConfig) -> String {
    format!(
        r#"model = "{model}"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false

[model_providers.fake]
name = "Fake local Responses API"
base_url = "{base_url}"
wire_api = "responses"
env_key = "{API_KEY_VAR}"
request_max_retries = {request}
stream_max_retries = {stream}

[analytics]
enabled = false

[features]
plugins = false
"#,
        model = config.model,
        request = config.request_max_retries,
        stream = config.stream_max_retries,
    )
}

/// A private scratch tree for one codex process: `codex-home/` (CODEX_HOME with
/// `config.toml`), `home/` (HOME, so login shells read no profile) and `stderr.log`.
/// It lives under the target dir, not /tmp: codex refuses to create its helper binaries
/// (apply_patch) under a temporary dir.
pub struct CodexHome {
    dir: tempfile::TempDir,
}

impl CodexHome {
    pub fn new(base_url: &str, config: &CodexConfig) -> CodexHome {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let home = CodexHome { dir };
        std::fs::create_dir_all(home.codex_home()).expect("create CODEX_HOME");
        std::fs::create_dir_all(home.home()).expect("create HOME");
        std::fs::write(
            home.codex_home().join("config.toml"),
            config_toml(base_url, config),
        )
        .expect("write config.toml");
        home
    }

    pub fn codex_home(&self) -> PathBuf {
        self.dir.path().join("codex-home")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn stderr_log(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.stderr_log()).unwrap_or_default()
    }

    /// `codex app-server` with a cleared environment (PATH, TMPDIR kept), stdio piped,
    /// stderr appended to `stderr.log`, killed on drop.
    pub fn app_server_command(&self, bin: &Path) -> Command {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_log())
            .expect("open stderr.log");
        let mut command = Command::new(bin);
        command
            .arg("app-server")
            .env_clear()
            .env("CODEX_HOME", self.codex_home())
            .env("HOME", self.home())
            .env(API_KEY_VAR, "dummy")
            .env("RUST_LOG", "warn")
            .current_dir(self.home())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        for key in ["PATH", "TMPDIR"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command
    }
}

/// A running `codex app-server` spoken to line by line. It keeps every message it read
/// ([`AppServer::seen`]); the `wait_*` methods take the first unconsumed match, in order.
pub struct AppServer {
    child: Child,
    stdin: Option<ChildStdin>,
    incoming: mpsc::UnboundedReceiver<Value>,
    /// Read but not yet taken by a `wait_*`.
    pending: VecDeque<Value>,
    seen: Vec<Value>,
    next_id: i64,
    stderr_log: PathBuf,
}

impl AppServer {
    pub fn spawn(bin: &Path, home: &CodexHome) -> AppServer {
        let mut child = home.app_server_command(bin).spawn().expect("spawn codex");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let message =
                    serde_json::from_str(&line).unwrap_or_else(|_| json!({"unparsed": line}));
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        AppServer {
            stdin: child.stdin.take(),
            child,
            incoming,
            pending: VecDeque::new(),
            seen: Vec::new(),
            next_id: 0,
            stderr_log: home.stderr_log(),
        }
    }

    /// Writes one message as a line.
    pub async fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let line = format!("{message}\n");
        stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to codex");
        stdin.flush().await.expect("flush to codex");
    }

    /// Sends a request with the next id and waits for its answer: `Ok(result)` or
    /// `Err(error)`.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"id": id, "method": method, "params": params}))
            .await;
        let answer = self
            .wait_for(&format!("the answer to {method} (id {id})"), |m| {
                m["id"] == id && m.get("method").is_none()
            })
            .await;
        match answer.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(answer["result"].clone()),
        }
    }

    /// The next notification named `method`.
    pub async fn wait_notification(&mut self, method: &str) -> Value {
        self.wait_for(method, |m| m["method"] == method && m.get("id").is_none())
            .await
    }

    /// The first unconsumed message matching `matches`; panics (with codex's stderr) after
    /// [`PATIENCE`] or when codex closes stdout.
    pub async fn wait_for(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.pending.iter().position(&matches) {
            return self.pending.remove(index).expect("index in range");
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(message)) => message,
                Ok(None) => self.fail(&format!("codex closed stdout; waiting for {what}")),
                Err(_) => self.fail(&format!("gave up waiting for {what}")),
            };
            self.seen.push(message.clone());
            if matches(&message) {
                return message;
            }
            self.pending.push_back(message);
        }
    }

    /// Everything read so far, in order.
    pub fn seen(&self) -> &[Value] {
        &self.seen
    }

    /// Closes stdin (codex's clean shutdown) and waits for the exit.
    pub async fn close(mut self) -> ExitStatus {
        drop(self.stdin.take());
        match tokio::time::timeout(PATIENCE, self.child.wait()).await {
            Ok(status) => status.expect("wait for codex"),
            Err(_) => self.fail("codex did not exit after stdin closed"),
        }
    }

    fn fail(&self, why: &str) -> ! {
        let stderr = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        let recent: Vec<String> = self
            .seen
            .iter()
            .rev()
            .take(10)
            .map(|m| m.to_string())
            .collect();
        panic!(
            "{why}\n--- last messages (newest first) ---\n{}\n--- codex stderr ---\n{stderr}",
            recent.join("\n")
        );
    }
}
