//! An agent's repository jobs on disk, so a job survives a daemon restart: it is accepted
//! once its file is written, and removed once it ended (pushed, no changes, failed or
//! cancelled) and its end was reported. A job still on file at start was cut off and is
//! run again, from a clean checkout, until it has been started [`MAX_ATTEMPTS`] times.
//!
//! | path                              | holds                                            |
//! |-----------------------------------|--------------------------------------------------|
//! | `<dir>/jobs/<id:08>.json`          | one job ([`JobRecord`]), rewritten at each start |
//! | `<dir>/jobs/<id:08>.json.corrupt`  | a file that could not be read, set aside         |
//! | `<dir>/last-id`                    | the last id given: ids are never reused          |
//! | `<dir>/work/<id>.<attempt>/`       | the workspace of one attempt (its own, never shared) |
//!
//! Files are 0600 in 0700 directories, written atomically and durably (`durable`). Each
//! job's commit carries `Codexd-Job: <nick>/<id>.<nonce>`; the nonce (random, in the file)
//! keeps two jobs of one id apart even if a state directory is reset.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::{create_dir, read_optional, remove_durably, write_atomic};
use crate::trace::TraceCtx;

/// How many times a job may be started (a restart cutting off the first attempt re-runs it
/// once; a second cut-off gives it up).
pub const MAX_ATTEMPTS: u32 = 2;

const JOBS: &str = "jobs";
const WORK: &str = "work";
const LAST_ID: &str = "last-id";

/// One job as accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its number (per agent, never reused).
    pub id: u64,
    /// The remote (checked when accepted).
    pub remote: String,
    /// The branch to push.
    pub branch: String,
    /// What to start from.
    pub base: Option<String>,
    /// The task.
    pub task: String,
    /// Where progress and the result go (a channel or a nick).
    pub report_to: String,
    /// Who asked (`ipc`, `tool #general`, `operator`).
    pub requested_by: String,
    /// Times started so far.
    pub attempts: u32,
    /// Random hex, part of the commit's job trailer.
    pub nonce: String,
    /// Epoch seconds when it was accepted.
    pub accepted_at: f64,
    /// The request it came from.
    pub trace: TraceCtx,
}

impl JobRecord {
    /// The value of the commit trailer that names this job (`<nick>/<id>.<nonce>`).
    pub fn marker(&self, nick: &str) -> String {
        format!("{nick}/{}.{}", self.id, self.nonce)
    }
}

/// The jobs directory of one agent.
#[derive(Debug)]
pub struct JobJournal {
    dir: PathBuf,
}

impl JobJournal {
    /// Opens (creating) `dir`; the jobs on file, oldest first. Unreadable files are renamed
    /// `.corrupt` and named in the second list.
    pub fn open(dir: &Path) -> io::Result<(Self, Vec<JobRecord>, Vec<PathBuf>)> {
        let jobs = dir.join(JOBS);
        create_dir(&jobs)?;
        create_dir(&dir.join(WORK))?;
        let mut found = Vec::new();
        let mut set_aside = Vec::new();
        for entry in std::fs::read_dir(&jobs)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path); // an interrupted write
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            let record = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| serde_json::from_str::<JobRecord>(&text).ok())
                .filter(|record| file_name(record.id) == name);
            match record {
                Some(record) => found.push(record),
                None => {
                    let aside = path.with_extension("json.corrupt");
                    std::fs::rename(&path, &aside)?;
                    set_aside.push(aside);
                }
            }
        }
        found.sort_by_key(|record| record.id);
        Ok((
            Self {
                dir: dir.to_path_buf(),
            },
            found,
            set_aside,
        ))
    }

    /// The next id: one more than the last given (and than any on file).
    pub fn next_id(&self, on_file: &[u64]) -> io::Result<u64> {
        let last = read_optional(&self.dir.join(LAST_ID))?
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let id = last.max(on_file.iter().copied().max().unwrap_or(0)) + 1;
        write_atomic(&self.dir, LAST_ID, format!("{id}\n").as_bytes())?;
        Ok(id)
    }

    /// Writes (or rewrites) `record`; once this returns, the job survives a crash.
    pub fn write(&self, record: &JobRecord) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        write_atomic(&self.dir.join(JOBS), &file_name(record.id), &bytes)
    }

    /// Forgets job `id` (it ended and was reported).
    pub fn remove(&self, id: u64) -> io::Result<()> {
        let jobs = self.dir.join(JOBS);
        remove_durably(&jobs, &jobs.join(file_name(id)))
    }

    /// The workspace of `attempt` of job `id`.
    pub fn workspace(&self, id: u64, attempt: u32) -> PathBuf {
        self.dir.join(WORK).join(format!("{id}.{attempt}"))
    }

    /// Deletes the workspaces of job `id` (every attempt's, but `keep`), best effort.
    pub fn clear_workspaces(&self, id: u64, keep: Option<u32>) {
        for (job, attempt, path) in self.workspaces() {
            if job == id && Some(attempt) != keep {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }

    /// Deletes every workspace whose job is not in `pending` (failed jobs' are kept until
    /// the next start, for a look).
    pub fn clear_finished(&self, pending: &[u64]) {
        for (job, _, path) in self.workspaces() {
            if !pending.contains(&job) {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }

    fn workspaces(&self) -> Vec<(u64, u32, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join(WORK)) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let (job, attempt) = name.split_once('.')?;
                Some((job.parse().ok()?, attempt.parse().ok()?, entry.path()))
            })
            .collect()
    }
}

fn file_name(id: u64) -> String {
    format!("{id:08}.json")
}

/// Eight random hex digits.
pub fn nonce() -> String {
    format!("{:08x}", fastrand::u32(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64) -> JobRecord {
        JobRecord {
            id,
            remote: "/srv/git/a.git".into(),
            branch: "fix".into(),
            base: None,
            task: "do it".into(),
            report_to: "#general".into(),
            requested_by: "ipc".into(),
            attempts: 0,
            nonce: "0badc0de".into(),
            accepted_at: 1.0,
            trace: TraceCtx::default(),
        }
    }

    #[test]
    fn jobs_survive_a_reopen_and_ids_are_never_reused() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let dir = scratch.path().join("repo");
        let (journal, found, _) = JobJournal::open(&dir).expect("open");
        assert!(found.is_empty());
        let first = journal.next_id(&[]).expect("id");
        let second = journal.next_id(&[]).expect("id");
        assert_eq!((first, second), (1, 2));
        journal.write(&record(first)).expect("write");
        journal.write(&record(second)).expect("write");
        journal.remove(first).expect("remove");
        std::fs::write(dir.join("jobs/00000009.json"), "{not json").expect("write");
        let (journal, found, aside) = JobJournal::open(&dir).expect("reopen");
        assert_eq!(found, vec![record(2)]);
        assert_eq!(aside, vec![dir.join("jobs/00000009.json.corrupt")]);
        assert_eq!(
            journal.next_id(&[2]).expect("id"),
            3,
            "after the last given"
        );
        std::fs::remove_file(dir.join(LAST_ID)).expect("rm");
        assert_eq!(
            journal.next_id(&[7]).expect("id"),
            8,
            "after the highest on file"
        );
        assert_eq!(record(4).marker("spark-a"), "spark-a/4.0badc0de");
    }

    #[test]
    fn each_attempt_has_a_workspace_of_its_own() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let (journal, _, _) = JobJournal::open(scratch.path()).expect("open");
        let (a1, a2, b1) = (
            journal.workspace(1, 1),
            journal.workspace(1, 2),
            journal.workspace(2, 1),
        );
        assert_ne!(a1, a2);
        for dir in [&a1, &a2, &b1] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        journal.clear_workspaces(1, Some(2));
        assert!(!a1.exists() && a2.exists() && b1.exists());
        journal.clear_finished(&[1]);
        assert!(a2.exists() && !b1.exists());
    }
}
