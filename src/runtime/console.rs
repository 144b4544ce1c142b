//! The container's terminal: a pty made inside the container's own devpts,
//! its master sent over the `--console-socket` (SCM_RIGHTS), its peer made
//! the init's stdio and controlling terminal and bound on /dev/console.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::stat::Mode;

use crate::inroot::{Create, Root};
use crate::linux;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("console: {op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
    #[error("console socket {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("console: {0}")]
    Path(#[from] crate::inroot::Error),
    #[error("console: no file descriptor arrived on the console socket")]
    NoFd,
}

pub type Result<T> = std::result::Result<T, Error>;

fn sys(op: &'static str) -> impl FnOnce(Errno) -> Error {
    move |errno| Error::Sys { op, errno }
}

/// Connects to the socket `--console-socket` names (before the container
/// exists; the init inherits the connection).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path).map_err(|source| Error::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(s.into())
}

/// Makes the pty in the container (after pivot_root), sends its master over
/// `socket`, and makes the peer our stdio and controlling terminal.
pub fn setup(socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    let ptmx = root.resolve(Path::new("/dev/ptmx"))?;
    let master = reopen_rw(&ptmx)?;
    // Unlock the peer, then open it by fd rather than by /dev/pts/N: no path
    // the container could have swapped (CVE-2025-52565).
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer we pass.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(Error::Sys {
            op: "unlock pty",
            errno: Errno::last(),
        });
    }
    // SAFETY: TIOCGPTPEER returns a new fd or -1.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(Error::Sys {
            op: "open pty peer",
            errno: Errno::last(),
        });
    }
    // SAFETY: the ioctl returned a new fd that nothing else owns.
    let peer = unsafe { OwnedFd::from_raw_fd(peer) };
    if let Some((rows, cols)) = size {
        set_size(peer.as_raw_fd(), rows, cols)?;
    }
    bind_console(&root, &peer)?;
    send_fd(socket, &master, b"/dev/console")?;
    drop(master);

    nix::unistd::setsid().map_err(sys("setsid"))?;
    for fd in 0..3 {
        nix::unistd::dup2(peer.as_raw_fd(), fd).map_err(sys("dup2 pty"))?;
    }
    // SAFETY: TIOCSCTTY with argument 0 on our stdin.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::Sys {
            op: "set controlling terminal",
            errno: Errno::last(),
        });
    }
    Ok(())
}

fn reopen_rw(fd: &OwnedFd) -> Result<OwnedFd> {
    let f = crate::inroot::reopen(fd, OFlag::O_RDWR | OFlag::O_NOCTTY)
        .map_err(sys("open /dev/ptmx"))?;
    Ok(f.into())
}

/// /dev/console is the pty peer, as a bind mount (runtime-spec: "the runtime
/// SHOULD set up /dev/console").
fn bind_console(root: &Root, peer: &OwnedFd) -> Result<()> {
    let target = root.resolve_or_create(
        Path::new("/dev/console"),
        Create::File {
            dir_mode: 0o755,
            file_mode: 0o600,
        },
    )?;
    let tree = linux::open_tree_clone_fd(peer.as_fd(), false).map_err(sys("bind /dev/console"))?;
    linux::move_mount(tree.as_fd(), target.as_fd()).map_err(sys("bind /dev/console"))
}

pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer we pass.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(Error::Sys {
            op: "set window size",
            errno: Errno::last(),
        });
    }
    Ok(())
}

pub fn get_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize to the pointer we pass.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } < 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Sends `fd` with a short payload, as runc's console protocol does.
pub fn send_fd(socket: &OwnedFd, fd: &OwnedFd, payload: &[u8]) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(sys("send pty master"))?;
    Ok(())
}

/// Receives one fd sent by [`send_fd`].
pub fn recv_fd(socket: &OwnedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(sys("receive pty master"))?;
    for c in msg.cmsgs().map_err(sys("receive pty master"))? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel installed this fd for us with SCM_RIGHTS.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(Error::NoFd)
}

/// Opens `path` as a terminal for the host side.
pub fn open_tty(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open tty"))?;
    // SAFETY: open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
