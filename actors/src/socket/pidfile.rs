//! Culture's record that an agent runs: `<dir>/agent-<nick>.pid` (Culture's `PID_DIR` is
//! `~/.culture/pids`) holding the daemon's pid in decimal, no newline, so `culture agents
//! status` lists a codexd agent as running (pid alive and its socket present).
//!
//! | event                                  | the file                                       |
//! |----------------------------------------|------------------------------------------------|
//! | the agent's IPC socket is bound        | written (directory created like Culture: `mkdir -p`, default mode) |
//! | IPC `shutdown`, before it is answered  | removed, so `culture agents stop` finds no pid to SIGTERM (that pid is the whole daemon) |
//! | the last holder drops it               | removed                                        |
//!
//! A file is only removed while it still holds our pid: a process that took the name over
//! (`culture agents start` on the same nick writes its own) keeps its file.

use std::io;
use std::path::{Path, PathBuf};

/// One agent's PID file; removed when dropped (if it is still ours).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Culture's path for `nick` in `dir`: `<dir>/agent-<nick>.pid`, the name sanitised as
    /// Culture's `_safe_name` does (every character outside `[A-Za-z0-9._-]` becomes `_`).
    pub fn path_for(dir: &Path, nick: &str) -> PathBuf {
        dir.join(format!("{}.pid", safe_name(&format!("agent-{nick}"))))
    }

    /// Writes `pid` for `nick` in `dir` (created if missing), replacing any file there.
    pub fn write(dir: &Path, nick: &str, pid: u32) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = Self::path_for(dir, nick);
        // Written beside, then renamed: a reader never sees half a number.
        let staged = dir.join(format!(
            ".{}.{pid}.tmp",
            safe_name(&format!("agent-{nick}"))
        ));
        std::fs::write(&staged, pid.to_string())?;
        if let Err(error) = std::fs::rename(&staged, &path) {
            let _ = std::fs::remove_file(&staged);
            return Err(error);
        }
        Ok(Self { path, pid })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it still holds our pid; calling it again is harmless.
    pub fn remove(&self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim().parse::<u32>() == Ok(self.pid));
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Culture's `_safe_name`: the last path component, every character outside
/// `[A-Za-z0-9._-]` replaced by `_`.
///
/// | name               | safe               |
/// |--------------------|--------------------|
/// | `agent-spark-a`    | `agent-spark-a`    |
/// | `agent-spark-[x]`  | `agent-spark-_x_`  |
/// | `agent-a/b`        | `b`                |
fn safe_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                true => c,
                false => '_',
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_culture() {
        assert_eq!(safe_name("agent-spark-a"), "agent-spark-a");
        assert_eq!(safe_name("agent-spark-[x]"), "agent-spark-_x_");
        assert_eq!(safe_name("agent-a/b"), "b");
        assert_eq!(
            PidFile::path_for(Path::new("/p"), "spark-a|b"),
            Path::new("/p/agent-spark-a_b.pid")
        );
    }

    #[test]
    fn written_plain_and_removed_only_while_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let file = PidFile::write(&pids, "spark-a", 4242).expect("written");
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), "4242");
        file.remove();
        assert!(!file.path().exists());
        file.remove(); // again: harmless

        let taken = PidFile::write(&pids, "spark-b", 4242).expect("written");
        std::fs::write(taken.path(), "77").unwrap(); // another process took the name
        let path = taken.path().to_owned();
        drop(taken);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "77");

        let dropped = PidFile::write(&pids, "spark-c", 4242).expect("written");
        let path = dropped.path().to_owned();
        drop(dropped);
        assert!(!path.exists());
    }
}
