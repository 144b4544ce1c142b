//! `events`: a container's resource usage, once or as a stream, and its
//! OOM kills, in runc's JSON event shape.

use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;

use super::container::{Error, Result, Runtime};
use crate::cgroups::{Notice, OomWatcher, Stats};

/// One event as runc prints it: `{"type":"stats","id":…,"data":{…}}` or
/// `{"type":"oom","id":…}`.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Runtime {
    /// The container's usage now.
    pub fn stats(&self, id: &str) -> Result<Stats> {
        let mut rec = self.root.read(id)?;
        let cg = super::update::live_cgroup(id, &mut rec)?;
        Ok(cg.stats())
    }

    /// Emits a stats event every `interval` and an oom event whenever the
    /// kernel kills for want of memory, until the container stops (then
    /// returns Ok) or `emit` fails.
    pub fn events(
        &self,
        id: &str,
        interval: Duration,
        mut emit: impl FnMut(&Event<'_>) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut rec = self.root.read(id)?;
        let cg = super::update::live_cgroup(id, &mut rec)?.clone();
        let mut watcher = OomWatcher::new(&cg)?;
        let out = |e: &Event<'_>, emit: &mut dyn FnMut(&Event<'_>) -> std::io::Result<()>| {
            emit(e).map_err(|source| Error::Io {
                op: "print events of",
                path: id.into(),
                source,
            })
        };
        let mut next = Instant::now() + interval;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            let ready = match &watcher {
                Some(w) => {
                    let mut fds = [PollFd::new(w.fd(), PollFlags::POLLIN)];
                    let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX);
                    match poll(&mut fds, ms) {
                        Ok(n) => n > 0,
                        Err(nix::errno::Errno::EINTR) => false,
                        Err(errno) => {
                            return Err(Error::Sys {
                                op: format!("poll the oom notifications of {id}"),
                                errno,
                            });
                        }
                    }
                }
                None => {
                    std::thread::sleep(left);
                    false
                }
            };
            if ready && let Some(w) = watcher.as_mut() {
                match w.read() {
                    Notice::Oom(_) => out(
                        &Event {
                            kind: "oom",
                            id,
                            data: None,
                        },
                        &mut emit,
                    )?,
                    Notice::Gone => watcher = None,
                    Notice::Nothing => {}
                }
            }
            if Instant::now() < next {
                continue;
            }
            next += interval;
            if !self.running(id) {
                return Ok(());
            }
            out(
                &Event {
                    kind: "stats",
                    id,
                    data: Some(cg.stats()),
                },
                &mut emit,
            )?;
        }
    }

    fn running(&self, id: &str) -> bool {
        self.root.read(id).is_ok_and(|r| {
            !matches!(
                r.live_status(),
                super::state::Status::Stopped | super::state::Status::Creating
            )
        })
    }
}
