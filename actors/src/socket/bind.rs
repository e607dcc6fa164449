//! Binding a private Unix socket safely: a 0700 directory, a live listener detected instead
//! of its socket stolen, a stale file replaced, mode 0600 from the first moment, and the
//! file removed again when the owner is dropped. The control socket and every agent's IPC
//! socket are bound this way.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;

/// Why a socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another process answers on this path.
    #[error("another process is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// Something that is not a socket sits at the path.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// The path has no parent directory.
    #[error("{0} has no parent directory")]
    NoParent(PathBuf),
    /// A filesystem or bind error.
    #[error("cannot bind {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// A bound socket; the file is removed when this is dropped (if it is still ours).
#[derive(Debug)]
pub struct BoundSocket {
    listener: Arc<UnixListener>,
    path: PathBuf,
    inode: (u64, u64),
}

impl BoundSocket {
    /// Binds `path` (mode 0600; the parent is created 0700 if missing, and an existing
    /// parent is left as it is). Must run inside a tokio runtime.
    pub fn bind(path: &Path) -> Result<Self, BindError> {
        Self::bind_in(path, false)
    }

    /// Like [`BoundSocket::bind`], but the parent directory is also made 0700 when it
    /// exists (Culture's `~/.culture/run` rule).
    pub fn bind_private_dir(path: &Path) -> Result<Self, BindError> {
        Self::bind_in(path, true)
    }

    fn bind_in(path: &Path, chmod_parent: bool) -> Result<Self, BindError> {
        let io_err = |source| BindError::Io {
            path: path.to_owned(),
            source,
        };
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| BindError::NoParent(path.to_owned()))?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io_err)?;
        if chmod_parent {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err)?;
        }
        remove_if_stale(path)?;
        let std_listener = bind_0600(parent, path).map_err(io_err)?;
        std_listener.set_nonblocking(true).map_err(io_err)?;
        let meta = std::fs::metadata(path).map_err(io_err)?;
        let listener = UnixListener::from_std(std_listener).map_err(io_err)?;
        Ok(Self {
            listener: Arc::new(listener),
            path: path.to_owned(),
            inode: (meta.dev(), meta.ino()),
        })
    }

    /// The listener, shared with every instance of the actor that serves it.
    pub fn listener(&self) -> Arc<UnixListener> {
        self.listener.clone()
    }

    /// Where it is bound.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        // Only remove the file if it is still ours (not a successor's).
        let ours = std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds a socket that is 0600 from the moment it appears at `path`, without touching the
/// process-wide umask (other threads create files meanwhile): it is bound in a fresh 0700
/// staging directory beside `path`, made 0600 there, then hard-linked into place (which,
/// unlike a rename, never replaces a file that appeared at `path` meanwhile).
fn bind_0600(parent: &Path, path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static STAGING: AtomicU64 = AtomicU64::new(0);
    // Short, so the staging path fits `sun_path` whenever `path` does.
    let n = STAGING.fetch_add(1, Ordering::Relaxed);
    let staging = parent.join(format!(".b{}.{n}", std::process::id()));
    DirBuilder::new().mode(0o700).create(&staging)?;
    let staged = staging.join("s");
    let result = std::os::unix::net::UnixListener::bind(&staged).and_then(|listener| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::hard_link(&staged, path)?;
        Ok(listener)
    });
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&staging);
    result
}

/// Removes a socket file nobody listens on; refuses to touch a live one or a non-socket.
fn remove_if_stale(path: &Path) -> Result<(), BindError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BindError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket(path.to_owned()));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(BindError::AlreadyRunning(path.to_owned()));
    }
    std::fs::remove_file(path).map_err(|source| BindError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads and throws away what a refused peer still sends, until EOF, 64 KiB or `patience`:
/// closing a Unix socket with unread input resets it, and the peer would lose the answer
/// written just before.
pub async fn discard_input(
    mut read: impl tokio::io::AsyncRead + Unpin,
    patience: std::time::Duration,
) {
    use tokio::io::AsyncReadExt;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < 64 * 1024 {
            match read.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(patience, drain).await;
}

/// The effective user id of this process: the only peer a private socket serves.
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn binds_0600_replaces_stale_refuses_live_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/codexd.sock");
        let socket = BoundSocket::bind(&path).expect("bind");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("parent")), 0o700);
        assert!(matches!(
            BoundSocket::bind(&path),
            Err(BindError::AlreadyRunning(_))
        ));
        drop(socket);
        assert!(!path.exists(), "removed on drop");

        // A stale socket (bound, then its listener closed without cleanup) is replaced.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("stale"));
        assert!(path.exists());
        let again = BoundSocket::bind(&path).expect("stale replaced");
        drop(again);

        std::fs::write(&path, "not a socket").expect("file");
        assert!(matches!(
            BoundSocket::bind(&path),
            Err(BindError::NotASocket(_))
        ));
    }

    #[tokio::test]
    async fn a_private_dir_is_made_0700_even_when_it_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().join("run");
        std::fs::create_dir(&run).expect("dir");
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let _socket = BoundSocket::bind_private_dir(&run.join("culture-x.sock")).expect("bind");
        assert_eq!(mode(&run), 0o700);
    }
}
