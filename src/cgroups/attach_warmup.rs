//! Paying cgroup v1's attach latency off the critical path.
//!
//! Every cgroup.procs write takes the kernel's global
//! cgroup_threadgroup_rwsem for writing. That percpu rwsem, when no writer
//! has used it for a while, first switches its readers to the slow path
//! with rcu_sync_enter, which waits a full RCU grace period: 8-14 ms on
//! this 2-CPU host for the first write after idle, 0.2 ms for the next
//! ones. The switch stays in effect for about one grace period after the
//! last writer leaves.
//!
//! The container's init can only be moved once it exists (after clone),
//! but the grace period does not care who starts it. So create begins
//! with a throwaway writer: a forked helper that moves itself into the
//! cgroup it is already in (a no-op move that still takes the lock). The
//! wait then overlaps the config parsing, cgroup creation, resource writes
//! and namespace setup, and the real writes find the lock ready.
//!
//! On cgroup v2 alone there is nothing to warm: the init is cloned
//! straight into its cgroup (CLONE_INTO_CGROUP) and no write happens.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use super::{Hierarchies, HierarchyKind, hierarchy};

/// The helper, reaped when dropped.
pub struct AttachWarmup {
    helper: Option<Pid>,
}

impl AttachWarmup {
    /// Starts the helper if this host has a v1 hierarchy to write to. Best
    /// effort: anything going wrong only means no head start.
    pub fn start(hier: &Hierarchies) -> AttachWarmup {
        let none = AttachWarmup { helper: None };
        let Some(h) = hier
            .all()
            .iter()
            .find(|h| matches!(h.kind, HierarchyKind::V1(_)))
        else {
            return none;
        };
        let Ok(own) = hierarchy::own_cgroups() else {
            return none;
        };
        let procs = h.own_dir(&own).join("cgroup.procs");
        let Ok(path) = CString::new(procs.as_os_str().as_bytes()) else {
            return none;
        };
        // SAFETY: the runtime is single-threaded here, and the child only
        // makes async-signal-safe calls (open, write, _exit) on data
        // prepared before the fork.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => helper(&path),
            Ok(ForkResult::Parent { child }) => AttachWarmup {
                helper: Some(child),
            },
            Err(e) => {
                tracing::debug!("cgroup attach warm-up: fork: {e}");
                none
            }
        }
    }

    /// Waits for the helper (it ends with the grace period).
    pub fn finish(mut self) {
        self.reap();
    }

    fn reap(&mut self) {
        if let Some(pid) = self.helper.take() {
            let _ = waitpid(pid, None);
        }
    }
}

impl Drop for AttachWarmup {
    fn drop(&mut self) {
        self.reap();
    }
}

/// The helper's whole life: write its own pid to the cgroup.procs of the
/// cgroup it is in, then exit.
fn helper(path: &CString) -> ! {
    // SAFETY: getpid, open, write, close and _exit are async-signal-safe;
    // the buffers live on this stack.
    unsafe {
        let mut buf = [0u8; 16];
        let n = format_pid(libc::getpid(), &mut buf);
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, buf.as_ptr().cast(), n);
            libc::close(fd);
        }
        libc::_exit(0)
    }
}

/// Decimal digits of `pid` into `buf` without allocating; returns the length.
fn format_pid(pid: i32, buf: &mut [u8; 16]) -> usize {
    let mut tmp = [0u8; 16];
    let mut n = pid.unsigned_abs();
    let mut i = 0;
    loop {
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        i += 1;
        if n == 0 {
            break;
        }
    }
    for j in 0..i {
        buf[j] = tmp[i - 1 - j];
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_format_without_allocating() {
        let mut b = [0u8; 16];
        let n = format_pid(4_194_304, &mut b);
        assert_eq!(&b[..n], b"4194304");
        let n = format_pid(7, &mut b);
        assert_eq!(&b[..n], b"7");
    }
}
