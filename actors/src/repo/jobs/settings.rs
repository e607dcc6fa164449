//! What an agent's jobs are given: their settings (`repo:`), a request, their peers, and
//! which remotes they may use.

use std::path::PathBuf;

use super::RepoJobsMessage;
use crate::irc::IrcMessage;
use crate::link::Link;
use crate::repo::Git;
use crate::repo::turn::TurnSettings;

/// How an agent's jobs run (`repo:` in its config).
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// The agent's nick.
    pub nick: String,
    /// `<state_dir>/<nick>/repo`: the journal and the workspaces.
    pub dir: PathBuf,
    /// The remotes jobs may use: exact, or a prefix ending in `*` (`repo.remotes`).
    pub remotes: Vec<String>,
    /// Jobs running at once; the others wait (`repo.max_jobs`).
    pub max_jobs: usize,
    /// How git runs (`repo.git_timeout`).
    pub git: Git,
    /// How the turn runs: the agent's codex slot, model and approvals; `workspace-write`.
    pub turn: TurnSettings,
}

/// A job as asked for (checked by [`RepoJobsMessage::Start`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The remote.
    pub remote: String,
    /// The branch to push.
    pub branch: String,
    /// What codex should do.
    pub task: String,
    /// What to start from.
    pub base: Option<String>,
    /// Where progress and the result go: a channel or a nick.
    pub report_to: String,
    /// Who asked (`ipc`, `tool #general`, `operator`), for the record.
    pub requested_by: String,
}

/// The other parts the jobs reach.
#[derive(Debug, Clone)]
pub struct JobPeers {
    /// The agent's `irc` actor (progress and results).
    pub irc: Link<IrcMessage>,
    /// Where each instance registers (the `socket` actor reaches it there).
    pub link: Link<RepoJobsMessage>,
}

/// Whether `remote` is one of `allowed`: equal to an entry, or starting with an entry's
/// part before its trailing `*`.
///
/// | allowed                        | remote                         | ok  |
/// |--------------------------------|--------------------------------|-----|
/// | `/srv/git/a.git`               | `/srv/git/a.git`               | yes |
/// | `git@github.com:org/*`         | `git@github.com:org/tool.git`  | yes |
/// | `git@github.com:org/*`         | `git@github.com:other/x.git`   | no  |
/// | (none)                         | anything                       | no  |
pub fn allowed(remote: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => remote.starts_with(prefix),
        None => remote == entry,
    })
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn remotes_are_allowed_exactly_or_by_prefix() {
        let list = vec![
            "/srv/git/a.git".to_owned(),
            "git@github.com:org/*".to_owned(),
        ];
        let table = [
            ("/srv/git/a.git", true),
            ("/srv/git/a.git2", false),
            ("git@github.com:org/tool.git", true),
            ("git@github.com:other/x.git", false),
        ];
        for (remote, want) in table {
            assert_eq!(allowed(remote, &list), want, "{remote}");
        }
        assert!(!allowed("/srv/git/a.git", &[]));
    }
}
