//! pause/resume: the v1 freezer where it is mounted, else cgroup v2's
//! cgroup.freeze. Both freeze asynchronously; we wait until the kernel
//! says every process is frozen.

use std::fs;
use std::time::{Duration, Instant};

use super::controller::Controller;
use super::{Cgroup, Error, Result, write_file};

const WAIT: Duration = Duration::from_secs(5);

/// Whether the container's processes are frozen: the v1 freezer says
/// FROZEN, or v2's cgroup.freeze is 1.
pub fn is_frozen(cg: &Cgroup) -> bool {
    if let Some(d) = cg.v1_dir(Controller::Freezer) {
        return fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN");
    }
    if let Some(d) = cg.v2_dir() {
        return fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
    }
    false
}

/// Freezes (`pause`) or thaws (`resume`) every process of the container.
pub fn set_frozen(cg: &Cgroup, frozen: bool) -> Result<()> {
    if let Some(d) = cg.v1_dir(Controller::Freezer) {
        let state = d.join("freezer.state");
        write_file(&state, if frozen { "FROZEN" } else { "THAWED" })?;
        if frozen {
            // FREEZING means some task has not stopped yet.
            let ok = wait_until(|| fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FROZEN"));
            if !ok {
                let _ = write_file(&state, "THAWED");
                return Err(Error::Busy {
                    path: state,
                    waited_ms: WAIT.as_millis(),
                });
            }
        }
        return Ok(());
    }
    if let Some(d) = cg.v2_dir() {
        let freeze = d.join("cgroup.freeze");
        write_file(&freeze, if frozen { "1" } else { "0" })?;
        // cgroup.events says "frozen 1" once every task is stopped.
        let events = d.join("cgroup.events");
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        let ok = wait_until(|| {
            fs::read_to_string(&events).is_ok_and(|s| s.lines().any(|l| l.trim() == want))
        });
        if !ok && frozen {
            let _ = write_file(&freeze, "0");
            return Err(Error::Busy {
                path: events,
                waited_ms: WAIT.as_millis(),
            });
        }
        return Ok(());
    }
    Err(Error::Unsupported {
        what: "pause".into(),
        why: "no freezer on this host (neither the v1 freezer nor cgroup v2)".into(),
    })
}

/// Thaws, tolerating a cgroup that is already gone.
pub fn thaw(cg: &Cgroup) -> Result<()> {
    if !cg.exists() || !is_frozen(cg) {
        return Ok(());
    }
    set_frozen(cg, false)
}

fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    let mut pause = Duration::from_micros(100);
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}
