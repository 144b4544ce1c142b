//! `run` in the foreground: wait for the container's init, forward signals
//! to it, and carry the terminal (raw mode, window size, bytes both ways)
//! when the container has one.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
}

pub type Result<T> = std::result::Result<T, Error>;

fn sys(op: &'static str) -> impl FnOnce(Errno) -> Error {
    move |errno| Error::Sys { op, errno }
}

/// Signals we pass on to the container rather than act on.
const FORWARDED: [Signal; 10] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// Blocks the signals the wait loop takes through a signalfd. Call before
/// `start`, so a quick exit's SIGCHLD is not lost.
pub fn block_signals() -> Result<SigSet> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGWINCH);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(sys("block signals"))?;
    Ok(set)
}

pub fn unblock_signals(set: &SigSet) {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(set), None);
}

/// Puts our terminal in raw mode for the session, and back on drop.
struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn copy_once(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> std::result::Result<usize, Errno> {
    let mut buf = [0u8; 16 * 1024];
    let n = match nix::unistd::read(from.as_raw_fd(), &mut buf) {
        Ok(n) => n,
        Err(Errno::EAGAIN) | Err(Errno::EINTR) => return Ok(1),
        Err(e) => return Err(e),
    };
    let mut off = 0;
    while off < n {
        match nix::unistd::write(to, &buf[off..n]) {
            Ok(w) => off += w,
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn resize_from_stdin(master: &OwnedFd) {
    if let Some((rows, cols)) = super::console::get_size(0) {
        let _ = super::console::set_size(master.as_raw_fd(), rows, cols);
    }
}

/// Waits for `init` to exit and returns its status as a shell would: the
/// exit code, or 128 + the signal that killed it. Signals in `blocked`
/// (see [`block_signals`]) arrive through a signalfd.
pub fn wait(init: Pid, blocked: &SigSet, console: Option<OwnedFd>) -> Result<i32> {
    let sfd = SignalFd::with_flags(blocked, SfdFlags::SFD_CLOEXEC).map_err(sys("signalfd"))?;
    let _raw = console
        .as_ref()
        .filter(|_| nix::unistd::isatty(0).unwrap_or(false))
        .map(|_| RawMode::enter());
    if let Some(m) = &console {
        resize_from_stdin(m);
    }
    let mut stdin_open = console.is_some();
    let mut master_open = console.is_some();
    let mut status: Option<i32> = None;
    loop {
        // Once init is gone, drain what the terminal still holds, then stop.
        if status.is_some() && !master_open {
            break;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let stdin = std::io::stdin();
        let master_idx = console.as_ref().filter(|_| master_open).map(|m| {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let stdin_idx = (stdin_open && status.is_none()).then(|| {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let timeout = if status.is_some() {
            PollTimeout::from(100u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => {
                return Err(Error::Sys {
                    op: "poll",
                    errno: e,
                });
            }
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let sig_ready = ready(0);
        let master_ready = master_idx.is_some_and(ready);
        let stdin_ready = stdin_idx.is_some_and(ready);
        drop(fds);

        if master_ready && let Some(m) = &console {
            match copy_once(m.as_fd(), std::io::stdout().as_fd()) {
                Ok(0) | Err(_) => master_open = false,
                Ok(_) => {}
            }
        }
        if stdin_ready && let Some(m) = &console {
            match copy_once(stdin.as_fd(), m.as_fd()) {
                Ok(0) => {
                    // EOF on our stdin: send the terminal's EOF character.
                    let _ = nix::unistd::write(m.as_fd(), &[4u8]);
                    stdin_open = false;
                }
                Err(_) => stdin_open = false,
                Ok(_) => {}
            }
        }
        if sig_ready {
            let Ok(Some(info)) = sfd.read_signal() else {
                continue;
            };
            let sig = Signal::try_from(info.ssi_signo as i32).ok();
            match sig {
                Some(Signal::SIGCHLD) => {
                    // Reap everything: orphans re-parented to us too.
                    loop {
                        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::Exited(pid, code)) if pid == init => status = Some(code),
                            Ok(WaitStatus::Signaled(pid, s, _)) if pid == init => {
                                status = Some(128 + s as i32)
                            }
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                }
                Some(Signal::SIGWINCH) => {
                    if let Some(m) = &console {
                        resize_from_stdin(m);
                    }
                }
                Some(s) => {
                    let _ = nix::sys::signal::kill(init, s);
                }
                None => {}
            }
        }
        if status.is_some() && console.is_none() {
            break;
        }
    }
    Ok(status.unwrap_or(255))
}
