//! Creating and joining namespaces: clone3, setns, unshare, id maps and
//! time offsets.

use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;

use super::plan::NsKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("clone3: {0}")]
    Clone(Errno),
    #[error("open namespace {kind} at {path}: {errno}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("join {kind} namespace {path}: {errno}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("unshare namespaces: {0}")]
    Unshare(Errno),
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `struct clone_args` (linux/sched.h), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork(2) with namespace flags and, optionally, straight into a cgroup v2
/// directory (no cgroup.procs write, no RCU wait). Returns the child's pid
/// in the parent and None in the child. The caller must be single-threaded:
/// the child continues on a copy of this thread only.
pub fn clone3(flags: CloneFlags, cgroup: Option<BorrowedFd<'_>>) -> Result<Option<Pid>> {
    let mut args = CloneArgs {
        flags: flags.bits() as u32 as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 with no stack behaves like fork: the child gets a copy
    // of the address space and returns 0. `args` lives across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Error::Clone(Errno::last())),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// Opens a namespace file for setns.
pub fn open_ns(kind: NsKind, path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(
        |errno| Error::Open {
            kind: kind.proc_name(),
            path: path.to_path_buf(),
            errno,
        },
    )?;
    // SAFETY: open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Joins the namespace behind `fd`; the kernel checks it is of `kind`.
pub fn join(kind: NsKind, fd: &OwnedFd, path: &Path) -> Result<()> {
    nix::sched::setns(fd, kind.clone_flag()).map_err(|errno| Error::Join {
        kind: kind.proc_name(),
        path: path.to_path_buf(),
        errno,
    })
}

pub fn unshare(flags: CloneFlags) -> Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(flags).map_err(Error::Unshare)
}

/// The id map file format: "inside outside count" per line.
pub fn format_id_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the uid and gid maps of `pid`'s user namespace. `deny_setgroups`
/// is required before an unprivileged gid map, and keeps a rootless
/// container from dropping supplementary groups it was denied with.
pub fn write_id_maps(
    pid: Pid,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
    deny_setgroups: bool,
) -> Result<()> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let write = |name: &str, data: &str| {
        let path = base.join(name);
        fs::write(&path, data).map_err(|source| Error::Write { path, source })
    };
    if deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("uid_map", &format_id_map(uid))?;
    write("gid_map", &format_id_map(gid))
}

/// Writes time namespace offsets for the namespace our children will enter
/// (after `unshare(CLONE_NEWTIME)`, before the first child).
pub fn write_time_offsets(offsets: &[(String, i64, u32)]) -> Result<()> {
    let data: String = offsets
        .iter()
        .map(|(clock, s, ns)| format!("{clock} {s} {ns}\n"))
        .collect();
    let path = PathBuf::from("/proc/self/timens_offsets");
    fs::write(&path, data).map_err(|source| Error::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_map_format() {
        let m: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#,
        )
        .unwrap();
        assert_eq!(format_id_map(&m), "0 1000 1\n1 100000 65536\n");
    }
}
