//! A procfs handle that is checked to be procfs before anything is written
//! through it (CVE-2019-16884).
//!
//! Inside the container, `/proc` is whatever the config mounted there: a
//! config (or an image whose `/proc` tricked a mount) that puts a tmpfs with
//! fake files on `/proc` would have the runtime write its sysctls or its LSM
//! label into those fakes, and the process would run unconfined. So `/proc`
//! must be the root of a procfs mount (fstatfs says PROC_SUPER_MAGIC and the
//! inode is procfs's root inode), and every file is opened beneath it with
//! openat2 without leaving that mount or following magic links, then checked
//! again with fstatfs.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use rustix::fs::{Mode, OFlags, ResolveFlags};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path} is not procfs (it is {fs}); refusing to {what} through it")]
    NotProcfs {
        path: PathBuf,
        fs: String,
        what: String,
    },
    #[error("{path} is not the root of a procfs mount; refusing to {what} through it")]
    NotProcRoot { path: PathBuf, what: String },
    #[error("{op} {path}: {errno}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// statfs f_type of procfs.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// The inode number of procfs's root directory (PROC_ROOT_INO).
const PROC_ROOT_INO: u64 = 1;

/// An open, verified procfs root.
pub struct ProcFs {
    root: OwnedFd,
    path: PathBuf,
}

/// A readable name for common filesystem magics, for error messages.
pub fn fs_name(magic: i64) -> String {
    match magic {
        0x9fa0 => "procfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x6265_6572 => "sysfs".into(),
        0xef53 => "ext4".into(),
        0x794c_7630 => "overlayfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683e => "btrfs".into(),
        0x1373 => "devtmpfs".into(),
        m => format!("a filesystem with magic {m:#x}"),
    }
}

fn sys<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(rustix::io::Errno) -> Error + 'a {
    move |e| Error::Sys {
        op,
        path: path.to_path_buf(),
        errno: Errno::from_raw(e.raw_os_error()),
    }
}

fn check_procfs(fd: impl AsFd, path: &Path, what: &str) -> Result<()> {
    let st = rustix::fs::fstatfs(&fd).map_err(sys("statfs", path))?;
    let magic = st.f_type as i64;
    if magic != PROC_SUPER_MAGIC {
        return Err(Error::NotProcfs {
            path: path.to_path_buf(),
            fs: fs_name(magic),
            what: what.to_string(),
        });
    }
    Ok(())
}

impl ProcFs {
    /// Opens and checks `path` (`/proc` in the current root). `what` says
    /// what it is for, in errors ("set sysctls", "set the apparmor profile").
    pub fn open(path: &Path, what: &str) -> Result<ProcFs> {
        let root = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open", path))?;
        check_procfs(&root, path, what)?;
        let st = rustix::fs::fstat(&root).map_err(sys("stat", path))?;
        if st.st_ino != PROC_ROOT_INO {
            // A procfs subdirectory bound on /proc: its "sys" or "self"
            // would not be what they claim.
            return Err(Error::NotProcRoot {
                path: path.to_path_buf(),
                what: what.to_string(),
            });
        }
        Ok(ProcFs {
            root,
            path: path.to_path_buf(),
        })
    }

    /// Opens `rel` (relative to the procfs root) beneath the root, without
    /// crossing a mount or following a magic link, and checks it is procfs.
    pub fn open_file(&self, rel: &Path, flags: OFlags, what: &str) -> Result<std::fs::File> {
        let full = self.path.join(rel);
        let fd = rustix::fs::openat2(
            &self.root,
            rel,
            flags | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
        )
        .map_err(|e| match e {
            rustix::io::Errno::XDEV => Error::NotProcfs {
                path: full.clone(),
                fs: "another mount on top of procfs".into(),
                what: what.to_string(),
            },
            e => sys("open", &full)(e),
        })?;
        check_procfs(&fd, &full, what)?;
        Ok(std::fs::File::from(fd))
    }

    /// Writes `data` to `rel` in one write(2), as procfs expects.
    pub fn write(&self, rel: &Path, data: &[u8], what: &str) -> Result<()> {
        let mut f = self.open_file(rel, OFlags::WRONLY, what)?;
        let full = self.path.join(rel);
        f.write_all(data).map_err(|e| Error::Sys {
            op: "write",
            path: full,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
    }
}

/// The file under /proc/sys for a sysctl key (`net.ipv4.ip_forward`).
pub fn sysctl_path(key: &str) -> PathBuf {
    Path::new("sys").join(key.replace('.', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_proc_is_accepted() {
        let p = ProcFs::open(Path::new("/proc"), "test").unwrap();
        let f = p.open_file(Path::new("self/status"), OFlags::RDONLY, "test");
        assert!(f.is_ok());
        // thread-self is a plain symlink inside procfs, allowed beneath.
        assert!(
            p.open_file(Path::new("thread-self/attr/current"), OFlags::RDONLY, "t")
                .is_ok()
        );
    }

    #[test]
    fn a_directory_that_is_not_procfs_is_refused() {
        let dir = std::env::temp_dir();
        let e = ProcFs::open(&dir, "set sysctls").err().expect("refused");
        assert!(matches!(e, Error::NotProcfs { .. }), "{e}");
        assert!(e.to_string().contains("refusing to set sysctls"), "{e}");
    }

    #[test]
    fn a_procfs_subdirectory_is_refused() {
        let e = ProcFs::open(Path::new("/proc/sys"), "set sysctls")
            .err()
            .expect("refused");
        assert!(matches!(e, Error::NotProcRoot { .. }), "{e}");
    }

    #[test]
    fn magic_links_are_not_followed() {
        let p = ProcFs::open(Path::new("/proc"), "test").unwrap();
        // /proc/self/root is a magic link to "/": following it would leave
        // procfs.
        let e = p
            .open_file(Path::new("self/root/etc/hostname"), OFlags::RDONLY, "t")
            .expect_err("refused");
        assert!(e.to_string().contains("self/root"), "{e}");
    }

    #[test]
    fn sysctl_names_map_to_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward"),
            Path::new("sys/net/ipv4/ip_forward")
        );
    }
}
