//! Resolving paths inside a container's root filesystem without ever leaving it.
//!
//! A rootfs is untrusted: its symlinks may point at `/`, `..` or host paths
//! (CVE-2019-19921, CVE-2021-30465). Every path is walked one component at a
//! time from a directory fd with `O_NOFOLLOW`; symlinks are read and their
//! targets walked again from the root fd, so an absolute link means "the
//! container's `/`". A `..` that would climb above the root is an error rather
//! than being clamped: a config or image that tries it is hostile or broken.
//! The result is an fd, and callers act on the fd (or on `/proc/self/fd/N`),
//! never on a joined string, so a symlink swapped in afterwards changes nothing.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};

/// Symlinks followed before giving up, as the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: escapes the container root (through {via})")]
    Escapes { path: PathBuf, via: PathBuf },
    #[error("{path}: too many levels of symbolic links")]
    Loop { path: PathBuf },
    #[error("{path}: {what} is not a directory")]
    NotDir { path: PathBuf, what: PathBuf },
    #[error("{path}: {op} {what}: {errno}")]
    Sys {
        path: PathBuf,
        op: &'static str,
        what: PathBuf,
        errno: Errno,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The OS error behind this failure, if there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Loop { .. } => Some(Errno::ELOOP),
            Error::NotDir { .. } => Some(Errno::ENOTDIR),
            Error::Escapes { .. } => None,
        }
    }
}

/// What to do when the final component is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// Fail with ENOENT.
    No,
    /// Create missing directories, the last one included.
    Dir(u32),
    /// Create missing parent directories, then an empty regular file.
    File { dir_mode: u32, file_mode: u32 },
}

/// The root directory of a container, held open.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `path` (a host path) as the root to resolve under.
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| Error::Sys {
            path: path.to_path_buf(),
            op: "open",
            what: path.to_path_buf(),
            errno,
        })?;
        // SAFETY: open returned a new fd that nothing else owns.
        Ok(Root {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    pub fn from_fd(fd: OwnedFd, path: PathBuf) -> Root {
        Root { fd, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolves `path` (interpreted inside the root) to an `O_PATH` fd of the
    /// object it names, following symlinks inside the root, including in the
    /// last component.
    pub fn resolve(&self, path: &Path) -> Result<OwnedFd> {
        self.walk(path, Create::No, true)
    }

    /// As [`Root::resolve`], but a symlink in the last component is not followed:
    /// the fd names the link itself.
    pub fn resolve_nofollow(&self, path: &Path) -> Result<OwnedFd> {
        self.walk(path, Create::No, false)
    }

    /// Resolves `path`, creating what is missing as `create` says.
    pub fn resolve_or_create(&self, path: &Path, create: Create) -> Result<OwnedFd> {
        self.walk(path, create, true)
    }

    /// As [`Root::resolve_or_create`], but a symlink in the last component is
    /// not followed: the fd names the link itself, for callers that refuse
    /// links there.
    pub fn resolve_or_create_nofollow(&self, path: &Path, create: Create) -> Result<OwnedFd> {
        self.walk(path, create, false)
    }

    /// Opens the object at `path` with real open flags (not `O_PATH`), by
    /// reopening the resolved fd through `/proc/self/fd`.
    pub fn open_file(&self, path: &Path, flags: OFlag) -> Result<std::fs::File> {
        let fd = self.resolve(path)?;
        reopen(&fd, flags).map_err(|errno| self.sys(path, "reopen", path, errno))
    }

    /// The container's parent directory of `path` plus the final name, for
    /// callers that create the last component themselves (mknod, symlink).
    pub fn resolve_parent(&self, path: &Path, dir_mode: u32) -> Result<(OwnedFd, OsString)> {
        let (parent, name) = split_last(path).ok_or_else(|| Error::Escapes {
            path: path.to_path_buf(),
            via: PathBuf::from("/"),
        })?;
        let fd = self.resolve_or_create(&parent, Create::Dir(dir_mode))?;
        Ok((fd, name))
    }

    fn sys(&self, path: &Path, op: &'static str, what: &Path, errno: Errno) -> Error {
        Error::Sys {
            path: path.to_path_buf(),
            op,
            what: what.to_path_buf(),
            errno,
        }
    }

    fn walk(&self, path: &Path, create: Create, follow_last: bool) -> Result<OwnedFd> {
        // Components still to walk, last first, so symlink targets can be
        // pushed in front of what remains.
        let mut todo: Vec<OsString> = Vec::new();
        push_components(&mut todo, path);
        // The chain of directories from the root to where we are; `..` pops.
        let mut stack: Vec<OwnedFd> =
            vec![dup_fd(&self.fd).map_err(|e| self.sys(path, "dup", &self.path, e))?];
        let mut walked = PathBuf::from("/");
        let mut links = 0;

        while let Some(name) = todo.pop() {
            if name == ".." {
                if stack.len() == 1 {
                    return Err(Error::Escapes {
                        path: path.to_path_buf(),
                        via: walked,
                    });
                }
                stack.pop();
                walked.pop();
                continue;
            }
            let last = todo.is_empty();
            let cur = stack.last().expect("stack always holds the root");
            let cname = cstring(&name);
            let here = walked.join(&name);
            let st = match fstatat(
                Some(cur.as_raw_fd()),
                cname.as_c_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => Some(st),
                Err(Errno::ENOENT) => None,
                Err(errno) => return Err(self.sys(path, "stat", &here, errno)),
            };
            let st = match st {
                Some(st) => st,
                None => {
                    self.create_missing(cur, &cname, last, create, path, &here)?;
                    // Loop again over the same name: it now exists (or a
                    // racing process made it something else, which the
                    // checks below then see).
                    todo.push(name);
                    continue;
                }
            };
            let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
            if kind == SFlag::S_IFLNK && (!last || follow_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::Loop {
                        path: path.to_path_buf(),
                    });
                }
                let target = nix::fcntl::readlinkat(Some(cur.as_raw_fd()), cname.as_c_str())
                    .map_err(|errno| self.sys(path, "readlink", &here, errno))?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    stack.truncate(1);
                    walked = PathBuf::from("/");
                }
                push_components(&mut todo, &target);
                continue;
            }
            if !last && kind != SFlag::S_IFDIR {
                return Err(Error::NotDir {
                    path: path.to_path_buf(),
                    what: here,
                });
            }
            let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let raw = openat(
                Some(cur.as_raw_fd()),
                cname.as_c_str(),
                flags,
                Mode::empty(),
            )
            .map_err(|errno| self.sys(path, "open", &here, errno))?;
            // SAFETY: openat returned a new fd that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // What we opened must be what we inspected; a swap in between is
            // an attack or a race we refuse to guess about.
            let now = nix::sys::stat::fstat(fd.as_raw_fd())
                .map_err(|errno| self.sys(path, "stat", &here, errno))?;
            if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
                return Err(self.sys(path, "open", &here, Errno::EAGAIN));
            }
            stack.push(fd);
            walked = here;
        }
        Ok(stack.pop().expect("stack always holds the root"))
    }

    fn create_missing(
        &self,
        dir: &OwnedFd,
        name: &CString,
        last: bool,
        create: Create,
        path: &Path,
        here: &Path,
    ) -> Result<()> {
        let res = match create {
            Create::No => Err(Errno::ENOENT),
            Create::Dir(mode) => mkdirat(
                Some(dir.as_raw_fd()),
                name.as_c_str(),
                Mode::from_bits_truncate(mode),
            ),
            Create::File { dir_mode, .. } if !last => mkdirat(
                Some(dir.as_raw_fd()),
                name.as_c_str(),
                Mode::from_bits_truncate(dir_mode),
            ),
            Create::File { file_mode, .. } => openat(
                Some(dir.as_raw_fd()),
                name.as_c_str(),
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC
                    | OFlag::O_WRONLY,
                Mode::from_bits_truncate(file_mode),
            )
            .map(|fd| {
                let _ = nix::unistd::close(fd);
            }),
        };
        match res {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(errno) => Err(self.sys(
                path,
                if create == Create::No {
                    "stat"
                } else {
                    "create"
                },
                here,
                errno,
            )),
        }
    }
}

/// Opens the object behind an `O_PATH` fd with real flags.
pub fn reopen(fd: &impl AsFd, flags: OFlag) -> std::result::Result<std::fs::File, Errno> {
    let proc_path = proc_fd_path(fd.as_fd().as_raw_fd());
    let raw = nix::fcntl::open(proc_path.as_path(), flags | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: open returned a new fd that nothing else owns.
    Ok(unsafe { std::fs::File::from_raw_fd(raw) })
}

/// `/proc/self/fd/N`: how a syscall that takes only paths (mount, for one) is
/// pointed at exactly the object an fd holds.
pub fn proc_fd_path(fd: RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

fn dup_fd(fd: &OwnedFd) -> std::result::Result<OwnedFd, Errno> {
    fd.try_clone()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))
}

fn cstring(name: &OsStr) -> CString {
    // Components come from splitting a path, so they hold no NUL.
    CString::new(name.as_bytes()).unwrap_or_default()
}

/// Pushes the components of `path` onto `todo` so that popping yields them in
/// order. `.` and the root are dropped; `..` is kept for the walk to judge.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let mut comps: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => comps.push(n.to_os_string()),
            Component::ParentDir => comps.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    todo.extend(comps.into_iter().rev());
}

/// Splits a container path into its parent and final name, `None` for `/`.
/// `..` in the final position is refused (it names no new object).
pub fn split_last(path: &Path) -> Option<(PathBuf, OsString)> {
    let mut comps: Vec<OsString> = Vec::new();
    push_components(&mut comps, path);
    comps.reverse();
    let name = comps.pop()?;
    if name == ".." {
        return None;
    }
    let parent: PathBuf = std::iter::once(OsString::from("/")).chain(comps).collect();
    Some((parent, name))
}

/// A path made of bytes, for messages.
pub fn display_bytes(b: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn real(fd: &OwnedFd) -> PathBuf {
        fs::read_link(proc_fd_path(fd.as_raw_fd())).unwrap()
    }

    #[test]
    fn absolute_symlinks_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("link")).unwrap();
        let r = Root::open(&root).unwrap();
        let fd = r.resolve(Path::new("/link")).unwrap();
        assert_eq!(real(&fd), root.join("etc"));
    }

    #[test]
    fn dotdot_above_root_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("a")).unwrap();
        symlink("../../../../tmp", root.join("a/up")).unwrap();
        let r = Root::open(&root).unwrap();
        let err = r
            .resolve_or_create(Path::new("/a/up/x"), Create::Dir(0o755))
            .unwrap_err();
        assert!(matches!(err, Error::Escapes { .. }), "{err}");
        assert!(r.resolve(Path::new("/../etc")).is_err());
        // Nothing was created outside.
        assert!(!t.path().join("x").exists());
    }

    #[test]
    fn relative_dotdot_inside_is_fine() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("var")).unwrap();
        fs::create_dir_all(root.join("run")).unwrap();
        symlink("../run", root.join("var/run")).unwrap();
        let r = Root::open(&root).unwrap();
        let fd = r
            .resolve_or_create(Path::new("/var/run/lock"), Create::Dir(0o755))
            .unwrap();
        assert_eq!(real(&fd), root.join("run/lock"));
    }

    #[test]
    fn creates_files_and_dirs() {
        let t = tempfile::tempdir().unwrap();
        let r = Root::open(t.path()).unwrap();
        r.resolve_or_create(
            Path::new("/a/b/c"),
            Create::File {
                dir_mode: 0o755,
                file_mode: 0o644,
            },
        )
        .unwrap();
        assert!(t.path().join("a/b/c").is_file());
        r.resolve_or_create(Path::new("d/e"), Create::Dir(0o700))
            .unwrap();
        assert!(t.path().join("d/e").is_dir());
    }

    #[test]
    fn symlink_loops_end() {
        let t = tempfile::tempdir().unwrap();
        symlink("/b", t.path().join("a")).unwrap();
        symlink("/a", t.path().join("b")).unwrap();
        let r = Root::open(t.path()).unwrap();
        assert!(matches!(
            r.resolve(Path::new("/a")).unwrap_err(),
            Error::Loop { .. }
        ));
    }

    #[test]
    fn nofollow_names_the_link() {
        let t = tempfile::tempdir().unwrap();
        symlink("/nowhere", t.path().join("l")).unwrap();
        let r = Root::open(t.path()).unwrap();
        assert!(r.resolve(Path::new("/l")).is_err());
        let fd = r.resolve_nofollow(Path::new("/l")).unwrap();
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
    }

    #[test]
    fn split_last_works() {
        assert_eq!(
            split_last(Path::new("/a/b")),
            Some((PathBuf::from("/a"), OsString::from("b")))
        );
        assert_eq!(split_last(Path::new("/")), None);
        assert_eq!(split_last(Path::new("/a/..")), None);
    }
}
