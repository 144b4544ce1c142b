//! `tmpcopyup`, the mount option runc and crun accept on tmpfs mounts (podman
//! puts it on every tmpfs it asks for, /run and /tmp of `--read-only`
//! among them): the new tmpfs starts with a copy of what the rootfs had at
//! its destination.
//!
//! The copy reads the hidden directory through an fd opened before the
//! tmpfs went over it, so no temporary mount point is needed, and every
//! step is relative to a directory fd without following symlinks: a rootfs
//! cannot point the copy outside itself.

use std::ffi::{CStr, OsStr};
use std::os::fd::BorrowedFd;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Timestamps};
use rustix::io::Errno;

#[derive(Debug, thiserror::Error)]
#[error("tmpcopyup: {op} {path}: {errno}")]
pub struct Error {
    op: &'static str,
    path: PathBuf,
    errno: Errno,
}

pub type Result<T> = std::result::Result<T, Error>;

/// Directories deeper than this are refused, not recursed into: a rootfs is
/// not trusted to be shallow, and the copy recurses on the stack.
const MAX_DEPTH: usize = 128;

struct Copy<'a> {
    /// Where the copied tree is, for messages.
    dest: &'a Path,
}

impl Copy<'_> {
    fn err(&self, op: &'static str, rel: &Path) -> impl FnOnce(Errno) -> Error {
        let path = self.dest.join(rel);
        move |errno| Error { op, path, errno }
    }
}

/// Copies the contents of the directory `from` into the directory `to`:
/// directories, files, symlinks, device nodes, fifos and sockets, with
/// their mode, owner and times. `dest` names the mount in messages.
pub fn copy_contents(from: impl AsFd, to: impl AsFd, dest: &Path) -> Result<()> {
    let c = Copy { dest };
    copy_dir(&c, from.as_fd(), to.as_fd(), Path::new(""), 0)
}

fn copy_dir(
    c: &Copy<'_>,
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    rel: &Path,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error {
            op: "copy (nested too deep)",
            path: c.dest.join(rel),
            errno: Errno::LOOP,
        });
    }
    let mut entries = Vec::new();
    let dir = Dir::read_from(from).map_err(c.err("read directory", rel))?;
    for entry in dir {
        let entry = entry.map_err(c.err("read directory", rel))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        entries.push(name.to_owned());
    }
    for name in entries {
        copy_entry(c, from, to, rel, &name, depth)?;
    }
    Ok(())
}

fn copy_entry(
    c: &Copy<'_>,
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    rel: &Path,
    name: &CStr,
    depth: usize,
) -> Result<()> {
    let rel = rel.join(OsStr::from_bytes(name.to_bytes()));
    let st =
        rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW).map_err(c.err("stat", &rel))?;
    let file_type = FileType::from_raw_mode(st.st_mode);
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    match file_type {
        FileType::Directory => {
            match rustix::fs::mkdirat(to, name, Mode::RWXU) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(c.err("mkdir", &rel)(e)),
            }
            let src = open_dir(from, name).map_err(c.err("open", &rel))?;
            let dst = open_dir(to, name).map_err(c.err("open", &rel))?;
            copy_dir(c, src.as_fd(), dst.as_fd(), &rel, depth + 1)?;
            rustix::fs::fchmod(&dst, mode).map_err(c.err("chmod", &rel))?;
        }
        FileType::RegularFile => {
            let src = rustix::fs::openat(
                from,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::empty(),
            )
            .map_err(c.err("open", &rel))?;
            let dst = rustix::fs::openat(
                to,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::RUSR | Mode::WUSR,
            )
            .map_err(c.err("create", &rel))?;
            let mut src = std::fs::File::from(src);
            let mut dst = std::fs::File::from(dst);
            std::io::copy(&mut src, &mut dst).map_err(|e| Error {
                op: "copy",
                path: c.dest.join(&rel),
                errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
            })?;
            rustix::fs::fchmod(&dst, mode).map_err(c.err("chmod", &rel))?;
        }
        FileType::Symlink => {
            let target =
                rustix::fs::readlinkat(from, name, Vec::new()).map_err(c.err("readlink", &rel))?;
            rustix::fs::symlinkat(&target, to, name).map_err(c.err("symlink", &rel))?;
        }
        FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo | FileType::Socket => {
            rustix::fs::mknodat(to, name, file_type, mode, st.st_rdev)
                .map_err(c.err("mknod", &rel))?;
        }
        FileType::Unknown => {
            return Err(Error {
                op: "copy (unknown file type)",
                path: c.dest.join(&rel),
                errno: Errno::INVAL,
            });
        }
    }
    rustix::fs::chownat(
        to,
        name,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(c.err("chown", &rel))?;
    // chown clears set-id bits: put the mode back (symlinks have none).
    if file_type != FileType::Symlink && st.st_mode & 0o6000 != 0 {
        rustix::fs::chmodat(to, name, mode, AtFlags::empty()).map_err(c.err("chmod", &rel))?;
    }
    let times = Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    };
    rustix::fs::utimensat(to, name, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(c.err("set times of", &rel))?;
    Ok(())
}

fn open_dir(at: BorrowedFd<'_>, name: &CStr) -> std::result::Result<OwnedFd, Errno> {
    rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    #[test]
    fn copies_a_tree_without_following_symlinks() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::create_dir_all(s.join("a/b")).unwrap();
        std::fs::write(s.join("a/b/file"), b"hello").unwrap();
        std::fs::set_permissions(s.join("a/b/file"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::set_permissions(s.join("a"), std::fs::Permissions::from_mode(0o710)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", s.join("link")).unwrap();
        nix::unistd::mkfifo(
            &s.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();

        let from = std::fs::File::open(s).unwrap();
        let to = std::fs::File::open(dst.path()).unwrap();
        copy_contents(&from, &to, Path::new("/run")).unwrap();

        let d = dst.path();
        assert_eq!(std::fs::read(d.join("a/b/file")).unwrap(), b"hello");
        let m = std::fs::metadata(d.join("a/b/file")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(
            m.mtime(),
            std::fs::metadata(s.join("a/b/file")).unwrap().mtime()
        );
        assert_eq!(
            std::fs::metadata(d.join("a")).unwrap().mode() & 0o7777,
            0o710
        );
        assert_eq!(
            std::fs::read_link(d.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(
            std::fs::symlink_metadata(d.join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }

    #[test]
    fn errors_name_the_mount_and_the_entry() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("x"), b"1").unwrap();
        std::fs::write(dst.path().join("x"), b"already there").unwrap();
        let from = std::fs::File::open(src.path()).unwrap();
        let to = std::fs::File::open(dst.path()).unwrap();
        let e = copy_contents(&from, &to, Path::new("/tmp"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "tmpcopyup: create /tmp/x: File exists (os error 17)");
    }
}
