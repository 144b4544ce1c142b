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
    #[error(
        "{what} maps more than your own id {id}: that takes {helper} (Debian package uidmap) and ranges for you in /etc/sub{kind}id, and {helper} is not installed"
    )]
    NoHelper {
        what: &'static str,
        id: u32,
        helper: &'static str,
        kind: &'static str,
    },
    #[error("{helper} {args}: {why}")]
    Helper {
        helper: PathBuf,
        args: String,
        why: String,
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

/// How the id maps of a new user namespace get written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdMapper {
    /// By us, through /proc/PID/{uid,gid}_map. `deny_setgroups` is what an
    /// unprivileged gid map requires (and keeps a rootless container from
    /// dropping supplementary groups it was denied with).
    Direct { deny_setgroups: bool },
    /// By the setuid helpers of shadow, which check the ranges against
    /// /etc/subuid and /etc/subgid (rootless, more than one id).
    Helpers {
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
}

fn only_self(maps: &[LinuxIdMapping], id: u32) -> bool {
    matches!(maps, [m] if m.size() == 1 && m.host_id() == id)
}

/// Chooses how to write the maps: root writes anything; an unprivileged
/// caller may write only the single mapping of its own ids (runc's rootless
/// default), and needs newuidmap/newgidmap for anything more. `helpers`
/// are their paths, when installed.
pub fn choose_id_mapper(
    euid: u32,
    egid: u32,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
    helpers: (Option<PathBuf>, Option<PathBuf>),
) -> Result<IdMapper> {
    if euid == 0 {
        return Ok(IdMapper::Direct {
            deny_setgroups: false,
        });
    }
    if only_self(uid, euid) && only_self(gid, egid) {
        return Ok(IdMapper::Direct {
            deny_setgroups: true,
        });
    }
    match helpers {
        (Some(newuidmap), Some(newgidmap)) => Ok(IdMapper::Helpers {
            newuidmap,
            newgidmap,
        }),
        (None, _) => Err(Error::NoHelper {
            what: "linux.uidMappings",
            id: euid,
            helper: "newuidmap",
            kind: "u",
        }),
        (_, None) => Err(Error::NoHelper {
            what: "linux.gidMappings",
            id: egid,
            helper: "newgidmap",
            kind: "g",
        }),
    }
}

/// Where a shadow helper is installed, if it is.
pub fn find_helper(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The helpers' argument list: "PID inside outside count ...".
pub fn helper_args(pid: Pid, maps: &[LinuxIdMapping]) -> Vec<String> {
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    args
}

/// Writes the uid and gid maps of `pid`'s user namespace.
pub fn write_id_maps(
    pid: Pid,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
    mapper: &IdMapper,
) -> Result<()> {
    match mapper {
        IdMapper::Direct { deny_setgroups } => {
            let base = PathBuf::from(format!("/proc/{pid}"));
            let write = |name: &str, data: &str| {
                let path = base.join(name);
                fs::write(&path, data).map_err(|source| Error::Write { path, source })
            };
            if *deny_setgroups {
                write("setgroups", "deny")?;
            }
            write("uid_map", &format_id_map(uid))?;
            write("gid_map", &format_id_map(gid))
        }
        IdMapper::Helpers {
            newuidmap,
            newgidmap,
        } => {
            run_helper(newuidmap, &helper_args(pid, uid))?;
            run_helper(newgidmap, &helper_args(pid, gid))
        }
    }
}

fn run_helper(helper: &Path, args: &[String]) -> Result<()> {
    let err = |why: String| Error::Helper {
        helper: helper.to_path_buf(),
        args: args.join(" "),
        why,
    };
    let out = std::process::Command::new(helper)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        let msg = msg.trim().lines().last().unwrap_or("").to_string();
        return Err(err(format!("{} ({})", msg, out.status)));
    }
    Ok(())
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
        assert_eq!(
            helper_args(Pid::from_raw(42), &m),
            ["42", "0", "1000", "1", "1", "100000", "65536"]
        );
    }

    fn maps(json: &str) -> Vec<LinuxIdMapping> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn id_mapper_choice() {
        let me = maps(r#"[{"containerID":0,"hostID":1000,"size":1}]"#);
        let range = maps(
            r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#,
        );
        let helpers = || {
            (
                Some(PathBuf::from("/u/newuidmap")),
                Some(PathBuf::from("/u/newgidmap")),
            )
        };
        assert_eq!(
            choose_id_mapper(0, 0, &range, &range, (None, None)).unwrap(),
            IdMapper::Direct {
                deny_setgroups: false
            }
        );
        assert_eq!(
            choose_id_mapper(1000, 1000, &me, &me, (None, None)).unwrap(),
            IdMapper::Direct {
                deny_setgroups: true
            }
        );
        // Someone else's id, or more than one: the helpers.
        let other = maps(r#"[{"containerID":0,"hostID":1001,"size":1}]"#);
        assert!(matches!(
            choose_id_mapper(1000, 1000, &other, &me, helpers()).unwrap(),
            IdMapper::Helpers { .. }
        ));
        assert!(matches!(
            choose_id_mapper(1000, 1000, &me, &range, helpers()).unwrap(),
            IdMapper::Helpers { .. }
        ));
        let e = choose_id_mapper(1000, 1000, &range, &range, (None, None)).unwrap_err();
        assert!(
            e.to_string().contains("newuidmap (Debian package uidmap)"),
            "{e}"
        );
        let e = choose_id_mapper(1000, 1000, &me, &range, (Some("/x".into()), None)).unwrap_err();
        assert!(e.to_string().contains("newgidmap"), "{e}");
    }
}
