//! OOM notifications for `events`: on v1 an eventfd registered on
//! memory.oom_control through cgroup.event_control; on v2 inotify on
//! memory.events, whose `oom_kill` count goes up.

use std::fs;
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use super::controller::{Controller, Dir, Host, Placement};
use super::stats::parse_flat_keyed;
use super::{Cgroup, Error, Result};

/// What woke the watcher.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    /// This many OOM events since the last look.
    Oom(u64),
    /// The cgroup is gone (v1 signals its removal on the same eventfd).
    Gone,
    /// Nothing new (another memory.events counter moved).
    Nothing,
}

pub struct OomWatcher {
    fd: OwnedFd,
    kind: Kind,
}

enum Kind {
    V1 {
        cgroup_dir: PathBuf,
        /// memory.oom_control, open for as long as the registration.
        _control: fs::File,
    },
    V2 {
        events: PathBuf,
        last: u64,
    },
}

fn sys(op: &'static str, path: PathBuf) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io {
        op,
        path,
        err: source,
    }
}

impl OomWatcher {
    /// Watches the container's memory cgroup; None if it has none.
    pub fn new(cg: &Cgroup) -> Result<Option<OomWatcher>> {
        let host = Placement::new(cg);
        let Some(dir) = host.place(Controller::Memory) else {
            return Ok(None);
        };
        let Some(path) = host.path(dir) else {
            return Ok(None);
        };
        match dir {
            Dir::V1(_) => {
                let control_path = path.join("memory.oom_control");
                let control =
                    fs::File::open(&control_path).map_err(sys("open", control_path.clone()))?;
                // SAFETY: eventfd takes plain integers and returns a new fd.
                let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
                if efd < 0 {
                    return Err(Error::Io {
                        op: "eventfd for",
                        path: control_path,
                        err: std::io::Error::last_os_error(),
                    });
                }
                // SAFETY: eventfd returned a new fd that nothing else owns.
                let fd = unsafe { OwnedFd::from_raw_fd(efd) };
                let reg = path.join("cgroup.event_control");
                let line = format!("{} {}", fd.as_raw_fd(), control.as_raw_fd());
                fs::OpenOptions::new()
                    .write(true)
                    .open(&reg)
                    .and_then(|mut f| f.write_all(line.as_bytes()))
                    .map_err(sys("write", reg))?;
                Ok(Some(OomWatcher {
                    fd,
                    kind: Kind::V1 {
                        cgroup_dir: path.to_path_buf(),
                        _control: control,
                    },
                }))
            }
            Dir::V2 => {
                let events = path.join("memory.events");
                // SAFETY: inotify_init1 takes flags and returns a new fd.
                let ifd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
                if ifd < 0 {
                    return Err(Error::Io {
                        op: "inotify for",
                        path: events,
                        err: std::io::Error::last_os_error(),
                    });
                }
                // SAFETY: inotify_init1 returned a new fd that nothing else owns.
                let fd = unsafe { OwnedFd::from_raw_fd(ifd) };
                let c = std::ffi::CString::new(events.as_os_str().as_encoded_bytes()).map_err(
                    |_| Error::Io {
                        op: "watch",
                        path: events.clone(),
                        err: std::io::ErrorKind::InvalidInput.into(),
                    },
                )?;
                // SAFETY: a valid fd and C string.
                let wd =
                    unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
                if wd < 0 {
                    return Err(Error::Io {
                        op: "watch",
                        path: events,
                        err: std::io::Error::last_os_error(),
                    });
                }
                let last = oom_kills(&events);
                Ok(Some(OomWatcher {
                    fd,
                    kind: Kind::V2 { events, last },
                }))
            }
        }
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Call when [`Self::fd`] is readable.
    pub fn read(&mut self) -> Notice {
        match &mut self.kind {
            Kind::V1 { cgroup_dir, .. } => {
                let mut buf = [0u8; 8];
                // SAFETY: reading 8 bytes into a buffer of 8.
                let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
                if n != 8 {
                    return Notice::Nothing;
                }
                if !cgroup_dir.exists() {
                    return Notice::Gone;
                }
                Notice::Oom(u64::from_ne_bytes(buf))
            }
            Kind::V2 { events, last } => {
                // Drain the queued inotify events.
                let mut buf = [0u8; 4096];
                // SAFETY: reading into a buffer of its own size.
                while unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
                    > 0
                {}
                if !events.exists() {
                    return Notice::Gone;
                }
                let now = oom_kills(events);
                let new = now.saturating_sub(*last);
                *last = now;
                if new > 0 {
                    Notice::Oom(new)
                } else {
                    Notice::Nothing
                }
            }
        }
    }
}

fn oom_kills(events: &std::path::Path) -> u64 {
    let m = parse_flat_keyed(&fs::read_to_string(events).unwrap_or_default());
    m.get("oom_kill")
        .or_else(|| m.get("oom"))
        .copied()
        .unwrap_or(0)
}
