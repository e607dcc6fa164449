//! Test support: the real `codexd` binary run in a scratch HOME, polled until a
//! condition holds (never sleep-then-assert).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits for: a hang detector, not a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Some`, panicking with `what` after [`PATIENCE`].
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scratch home with a config file and a control socket path inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn socket(&self) -> PathBuf {
        self.path("run/codexd.sock")
    }

    pub fn config(&self) -> PathBuf {
        self.path("agents.yaml")
    }

    /// Writes the config file; `body` may use `{socket}` and `{home}`.
    pub fn write_config(&self, body: &str) {
        let text = body
            .replace("{socket}", &self.socket().display().to_string())
            .replace("{home}", &self.dir.path().display().to_string());
        std::fs::write(self.config(), text).expect("write config");
    }

    /// A `codexd` command with HOME and XDG_RUNTIME_DIR inside the scratch dir and no
    /// OTEL_*, CODEXD_*, proxy or systemd notify variables leaking in from the caller (a
    /// proxy would carry the webhook's loopback requests away; a test run under systemd
    /// would have its daemons notify the test runner's manager).
    pub fn codexd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_codexd"));
        for (key, _) in std::env::vars() {
            let proxy = key.to_ascii_uppercase().ends_with("_PROXY");
            let systemd =
                ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"].contains(&key.as_str());
            if key.starts_with("OTEL_") || key.starts_with("CODEXD_") || proxy || systemd {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a client command to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.codexd().args(args).output().expect("run codexd")
    }

    /// `codexd status --json` against this scratch's socket, parsed; None if it failed.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.cli(&["status", "--json", "--socket", self.socket().to_str()?]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("status is JSON"))
    }

    /// Starts `codexd run` on this scratch's config.
    pub fn run(&self, extra: &[&str]) -> Daemon {
        self.run_with_env(extra, &[])
    }

    /// Starts `codexd run` on this scratch's config under `wrapper` (e.g. `prlimit
    /// --nofile=48:48 --`), which must exec codexd in its own process.
    pub fn run_under(&self, wrapper: &[&str]) -> Daemon {
        let template = self.codexd();
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(template.get_program());
        for (key, value) in template.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        let log = self.path("daemon.log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .arg("run")
            .arg("--config")
            .arg(self.config())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn codexd run");
        Daemon {
            child: Some(child),
            log,
        }
    }

    /// Starts `codexd run` on this scratch's config with `env` added to its environment.
    pub fn run_with_env(&self, extra: &[&str], env: &[(String, String)]) -> Daemon {
        let log = self.path("daemon.log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = self
            .codexd()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("run")
            .arg("--config")
            .arg(self.config())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn codexd run");
        Daemon {
            child: Some(child),
            log,
        }
    }
}

/// A running `codexd run`; killed on drop if the test did not stop it.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal by name (`TERM`, `HUP`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit (bounded by PATIENCE).
    pub fn wait(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let status = eventually("codexd to exit", || child.try_wait().expect("try_wait"));
        self.child = None;
        status
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn child_alive(&mut self) -> bool {
        let child = self.child.as_mut().expect("running");
        child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Daemon {
    /// Kills a daemon the test did not stop; a failing test gets the log's last lines.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(80)..].join("\n");
            eprintln!(
                "--- last lines of codexd's log ({}):\n{tail}",
                self.log.display()
            );
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Looks up an agent (by nick) in a status document.
pub fn agent<'a>(status: &'a serde_json::Value, nick: &str) -> Option<&'a serde_json::Value> {
    status["agents"]
        .as_array()?
        .iter()
        .find(|a| a["nick"] == nick)
}

/// Looks up a child of an agent in a status document.
pub fn child<'a>(
    status: &'a serde_json::Value,
    nick: &str,
    name: &str,
) -> Option<&'a serde_json::Value> {
    agent(status, nick)?["children"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}
