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

/// The stub's argv (the program's path, then its argv) and environment,
/// made ahead so that nothing is left to do but the exec.
pub struct Command {
    // The pointer arrays point into these strings' heap buffers, which do
    // not move when the vectors do.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl Command {
    pub fn new(path: &str, args: &[String], env: &[String]) -> Result<Command> {
        let c = |s: &str| CString::new(s).map_err(|_| Error::Nul(s.to_string()));
        let argv = std::iter::once(path)
            .chain(args.iter().map(String::as_str))
            .map(c)
            .collect::<Result<Vec<_>>>()?;
        let envp = env.iter().map(|e| c(e)).collect::<Result<Vec<_>>>()?;
        let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Ok(Command {
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envp),
            _argv: argv,
            _envp: envp,
        })
    }
}

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

    /// Replaces this process with the command by way of the stub. Returns
    /// only on failure.
    pub fn exec(&self, cmd: &Command) -> Error {
        // SAFETY: argv and envp are NULL-terminated arrays of valid C strings
        // that outlive the call; on success the call does not return.
        unsafe {
            libc::execveat(
                self.fd.as_raw_fd(),
                c"".as_ptr(),
                cmd.argv_ptrs.as_ptr() as *const *mut libc::c_char,
                cmd.envp_ptrs.as_ptr() as *const *mut libc::c_char,
                libc::AT_EMPTY_PATH,
            );
        }
        Error::Sys {
            op: "execveat",
            errno: Errno::last(),
        }
    }
}
