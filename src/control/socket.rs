//! Binding the control socket safely: a private directory, a live daemon detected instead
//! of its socket stolen, a stale file replaced, mode 0600 from the first moment, and the
//! file removed again when the daemon ends.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Why the control socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another daemon answers on this path.
    #[error(
        "another codexd is already listening on {0} (stop it, or set control_socket to another path)"
    )]
    AlreadyRunning(PathBuf),
    /// Something that is not a socket sits at the path.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// The path has no parent directory.
    #[error("{0} has no parent directory")]
    NoParent(PathBuf),
    /// A filesystem or bind error.
    #[error("cannot bind the control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// A bound control socket; the file is removed when this is dropped.
#[derive(Debug)]
pub struct ControlSocket {
    listener: std::sync::Arc<UnixListener>,
    path: PathBuf,
    inode: (u64, u64),
}

impl ControlSocket {
    /// Binds `path` (mode 0600, parent created 0700 if missing). Must run inside a tokio runtime.
    pub fn bind(path: &Path) -> Result<Self, SocketError> {
        let io_err = |source| SocketError::Io {
            path: path.to_owned(),
            source,
        };
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| SocketError::NoParent(path.to_owned()))?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io_err)?;
        remove_if_stale(path)?;
        // Created with 0600 already: no window in which another user could connect.
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let bound = std::os::unix::net::UnixListener::bind(path);
        rustix::process::umask(old);
        let std_listener = bound.map_err(io_err)?;
        std_listener.set_nonblocking(true).map_err(io_err)?;
        let meta = std::fs::metadata(path).map_err(io_err)?;
        let listener = UnixListener::from_std(std_listener).map_err(io_err)?;
        Ok(Self {
            listener: std::sync::Arc::new(listener),
            path: path.to_owned(),
            inode: (meta.dev(), meta.ino()),
        })
    }

    /// The listener, shared with every instance of the control actor.
    pub fn listener(&self) -> std::sync::Arc<UnixListener> {
        self.listener.clone()
    }

    /// Where it is bound.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        // Only remove the file if it is still ours (not a successor daemon's).
        let ours = std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes a socket file nobody listens on; refuses to touch a live one or a non-socket.
fn remove_if_stale(path: &Path) -> Result<(), SocketError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SocketError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket(path.to_owned()));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(SocketError::AlreadyRunning(path.to_owned()));
    }
    std::fs::remove_file(path).map_err(|source| SocketError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The effective user id of this process.
pub(crate) fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn binds_0600_replaces_stale_refuses_live_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/codexd.sock");
        let socket = ControlSocket::bind(&path).expect("bind");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().expect("parent"))
                .expect("dir")
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert!(matches!(
            ControlSocket::bind(&path),
            Err(SocketError::AlreadyRunning(_))
        ));
        drop(socket);
        assert!(!path.exists(), "removed on drop");

        // A stale socket (bound, then its listener closed without cleanup) is replaced.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("stale"));
        assert!(path.exists());
        let again = ControlSocket::bind(&path).expect("stale replaced");
        drop(again);

        std::fs::write(&path, "not a socket").expect("file");
        assert!(matches!(
            ControlSocket::bind(&path),
            Err(SocketError::NotASocket(_))
        ));
    }
}
