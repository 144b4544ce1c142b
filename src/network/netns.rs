//! Persistent network namespaces: a namespace bind-mounted on a file (as
//! `ip netns add` does), so it outlives the processes in it (a restart
//! keeps the container's network) and the runtime can join it by path.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A new, empty network namespace bound at `path` (which must not exist).
pub fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| Error::Io {
                op: "create",
                path: dir.to_path_buf(),
                source,
            })?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(|source| Error::Io {
            op: "create",
            path: path.to_path_buf(),
            source,
        })?;
    let target = path.to_path_buf();
    // unshare(CLONE_NEWNET) moves only the calling thread: a thread of its
    // own, gone when done, leaves this process where it was.
    let bound = std::thread::spawn(move || -> Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|source| Error::Sys {
            op: "unshare the network namespace for",
            path: target.clone(),
            source,
        })?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| Error::Sys {
            op: "bind the network namespace on",
            path: target,
            source,
        })
    })
    .join()
    .unwrap_or_else(|_| {
        Err(Error::Io {
            op: "create a network namespace at",
            path: path.to_path_buf(),
            source: std::io::Error::other("thread panicked"),
        })
    });
    if bound.is_err() {
        let _ = std::fs::remove_file(path);
    }
    bound
}

/// Unbinds and removes `path`; the namespace goes when nothing else holds
/// it. Ok if it was never there.
pub fn remove(path: &Path) -> Result<()> {
    // A namespace can be bound more than once (a crash between two tries):
    // unmount until the file is a plain file again.
    for _ in 0..8 {
        match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => break,
            Err(source) => {
                return Err(Error::Sys {
                    op: "unmount the network namespace at",
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            op: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}
