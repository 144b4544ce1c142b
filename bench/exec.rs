//! What the CVE-2019-5736 protection costs at the last exec of a container
//! start. runc copies its whole binary into a sealed memfd and re-executes
//! it, so a container cannot reach the runtime's file through
//! /proc/self/exe; berth execs a few-KiB stub from a sealed memfd, which
//! execs the user's program. Rows, interleaved run by run, each a fork, the
//! exec(s) and the wait:
//!
//! - plain execve of /bin/true: no protection, the floor;
//! - berth's stub, then /bin/true;
//! - runc's way: berth-runtime copied into a sealed memfd and executed
//!   (`--version`, which returns at once: the exec plus start-up);
//! - berth-runtime executed from its file (`--version`): what the copy adds.

use std::ffi::CString;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use berth::runtime::exec_stub::{Command, Stub};

use crate::Ctx;
use crate::measure::{self, Samples};
use crate::report::{Section, Unit};

const METRIC: &str = "last exec of a container start";

/// Forks; the child runs `child`, which must exec (it leaves with 127 if
/// it returns). The child's exit status must be 0.
fn fork_wait(child: impl FnOnce()) -> Result<()> {
    // SAFETY: the bench is single-threaded; the child only makes raw
    // syscalls (memfd_create, write, fcntl, open, dup2, exec) or _exit.
    match unsafe { libc::fork() } {
        -1 => bail!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            child();
            // SAFETY: the exec failed; leave without running destructors.
            unsafe { libc::_exit(127) }
        }
        pid => {
            let mut st = 0;
            // SAFETY: waiting for our own child.
            if unsafe { libc::waitpid(pid, &mut st, 0) } != pid {
                bail!("waitpid: {}", std::io::Error::last_os_error());
            }
            if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
                bail!("the child ended with wait status {st:#x}");
            }
            Ok(())
        }
    }
}

/// Stdout to /dev/null in the child (the runtime prints its version).
///
/// # Safety
/// Async-signal-safe raw syscalls only: for a forked child.
unsafe fn quiet_stdout() {
    // SAFETY: open and dup2 on a NUL-terminated literal and fd 1.
    unsafe {
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        libc::dup2(devnull, 1);
    }
}

pub fn run(ctx: &Ctx) -> Result<Section> {
    let mut sec = Section::new(
        "exec",
        "CVE-2019-5736 protection: the cost of the last exec",
    );
    let exe =
        std::fs::read(&ctx.runtime).with_context(|| format!("read {}", ctx.runtime.display()))?;
    let runtime = CString::new(ctx.runtime.as_os_str().as_encoded_bytes())
        .context("the runtime's path has a NUL byte")?;
    let args = vec!["true".to_string()];
    let cmd = Command::new("/bin/true", &args, &[]).context("the stub's command")?;

    let argv_true = [c"/bin/true".as_ptr(), std::ptr::null()];
    let argv_version = [
        c"berth-runtime".as_ptr(),
        c"--version".as_ptr(),
        std::ptr::null(),
    ];
    let envp = [std::ptr::null::<libc::c_char>()];

    type Contender<'a> = (&'static str, Box<dyn Fn() + 'a>);
    let contenders: Vec<Contender> = vec![
        (
            "plain execve (no protection)",
            Box::new(|| {
                // SAFETY: execve with NULL-terminated arrays of literals.
                unsafe { libc::execve(argv_true[0], argv_true.as_ptr(), envp.as_ptr()) };
            }),
        ),
        (
            "berth stub",
            Box::new(|| {
                if let Ok(s) = Stub::new() {
                    let _ = s.exec(&cmd);
                }
            }),
        ),
        (
            "runc-like memfd copy",
            Box::new(|| {
                // SAFETY: raw syscalls on the child's own new fd, with a
                // buffer that lives across each call; exec arrays are
                // NULL-terminated.
                unsafe {
                    let fd = libc::memfd_create(
                        c"runc-like".as_ptr(),
                        libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
                    );
                    let mut off = 0;
                    while off < exe.len() {
                        let n = libc::write(fd, exe[off..].as_ptr().cast(), exe.len() - off);
                        if n <= 0 {
                            return;
                        }
                        off += n as usize;
                    }
                    libc::fcntl(
                        fd,
                        libc::F_ADD_SEALS,
                        libc::F_SEAL_SEAL
                            | libc::F_SEAL_SHRINK
                            | libc::F_SEAL_GROW
                            | libc::F_SEAL_WRITE,
                    );
                    quiet_stdout();
                    libc::execveat(
                        fd,
                        c"".as_ptr(),
                        argv_version.as_ptr().cast(),
                        envp.as_ptr().cast(),
                        libc::AT_EMPTY_PATH,
                    );
                }
            }),
        ),
        (
            "runtime from its file",
            Box::new(|| {
                // SAFETY: as above; `runtime` outlives the execve.
                unsafe {
                    quiet_stdout();
                    libc::execve(runtime.as_ptr(), argv_version.as_ptr(), envp.as_ptr());
                }
            }),
        ),
    ];

    let mut samples = vec![Samples::default(); contenders.len()];
    let iters = ctx.iters.max(100) * 3;
    for i in 0..iters {
        // The order rotates each round, as everywhere in the bench.
        for k in 0..contenders.len() {
            let j = (i + k) % contenders.len();
            let t = Instant::now();
            fork_wait(&contenders[j].1).with_context(|| contenders[j].0.to_string())?;
            samples[j].push(t.elapsed());
        }
        measure::interrupted()?;
    }
    for ((name, _), s) in contenders.iter().zip(samples) {
        sec.row(METRIC, name, Unit::Ms, s);
    }
    sec.note(format!(
        "berth-runtime is {} KiB: runc-like protection copies all of it on every start",
        exe.len() / 1024
    ));
    Ok(sec)
}
