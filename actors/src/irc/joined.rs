//! The channels an agent joined at run time (IPC `irc_join`, its `irc_join` tool, an
//! accepted invitation), remembered in `<state_dir>/<nick>/channels`, one per line, so that
//! a restart of the `irc` actor or of the daemon rejoins them; a part forgets one. The
//! configured channels are not listed: the config has them.
//!
//! The file is replaced atomically and durably ([`crate::durable::write_atomic`], 0600).
//! A missing file lists nothing; an unreadable one is warned about and lists nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::durable::write_atomic;

/// The runtime-joined channels and where they are kept.
#[derive(Debug, Default)]
pub(super) struct Joined {
    path: Option<PathBuf>,
    channels: Vec<String>,
}

impl Joined {
    /// Reads `path` (`None`: nothing is remembered).
    pub(super) fn load(path: Option<PathBuf>) -> Self {
        let channels = match path.as_deref().map(fs::read_to_string) {
            None => Vec::new(),
            Some(Ok(text)) => text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(Err(error)) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
            Some(Err(error)) => {
                tracing::warn!(error = %error, file = ?path, "joined channels not read; only the configured ones are joined");
                Vec::new()
            }
        };
        Self { path, channels }
    }

    /// The remembered channels, in join order.
    pub(super) fn channels(&self) -> &[String] {
        &self.channels
    }

    /// Remembers `channel` (no-op when it is already listed).
    pub(super) fn add(&mut self, channel: &str) {
        if self.position(channel).is_none() {
            self.channels.push(channel.to_owned());
            self.save();
        }
    }

    /// Forgets `channel` (no-op when it is not listed).
    pub(super) fn remove(&mut self, channel: &str) {
        if let Some(at) = self.position(channel) {
            self.channels.remove(at);
            self.save();
        }
    }

    fn position(&self, channel: &str) -> Option<usize> {
        self.channels
            .iter()
            .position(|c| c.eq_ignore_ascii_case(channel))
    }

    fn save(&self) {
        let Some(path) = &self.path else {
            return;
        };
        if let Err(error) = write(path, &self.channels) {
            tracing::warn!(error = %error, file = %path.display(), "joined channels not saved; a restart may not rejoin them");
        }
    }
}

/// Replaces `path` with `channels`, one per line, atomically and durably.
fn write(path: &Path, channels: &[String]) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file path",
        ));
    };
    let text: String = channels.iter().map(|c| format!("{c}\n")).collect();
    write_atomic(dir, &name.to_string_lossy(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_parts_survive_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("channels");
        let mut joined = Joined::load(Some(path.clone()));
        assert!(joined.channels().is_empty());
        joined.add("#later");
        joined.add("#Later");
        joined.add("#ops");
        joined.remove("#OPS");
        joined.remove("#never");
        assert_eq!(Joined::load(Some(path.clone())).channels(), ["#later"]);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(&path).expect("file").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(Joined::load(None).channels().is_empty());
    }
}
