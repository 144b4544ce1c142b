//! The last exec before the container's program, from a sealed memfd.
//!
//! CVE-2019-5736: a container program that is `#!/proc/self/exe` makes the
//! kernel execute whatever /proc/self/exe names in the process that execs it.
//! If that were the runtime binary on the host, the container could open it
//! through /proc/PID/exe and overwrite it. Instead of re-executing the whole
//! runtime from a memfd copy (what runc and crun pay milliseconds for), the
//! init execs a tiny static stub (see exec_stub.c, about 9 KiB) from a sealed
//! memfd, and the stub execs the program. At that moment /proc/self/exe is
//! the sealed memfd: unwritable, and no path to the host.
//!
//! Until that exec, the init is not dumpable, so /proc/PID/exe of the init is
//! out of reach of other container processes (they would need
//! CAP_SYS_PTRACE in the host's user namespace).

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

static STUB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/exec_stub"));

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("exec stub: {op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
    #[error("exec stub: argument {0:?} contains a NUL byte")]
    Nul(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A sealed, close-on-exec memfd holding the stub.
pub struct Stub {
    fd: OwnedFd,
}

impl Stub {
    pub fn new() -> Result<Stub> {
        // MFD_EXEC (Linux 6.3) keeps the memfd executable where
        // vm.memfd_noexec says otherwise; older kernels reject the flag.
        const MFD_EXEC: libc::c_uint = 0x10;
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // SAFETY: a valid C string and flags; the returned fd is checked.
        let mut raw = unsafe { libc::memfd_create(c"berth-exec".as_ptr(), flags | MFD_EXEC) };
        if raw < 0 && Errno::last() == Errno::EINVAL {
            // SAFETY: as above.
            raw = unsafe { libc::memfd_create(c"berth-exec".as_ptr(), flags) };
        }
        if raw < 0 {
            return Err(Error::Sys {
                op: "memfd_create",
                errno: Errno::last(),
            });
        }
        // SAFETY: memfd_create returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut f = std::fs::File::from(fd.try_clone().map_err(|e| Error::Sys {
            op: "dup",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
        })?);
        f.write_all(STUB).map_err(|e| Error::Sys {
            op: "write",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: F_ADD_SEALS on our own memfd.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(Error::Sys {
                op: "seal",
                errno: Errno::last(),
            });
        }
        Ok(Stub { fd })
    }

    /// Replaces this process with `path` (args, env) by way of the stub.
    /// Returns only on failure.
    pub fn exec(&self, path: &str, args: &[String], env: &[String]) -> Error {
        let mut argv: Vec<CString> = Vec::with_capacity(args.len() + 1);
        for a in std::iter::once(path).chain(args.iter().map(String::as_str)) {
            match CString::new(a) {
                Ok(c) => argv.push(c),
                Err(_) => return Error::Nul(a.to_string()),
            }
        }
        let mut envp: Vec<CString> = Vec::with_capacity(env.len());
        for e in env {
            match CString::new(e.as_str()) {
                Ok(c) => envp.push(c),
                Err(_) => return Error::Nul(e.clone()),
            }
        }
        let argv_ptrs: Vec<*mut libc::c_char> = argv
            .iter()
            .map(|c| c.as_ptr() as *mut _)
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect();
        let envp_ptrs: Vec<*mut libc::c_char> = envp
            .iter()
            .map(|c| c.as_ptr() as *mut _)
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect();
        // SAFETY: argv and envp are NULL-terminated arrays of valid C strings
        // that outlive the call; on success the call does not return.
        unsafe {
            libc::execveat(
                self.fd.as_raw_fd(),
                c"".as_ptr(),
                argv_ptrs.as_ptr(),
                envp_ptrs.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        Error::Sys {
            op: "execveat",
            errno: Errno::last(),
        }
    }
}
