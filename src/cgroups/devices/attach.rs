//! Loading the device filter and attaching it to a cgroup v2 directory with
//! the bpf(2) syscall (no libbpf: four commands and their attr layouts).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::bpf::{self, Insn};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("devices: open cgroup {path}: {errno}")]
    Open { path: PathBuf, errno: Errno },
    #[error("devices: load the device filter program: {errno}{log}")]
    Load { errno: Errno, log: String },
    #[error("devices: {op} the device filter on {path}: {errno}")]
    Attach {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
}

type Result<T> = std::result::Result<T, Error>;

// bpf(2) commands, program and attach types, flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The BPF_PROG_LOAD part of `union bpf_attr`, up to the fields we set.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// BPF_PROG_QUERY.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::result::Result<libc::c_long, Errno> {
    // SAFETY: `attr` is a live, initialised repr(C) prefix of union
    // bpf_attr and its exact size is passed; the kernel zero-fills the rest.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 { Err(Errno::last()) } else { Ok(r) }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: bpf returned a new fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Loads a device filter program. A verifier refusal carries its log.
pub fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let code = bpf::encode(prog);
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_device");
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(errno) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let last = text.lines().rev().take(3).collect::<Vec<_>>();
            let log = if last.is_empty() {
                String::new()
            } else {
                format!(
                    " (verifier: {})",
                    last.into_iter().rev().collect::<Vec<_>>().join("; ")
                )
            };
            Err(Error::Load { errno, log })
        }
    }
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: open returned a new fd that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(fd) }
    })
    .map_err(|errno| Error::Open {
        path: dir.to_path_buf(),
        errno,
    })
}

/// Ids of the device programs attached to the cgroup at `dir` itself.
pub fn attached(dir: &Path) -> Result<Vec<u32>> {
    let fd = open_dir(dir)?;
    query(fd.as_fd(), dir)
}

fn query(cg: BorrowedFd<'_>, dir: &Path) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|errno| Error::Attach {
        op: "query",
        path: dir.to_path_buf(),
        errno,
    })?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Makes `prog` the cgroup's device filter. The new program is attached
/// before the old ones are detached: with BPF_F_ALLOW_MULTI every program
/// must allow an access, so there is no moment with no filter (as runc).
pub fn replace(dir: &Path, prog: &[Insn]) -> Result<()> {
    let cg = open_dir(dir)?;
    let new = load(prog)?;
    let old = query(cg.as_fd(), dir)?;
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: new.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|errno| Error::Attach {
        op: "attach",
        path: dir.to_path_buf(),
        errno,
    })?;
    for id in old {
        let mut get = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let old_fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
            Ok(fd) => owned(fd),
            // Detached by someone else meanwhile.
            Err(Errno::ENOENT) => continue,
            Err(errno) => {
                return Err(Error::Attach {
                    op: "find the old program on",
                    path: dir.to_path_buf(),
                    errno,
                });
            }
        };
        let mut detach = AttachAttr {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        match bpf(BPF_PROG_DETACH, &mut detach) {
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(errno) => {
                return Err(Error::Attach {
                    op: "detach the old",
                    path: dir.to_path_buf(),
                    errno,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_kernel() {
        // Offsets from linux/bpf.h's union bpf_attr.
        assert_eq!(std::mem::size_of::<AttachAttr>(), 20);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_cnt), 24);
        assert_eq!(std::mem::offset_of!(LoadAttr, log_buf), 32);
        assert_eq!(std::mem::offset_of!(LoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(LoadAttr, expected_attach_type), 68);
    }
}
