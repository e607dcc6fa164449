//! What a repository job is given, checked before anything runs (codexd-spec §18.1, with
//! upstream's messages verbatim where it had one, and defect 18-b fixed: a base ref is a ref,
//! never an option). Pure functions: no file system, no git.
//!
//! | input          | accepted                                                    | refused with                                        |
//! |----------------|-------------------------------------------------------------|-----------------------------------------------------|
//! | remote         | `https://host/path` (a user name, no password)              | `remote must be an HTTPS or SSH Git remote`         |
//! |                | `git@host:path[.git]`                                       |                                                     |
//! |                | an absolute path (it must exist: [`super::workspace`])      |                                                     |
//! | remote         | `https://user:token@host/…`                                 | `remote must not carry a password or token: …`      |
//! | branch         | `^[A-Za-z0-9][A-Za-z0-9._/-]*$` and git's ref-name rules    | `branch name must be non-empty and trimmed`, `unsafe branch name: '<b>'` |
//! | base ref       | the branch alphabet plus `~` and `^`, same rules            | `base ref must be non-empty and trimmed`, `unsafe base ref: '<r>'` |
//! | task           | any text with a non-blank line                              | `task must be non-empty`                            |
//! | checkout name  | derived: last path segment, `.git` dropped, lower-case      | `remote did not contain a usable repository name`   |
//!
//! git's ref-name rules applied on top of the alphabet (`git check-ref-format`, which
//! upstream's regex let through): no `..`, no `//`, no leading or trailing `/`, no component
//! starting with `.` or ending with `.lock`, no trailing `.`. Nothing accepted starts with
//! `-`, so no value can be read as a git option; git still gets `--end-of-options` or `--`
//! before every one of them.

use std::fmt;

/// A checked remote: what git clones.
#[derive(Clone, PartialEq, Eq)]
pub struct Remote(String);

impl Remote {
    /// The remote as given (for git's command line only: [`Remote::shown`] for people).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The remote without user name or query, for logs, spans and output.
    pub fn shown(&self) -> String {
        crate::redact::url(&self.0)
    }

    /// An absolute local path rather than a URL.
    pub fn is_path(&self) -> bool {
        self.0.starts_with('/')
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Remote({})", self.shown())
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// Upstream's message for a remote of no accepted form.
pub const REMOTE_FORM: &str = "remote must be an HTTPS or SSH Git remote";
/// A remote URL carrying a secret.
pub const REMOTE_SECRET: &str =
    "remote must not carry a password or token: use git's credential helper or an SSH key";
/// Upstream's message for an empty or padded branch.
pub const BRANCH_BLANK: &str = "branch name must be non-empty and trimmed";
/// An empty or padded base ref.
pub const BASE_BLANK: &str = "base ref must be non-empty and trimmed";
/// A task without text.
pub const TASK_BLANK: &str = "task must be non-empty";
/// Upstream's message when no checkout name can be derived.
pub const NO_NAME: &str = "remote did not contain a usable repository name";

/// Checks a remote's form (an absolute path's existence is the caller's to check).
pub fn remote(text: &str) -> Result<Remote, String> {
    if text.starts_with('/') && !text.chars().any(char::is_control) {
        return Ok(Remote(text.to_owned()));
    }
    if is_scp_ssh(text) {
        return Ok(Remote(text.to_owned()));
    }
    let Ok(url) = url::Url::parse(text) else {
        return Err(REMOTE_FORM.to_owned());
    };
    let has_path = !url.path().is_empty() && url.path() != "/";
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) || !has_path {
        return Err(REMOTE_FORM.to_owned());
    }
    if url.password().is_some() {
        return Err(REMOTE_SECRET.to_owned());
    }
    // `url` normalises; git gets exactly what was checked.
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(REMOTE_FORM.to_owned());
    }
    Ok(Remote(text.to_owned()))
}

/// `git@host:path[.git]` (upstream's `^git@[A-Za-z0-9._-]+:[A-Za-z0-9._/-]+(?:\.git)?$`).
fn is_scp_ssh(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("git@") else {
        return false;
    };
    let Some((host, path)) = rest.split_once(':') else {
        return false;
    };
    let host_ok = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    let path_ok = |c: char| c.is_ascii_alphanumeric() || "._/-".contains(c);
    // Neither may be read as an ssh or git option.
    let host_leads = host.starts_with(|c: char| c.is_ascii_alphanumeric());
    let path_leads = !path.is_empty() && !path.trim_start_matches('/').starts_with('-');
    host_leads && host.chars().all(host_ok) && path_leads && path.chars().all(path_ok)
}

/// A checked branch name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch(String);

impl Branch {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a branch name (module table).
pub fn branch(text: &str) -> Result<Branch, String> {
    if text.is_empty() || text.trim() != text {
        return Err(BRANCH_BLANK.to_owned());
    }
    if !ref_name_ok(text, "") {
        return Err(format!("unsafe branch name: {}", quoted(text)));
    }
    Ok(Branch(text.to_owned()))
}

/// A checked base: a ref or revision to start the branch from (`origin/main`, a sha,
/// `v1.2~1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRef(String);

impl BaseRef {
    /// The ref.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a base ref (module table): a value such as `-x` or `--upload-pack=…` is refused.
pub fn base_ref(text: &str) -> Result<BaseRef, String> {
    if text.is_empty() || text.trim() != text {
        return Err(BASE_BLANK.to_owned());
    }
    if !ref_name_ok(text, "~^") {
        return Err(format!("unsafe base ref: {}", quoted(text)));
    }
    Ok(BaseRef(text.to_owned()))
}

/// The branch alphabet (plus `extra`), an alphanumeric first character, and git's
/// ref-name rules (module docs).
fn ref_name_ok(text: &str, extra: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._/-".contains(c) || extra.contains(c);
    let first_ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let components_ok = text
        .split('/')
        .all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"));
    first_ok
        && text.chars().all(allowed)
        && !text.contains("..")
        && !text.ends_with(['/', '.'])
        && components_ok
}

/// `'text'` as Python's `repr` shows a string (upstream's messages quote with it): control
/// characters escaped.
fn quoted(text: &str) -> String {
    let double = text.contains('\'') && !text.contains('"');
    let mut inner = String::new();
    for c in text.chars() {
        match c {
            '\\' => inner.push_str("\\\\"),
            '\'' if !double => inner.push_str("\\'"),
            c if c.is_control() => inner.extend(c.escape_debug()),
            c => inner.push(c),
        }
    }
    match double {
        true => format!("\"{inner}\""),
        false => format!("'{inner}'"),
    }
}

/// Checks the task: some non-blank text.
pub fn task(text: &str) -> Result<String, String> {
    match text.trim().is_empty() {
        true => Err(TASK_BLANK.to_owned()),
        false => Ok(text.to_owned()),
    }
}

/// The checkout's directory name (upstream's `derive_checkout_name`):
///
/// | remote                                         | name          |
/// |------------------------------------------------|---------------|
/// | `https://github.com/AgentCulture/codexd.git`   | `codexd`      |
/// | `git@github.com:AgentCulture/codex-guide.git`  | `codex-guide` |
/// | `/srv/git/My Repo.git/`                        | `my-repo`     |
/// | `git@host:.git`                                | refused       |
pub fn checkout_name(remote: &Remote) -> Result<String, String> {
    let trimmed = remote.as_str().trim_end_matches('/');
    let segment = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let segment = segment.rsplit(':').next().unwrap_or(segment);
    let stem = segment.strip_suffix(".git").unwrap_or(segment);
    let mut name = String::new();
    for c in stem.chars() {
        match c.is_ascii_alphanumeric() || "._-".contains(c) {
            true => name.push(c),
            false if !name.ends_with('-') => name.push('-'),
            false => {}
        }
    }
    let name = name.trim_matches(['.', '-', '_']).to_ascii_lowercase();
    match name.is_empty() {
        true => Err(NO_NAME.to_owned()),
        false => Ok(name),
    }
}

/// Most characters of the task's first line in the commit subject (upstream: 64).
pub const SUBJECT_CHARS: usize = 64;

/// The commit message (defect 18-g fixed): `codexd: ` and the task's first non-blank line,
/// trimmed, at most [`SUBJECT_CHARS`] characters.
///
/// | task                          | message                 |
/// |-------------------------------|-------------------------|
/// | `Fix the README`              | `codexd: Fix the README` |
/// | `\n  Add a test  \nthen more` | `codexd: Add a test`     |
/// | 70 × `é`                      | `codexd: ` + 64 × `é`    |
pub fn commit_subject(task: &str) -> String {
    let line = task
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default();
    let line: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(SUBJECT_CHARS)
        .collect();
    format!("codexd: {}", line.trim_end())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
