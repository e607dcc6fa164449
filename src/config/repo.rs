//! `repo:` (codexd, per agent) — the agent takes repository jobs (IPC `repo_run`, the
//! `repo_run` tool; docs/repo.md). Absent: it takes none, and has no `repo` child.
//!
//! | key            | default                          | rule                                            |
//! |----------------|----------------------------------|-------------------------------------------------|
//! | `remotes`      | required                         | non-empty list; each a remote `codexd repo run` accepts (`https://host/path`, `git@host:path`, an absolute path), or such a prefix ending in `*` |
//! | `max_jobs`     | `1`                              | integer 1..=16: jobs running at once; the rest wait |
//! | `git_timeout`  | `5m`                             | duration > 0: each git command running longer is killed |
//! | `turn_timeout` | the agent's `turn_timeout_seconds`, else `10m` | duration > 0: the job's codex turn is interrupted after it |

use std::time::Duration;

use codexd_actors::repo::validate;

use super::RepoConfig;
use super::reader::{Keys, Node, Report};

const KEYS: Keys = Keys {
    known: &["remotes", "max_jobs", "git_timeout", "turn_timeout"],
    ignored: &[],
};

/// The most jobs an agent may run at once.
const MAX_JOBS: i64 = 16;
/// How long one git command of a job may take by default.
pub(super) const DEFAULT_GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// `repo:` of one agent; `None` when absent (or null).
pub(super) fn section(node: &Node<'_>, report: &mut Report) -> Option<RepoConfig> {
    node.given()?;
    let fields = node.mapping(report, &KEYS);
    let remotes_node = fields.get("remotes");
    let listed = remotes_node.strings(report);
    let mut remotes = Vec::new();
    for (remote, at) in listed.clone().unwrap_or_default() {
        match remote_problem(remote) {
            Some(problem) => report.error(&at, problem),
            None => remotes.push(remote.to_owned()),
        }
    }
    match listed {
        _ if remotes_node.given().is_none() => {
            report.error(
                remotes_node.at(),
                "required: the remotes the agent's jobs may use",
            );
        }
        Some(listed) if listed.is_empty() => {
            report.error(remotes_node.at(), "must list at least one remote");
        }
        _ => {}
    }
    Some(RepoConfig {
        remotes,
        max_jobs: fields
            .get("max_jobs")
            .integer(report, 1, MAX_JOBS, "an integer from 1 to 16")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1),
        git_timeout: fields
            .get("git_timeout")
            .duration(report)
            .unwrap_or(DEFAULT_GIT_TIMEOUT),
        turn_timeout: fields.get("turn_timeout").duration(report),
    })
}

/// Why `remote` (or the prefix before a trailing `*`) is not one a job may use.
fn remote_problem(remote: &str) -> Option<String> {
    let Some(prefix) = remote.strip_suffix('*') else {
        return validate::remote(remote).err();
    };
    // A prefix: what it starts must be a remote's start (`git@host:org/`, `https://host/`).
    let sample = format!("{prefix}x");
    validate::remote(&sample)
        .err()
        .map(|problem| format!("{problem} (a prefix ending in *: {prefix:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{errors, ok};

    fn agent(lines: &str) -> String {
        format!("server: {{name: spark}}\nagents:\n  - nick: spark-a\n{lines}")
    }

    #[test]
    fn an_agent_takes_jobs_only_with_remotes_it_may_use() {
        let config = ok(&agent(
            "    repo:\n      remotes: [/srv/git/a.git, 'git@host:org/*']\n      max_jobs: 2\n",
        ))
        .config;
        let repo = config.agents[0].repo.clone().expect("repo");
        assert_eq!(repo.remotes, ["/srv/git/a.git", "git@host:org/*"]);
        assert_eq!(
            (repo.max_jobs, repo.git_timeout, repo.turn_timeout),
            (2, DEFAULT_GIT_TIMEOUT, None)
        );
        assert_eq!(
            ok(&agent("")).config.agents[0].repo,
            None,
            "no repo: no jobs"
        );
        let table = [
            (
                "    repo: {}\n",
                "agents[0].repo.remotes: required: the remotes the agent's jobs may use",
            ),
            (
                "    repo: {remotes: []}\n",
                "agents[0].repo.remotes: must list at least one remote",
            ),
            (
                "    repo: {remotes: ['http://host/a.git']}\n",
                "agents[0].repo.remotes[0]: remote must be an HTTPS or SSH Git remote",
            ),
            (
                "    repo: {remotes: [/a.git], max_jobs: 0}\n",
                "agents[0].repo.max_jobs: expected an integer from 1 to 16, got 0",
            ),
            (
                "    repo: {remotes: [/a.git], git_timout: 1m}\n",
                "agents[0].repo.git_timout: unknown key",
            ),
        ];
        for (lines, want) in table {
            let found = errors(&agent(lines));
            assert!(
                found.iter().any(|e| e.starts_with(want)),
                "{lines}: {found:?}"
            );
        }
    }

    #[test]
    fn repo_runs_model_is_codex_model_else_codexs_own() {
        let base = "server: {name: spark}\n";
        assert_eq!(ok(base).config.codex.model, "", "codex's own default");
        let set = ok(&format!("{base}codex: {{model: gpt-5.5}}\n")).config;
        assert_eq!(set.codex.model, "gpt-5.5");
        let found = errors(&format!("{base}codex: {{model: ''}}\n"));
        assert_eq!(found, ["codex.model: expected a non-empty single line"]);
    }

    #[test]
    fn remotes_and_prefixes_are_checked_like_repo_runs() {
        let table = [
            ("/srv/git/a.git", None),
            ("git@github.com:org/*", None),
            ("https://github.com/org/*", None),
            ("http://github.com/org/*", Some(validate::REMOTE_FORM)),
            ("ext::sh -c x", Some(validate::REMOTE_FORM)),
            ("https://u:pw@host/a.git", Some(validate::REMOTE_SECRET)),
        ];
        for (remote, want) in table {
            let problem = remote_problem(remote);
            match want {
                None => assert_eq!(problem, None, "{remote}"),
                Some(want) => assert!(
                    problem.as_deref().is_some_and(|p| p.starts_with(want)),
                    "{remote}: {problem:?}"
                ),
            }
        }
    }
}
