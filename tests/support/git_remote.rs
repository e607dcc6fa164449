//! Local git remotes for the repository tests: a bare repository seeded with one commit
//! (`README.md` on `main`), read back with the `git` binary. Everything runs without a
//! prompt, a hook or the user's git config.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `git` with no system or global config, a fixed identity and no prompts.
pub fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "seed")
        .env("GIT_AUTHOR_EMAIL", "seed@example.invalid")
        .env("GIT_COMMITTER_NAME", "seed")
        .env("GIT_COMMITTER_EMAIL", "seed@example.invalid")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    command
}

/// Runs git in `dir`; its stdout (trimmed), or a panic with its stderr.
pub fn run(dir: &Path, args: &[&str]) -> String {
    let out = git(dir).args(args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `git` in `dir`, `None` when it fails (a missing ref).
pub fn try_run(dir: &Path, args: &[&str]) -> Option<String> {
    let out = git(dir).args(args).output().expect("run git");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A bare repository `<dir>/<name>.git` whose `main` has one commit adding `README.md`.
pub fn seeded_bare(dir: &Path, name: &str) -> PathBuf {
    let bare = dir.join(format!("{name}.git"));
    run(
        dir,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            bare.to_str().expect("utf-8"),
        ],
    );
    let seed = dir.join(format!("{name}-seed"));
    run(
        dir,
        &[
            "init",
            "--quiet",
            "--initial-branch=main",
            seed.to_str().expect("utf-8"),
        ],
    );
    std::fs::write(seed.join("README.md"), "# seed\n").expect("write README");
    run(&seed, &["add", "README.md"]);
    run(&seed, &["commit", "--quiet", "-m", "seed"]);
    run(
        &seed,
        &["push", "--quiet", bare.to_str().expect("utf-8"), "main"],
    );
    bare
}

/// The subjects of `branch` in `bare`, newest first; `None` when the branch is absent.
pub fn subjects(bare: &Path, branch: &str) -> Option<Vec<String>> {
    let rev = format!("refs/heads/{branch}");
    let log = try_run(bare, &["log", "--format=%s", &rev, "--"])?;
    Some(log.lines().map(str::to_owned).collect())
}

/// The branches of `bare`.
pub fn branches(bare: &Path) -> Vec<String> {
    run(
        bare,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// `path` at the tip of `branch` in `bare`.
pub fn file_at(bare: &Path, branch: &str, path: &str) -> Option<String> {
    try_run(bare, &["show", &format!("refs/heads/{branch}:{path}")])
}
