//! A project to run `codexd repo` in, for the repository tests: an enclosing git
//! repository (with a remote of its own that `repo` must never touch), a seeded bare remote
//! to work on, and codex: the real binary offline against the fake model, or the scripted
//! fake app-server.
//!
//! The including test file must also declare, at its root: `codex_peer`, `fake_model`,
//! `git_remote` and `otlp` from `tests/support/`, and `mod support;`.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::codex_peer::{CodexConfig, CodexHome, codex_bin};
use crate::fake_model::{FakeModel, Reply};
use crate::git_remote::{self, seeded_bare};
use crate::support::Scratch;

/// A project (an enclosing git repository with its own remote) to run `codexd repo` in,
/// a remote to work on, and codex offline against a fake model.
pub struct Project {
    pub scratch: Scratch,
    /// The current directory of every command: a git repository of its own.
    pub dir: PathBuf,
    /// The project's own remote (which `repo` must never touch).
    pub own_remote: PathBuf,
    /// The remote `repo run` clones.
    pub remote: PathBuf,
    pub model: Option<FakeModel>,
    _home: Option<CodexHome>,
}

impl Project {
    /// With codex against a fake model answering `script` (`None` when codex is missing:
    /// the caller returns, SKIP printed).
    pub async fn with_codex(script: Vec<Reply>) -> Option<Project> {
        Project::with_codex_and(script, "").await
    }

    /// [`Project::with_codex`] with more top-level config (`telemetry:`).
    pub async fn with_codex_and(script: Vec<Reply>, top: &str) -> Option<Project> {
        let bin = codex_bin()?;
        let model = FakeModel::start(script).await;
        let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
        let project = Project::bare(&format!(
            "{top}codex:\n  binary: {}\n  env:\n    CODEX_HOME: {}\n    HOME: {}\n    FAKE_API_KEY: dummy\n    RUST_LOG: warn\n",
            bin.display(),
            home.codex_home().display(),
            home.home().display()
        ));
        Some(Project {
            model: Some(model),
            _home: Some(home),
            ..project
        })
    }

    /// Without the real codex (input errors and git failures come before any turn): the
    /// fake app-server, or the `codex:` given.
    pub fn bare(codex_yaml: &str) -> Project {
        let scratch = Scratch::new();
        let dir = scratch.path("project");
        let own_remote = seeded_bare(scratch.dir.path(), "own");
        git_remote::run(
            scratch.dir.path(),
            &[
                "clone",
                "--quiet",
                own_remote.to_str().expect("utf-8"),
                "project",
            ],
        );
        let remote = seeded_bare(scratch.dir.path(), "widget");
        // No test without a codex of its own may start whatever `codex` is on PATH.
        let fake = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/fake_app_server.py"
        );
        let default_codex = format!("codex:\n  binary: {fake}\n");
        let codex_yaml = match codex_yaml {
            "" => default_codex.as_str(),
            given => given,
        };
        scratch.write_config(&format!(
            "server: {{name: spark}}\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\n{codex_yaml}"
        ));
        Project {
            scratch,
            dir,
            own_remote,
            remote,
            model: None,
            _home: None,
        }
    }

    /// `codexd repo <args>` in the project, with the config.
    pub fn repo(&self, args: &[&str]) -> Output {
        self.repo_env(args, &[])
    }

    pub fn repo_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.scratch.codexd();
        command
            .env_remove("RUST_LOG")
            .current_dir(&self.dir)
            .arg("repo");
        command.args(args);
        if args.first() == Some(&"run") {
            command.arg("--config").arg(self.scratch.config());
        }
        command.envs(env.iter().copied());
        command.output().expect("run codexd repo")
    }

    pub fn remote(&self) -> &str {
        self.remote.to_str().expect("utf-8")
    }

    pub fn checkout(&self) -> PathBuf {
        self.dir.join(".codexd/work/widget")
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit code and returns (stdout, stderr).
pub fn exited(out: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

pub fn run_args<'a>(remote: &'a str, branch: &'a str, task: &'a str) -> Vec<&'a str> {
    vec!["run", remote, "--branch", branch, "--task", task]
}

/// A project whose codex is the scripted fake app-server with `modes`; its event log.
pub fn with_fake_codex(modes: &str, codex: &str) -> (Project, PathBuf) {
    let scratch_log = tempfile::NamedTempFile::new().expect("log file");
    let log = scratch_log.into_temp_path().keep().expect("keep");
    let fake = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/fake_app_server.py"
    );
    let project = Project::bare(&format!(
        "codex:\n  binary: {fake}\n{codex}  env:\n    FAKE_APP_SERVER_MODE: '{modes}'\n    FAKE_APP_SERVER_LOG: {}\n",
        log.display()
    ));
    (project, log)
}

pub fn fake_events(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
