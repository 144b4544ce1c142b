//! The channel between the runtime and the container's init while it is
//! being created: a SOCK_SEQPACKET socketpair carrying small JSON messages,
//! one per packet. Either side seeing EOF knows the other is gone.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sync: {op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
    #[error("sync: the other side closed the channel")]
    Closed,
    #[error("sync: bad message: {0}")]
    Bad(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Messages from the init (or the intermediate process before it).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum FromChild {
    /// A new user namespace exists: write its id maps.
    MapIds,
    /// The init's host pid, when an intermediate process forked it.
    InitPid(i32),
    /// Mounts are done; pivot_root comes next. Prestart and createRuntime
    /// hooks run now, in the runtime's namespaces.
    Mounted,
    /// The container is created and waits for start.
    Created,
    Error(String),
}

/// Messages from the runtime.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum FromParent {
    IdsMapped,
    /// Go on (after the id maps; after the hooks).
    Continue,
    /// The init is in its cgroups: what depends on them may proceed.
    CgroupsJoined,
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (runtime end, init end). Both close on exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|errno| Error::Sys {
        op: "socketpair",
        errno,
    })?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Bad(e.to_string()))?;
        loop {
            match send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => return Err(Error::Closed),
                Err(errno) => return Err(Error::Sys { op: "send", errno }),
            }
        }
    }

    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<T> {
        self.recv_flags(MsgFlags::empty())
    }

    /// A message already waiting, if any; never blocks.
    pub fn try_recv<T: for<'de> Deserialize<'de>>(&self) -> Option<T> {
        self.recv_flags(MsgFlags::MSG_DONTWAIT).ok()
    }

    fn recv_flags<T: for<'de> Deserialize<'de>>(&self, flags: MsgFlags) -> Result<T> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, flags) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) => return Err(Error::Closed),
                Err(errno) => return Err(Error::Sys { op: "recv", errno }),
            }
        };
        if n == 0 {
            return Err(Error::Closed);
        }
        serde_json::from_slice(&buf[..n]).map_err(|e| Error::Bad(e.to_string()))
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = pair().unwrap();
        a.send(&FromChild::InitPid(42)).unwrap();
        assert_eq!(b.recv::<FromChild>().unwrap(), FromChild::InitPid(42));
        b.send(&FromParent::Continue).unwrap();
        assert_eq!(a.recv::<FromParent>().unwrap(), FromParent::Continue);
        drop(b);
        assert!(matches!(a.recv::<FromParent>(), Err(Error::Closed)));
    }
}
