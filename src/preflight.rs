//! `check-config`'s preflight: what a valid config still needs from the machine, checked
//! without starting anything. Every problem names the key it comes from.
//!
//! | key                                   | check                                                  | problem is |
//! |---------------------------------------|--------------------------------------------------------|------------|
//! | `agents[i].directory`                 | exists and is a directory                              | error      |
//! | `codex.binary` / `agents[i].codex.binary` | found (PATH lookup without a `/`), executable, `--version` prints a version within 5 s | error |
//! | the same                              | the version is the tested 0.169.x                      | warning    |
//! | `server.host`                         | resolves within 5 s                                    | error      |
//! | `state_dir`, `ipc_dir`, `control_socket` (its directory) | writable, or creatable under a writable directory | error |
//! | `telemetry` (when `enabled`) with the `OTEL_*` variables | resolves as `run` would: every variable parses, the TLS files of an `https://` endpoint read, parse and go together (the error names the key or variable) | error |
//! | the same                              | TLS files named for a plaintext `http://` endpoint     | warning    |

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::fs::Access;

use crate::config::{Config, Diagnostic};
use crate::env::Env;

/// The codex minor version codexd is tested with (docs and reference name `codex-cli 0.169.0`).
pub const TESTED_CODEX: &str = "0.169.";

/// How long `<binary> --version` and the host lookup may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// What preflight found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// Problems that would stop `run` (or its agents) from working.
    pub errors: Vec<Diagnostic>,
    /// Worth telling, not fatal (an untested codex version).
    pub warnings: Vec<Diagnostic>,
    /// `(key, binary, version)` of every codex binary that answered.
    pub codex_versions: Vec<(String, PathBuf, String)>,
}

impl Preflight {
    fn error(&mut self, path: &str, message: String) {
        self.errors.push(Diagnostic {
            path: path.to_owned(),
            message,
        });
    }
}

/// Runs every check; `env` supplies `PATH` for the binary lookup.
pub async fn check(config: &Config, env: &Env) -> Preflight {
    let mut found = Preflight::default();
    for (index, agent) in config.agents.iter().enumerate() {
        if let Some(problem) = directory(&agent.directory) {
            found.error(&format!("agents[{index}].directory"), problem);
        }
    }
    for (key, binary) in codex_binaries(config) {
        codex(&key, &binary, env, &mut found).await;
    }
    if let Some(problem) = resolves(&config.server.host, config.server.port).await {
        found.error("server.host", problem);
    }
    let socket_dir = config.control_socket.parent().unwrap_or(Path::new("."));
    let dirs = [
        ("state_dir", config.state_dir.as_path()),
        ("ipc_dir", config.ipc_dir.path.as_path()),
        ("control_socket", socket_dir),
    ];
    for (key, dir) in dirs {
        if let Some(problem) = writable(dir) {
            found.error(key, problem);
        }
    }
    telemetry(config, env, &mut found);
    found
}

/// The telemetry settings `run` would resolve, TLS files included.
fn telemetry(config: &Config, env: &Env, found: &mut Preflight) {
    match crate::telemetry::Settings::resolve(&config.telemetry, &config.server.name, env) {
        Ok(settings) => {
            let warnings = settings.otlp.map(|otlp| otlp.warnings).unwrap_or_default();
            found
                .warnings
                .extend(warnings.into_iter().map(|message| Diagnostic {
                    path: "telemetry".to_owned(),
                    message,
                }));
        }
        Err(error) => {
            let (path, message) = error.diagnostic();
            found.error(&path, message);
        }
    }
}

/// An agent's `directory`: present and a directory.
fn directory(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => None,
        Ok(_) => Some(format!("{} is not a directory", dir.display())),
        Err(error) => Some(format!("{}: {error}", dir.display())),
    }
}

/// Each distinct codex binary once, with the key it comes from: the daemon's `codex.binary`
/// when an agent keeps it, else the agent's own override. An agent whose runner is a test
/// child (`test_children: [runner]`, the drills) starts no codex and needs none.
fn codex_binaries(config: &Config) -> Vec<(String, PathBuf)> {
    let mut binaries: Vec<(String, PathBuf)> = Vec::new();
    for (index, agent) in config.agents.iter().enumerate() {
        if agent.test_children.iter().any(|child| child == "runner") {
            continue;
        }
        let binary = &agent.codex.binary;
        if binaries.iter().any(|(_, known)| known == binary) {
            continue;
        }
        let key = match *binary == config.codex.binary {
            true => "codex.binary".to_owned(),
            false => format!("agents[{index}].codex.binary"),
        };
        binaries.push((key, binary.clone()));
    }
    binaries
}

async fn codex(key: &str, binary: &Path, env: &Env, found: &mut Preflight) {
    let path = match locate(binary, env) {
        Ok(path) => path,
        Err(problem) => return found.error(key, problem),
    };
    match version(&path).await {
        Ok(version) => {
            if !version.starts_with(TESTED_CODEX) {
                found.warnings.push(Diagnostic {
                    path: key.to_owned(),
                    message: format!(
                        "{} is codex {version}; codexd is tested with {TESTED_CODEX}x",
                        path.display()
                    ),
                });
            }
            found.codex_versions.push((key.to_owned(), path, version));
        }
        Err(problem) => found.error(key, problem),
    }
}

/// The file `run` would execute: `binary` itself when it has a `/`, else the first
/// executable `binary` in `$PATH` (as `execvp` finds it).
fn locate(binary: &Path, env: &Env) -> Result<PathBuf, String> {
    if binary.components().count() > 1 || binary.is_absolute() {
        return executable(binary).map(|()| binary.to_owned());
    }
    let dirs = env.var("PATH").unwrap_or_default();
    let found = std::env::split_paths(dirs)
        .map(|dir| dir.join(binary))
        .find(|candidate| executable(candidate).is_ok());
    found.ok_or_else(|| format!("{} was not found in PATH", binary.display()))
}

fn executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|error| format!("{}: {error}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    rustix::fs::access(path, Access::EXEC_OK)
        .map_err(|_| format!("{} is not executable", path.display()))
}

/// `<binary> --version`'s version: the last word of its first line, which must start with
/// a digit (`codex-cli 0.169.0` → `0.169.0`).
async fn version(binary: &Path) -> Result<String, String> {
    let run = tokio::process::Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let shown = binary.display();
    let output = match tokio::time::timeout(DEADLINE, run).await {
        Err(_) => return Err(format!("`{shown} --version` did not finish within 5 s")),
        Ok(Err(error)) => return Err(format!("cannot run `{shown} --version`: {error}")),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        return Err(format!("`{shown} --version` failed ({})", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_version(&stdout)
        .map(str::to_owned)
        .ok_or_else(|| format!("`{shown} --version` printed no version"))
}

/// | output                       | version     |
/// |------------------------------|-------------|
/// | `codex-cli 0.169.0\n`        | `0.169.0`   |
/// | `0.170.1`                    | `0.170.1`   |
/// | `codex-cli`, ``, `hello x`   | none        |
pub fn parse_version(output: &str) -> Option<&str> {
    let word = output.lines().next()?.split_whitespace().last()?;
    word.starts_with(|c: char| c.is_ascii_digit())
        .then_some(word)
}

async fn resolves(host: &str, port: u16) -> Option<String> {
    match tokio::time::timeout(DEADLINE, tokio::net::lookup_host((host, port))).await {
        Err(_) => Some(format!("{host} did not resolve within 5 s")),
        Ok(Err(error)) => Some(format!("{host} does not resolve: {error}")),
        Ok(Ok(mut addresses)) => match addresses.next() {
            Some(_) => None,
            None => Some(format!("{host} resolves to no address")),
        },
    }
}

/// `dir` is a writable directory, or the nearest existing ancestor is one (so `run` can
/// create it).
fn writable(dir: &Path) -> Option<String> {
    let existing = dir.ancestors().find(|candidate| {
        candidate.as_os_str().is_empty() || std::fs::symlink_metadata(candidate).is_ok()
    })?;
    let existing = match existing.as_os_str().is_empty() {
        true => Path::new("."),
        false => existing,
    };
    let shown = existing.display();
    if !existing.is_dir() {
        return Some(format!("{shown} is not a directory"));
    }
    match rustix::fs::access(existing, Access::WRITE_OK | Access::EXEC_OK) {
        Ok(()) => None,
        Err(_) if existing == dir => Some(format!("{shown} is not writable")),
        Err(_) => Some(format!(
            "{} does not exist and {shown} is not writable to create it",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let cases = [
            ("codex-cli 0.169.0\n", Some("0.169.0")),
            ("0.170.1", Some("0.170.1")),
            ("codex-cli 0.169.0\nmore\n", Some("0.169.0")),
            ("codex-cli", None),
            ("", None),
            ("hello x", None),
        ];
        for (output, want) in cases {
            assert_eq!(parse_version(output), want, "{output:?}");
        }
    }

    #[test]
    fn writable_dirs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(writable(dir.path()), None);
        assert_eq!(writable(&dir.path().join("a/b/c")), None);
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let under_file = writable(&file.join("sub")).unwrap();
        assert!(
            under_file.ends_with("file is not a directory"),
            "{under_file}"
        );
    }

    #[test]
    fn agents_with_a_test_runner_need_no_codex() {
        let env = Env::from_pairs([("HOME", "/home/t")]);
        let yaml = "server: {name: drill}\ncodex: {binary: /nowhere/codex}\nagents:\n  \
                    - {nick: drill-a, test_children: [irc, socket, runner]}\n  \
                    - {nick: drill-b, test_children: [irc]}\n";
        let config = crate::config::parse(yaml, &env).expect("valid").config;
        let binaries = codex_binaries(&config);
        assert_eq!(
            binaries,
            [("codex.binary".to_owned(), PathBuf::from("/nowhere/codex"))],
            "only drill-b runs codex"
        );
        let yaml = "server: {name: drill}\nagents:\n  - {nick: drill-a, test_children: [runner]}\n";
        let config = crate::config::parse(yaml, &env).expect("valid").config;
        assert!(codex_binaries(&config).is_empty());
    }
}
