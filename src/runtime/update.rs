//! `update`: changing a live container's resources.

use oci_spec::runtime::LinuxResources;

use super::container::{Error, Result, Runtime};
use super::state::{Record, Status};

impl Runtime {
    /// Applies the groups of resources `patch` sets to a created, running
    /// or paused container, keeping the others; the record remembers the
    /// result for the next update.
    pub fn update(&self, id: &str, patch: &LinuxResources) -> Result<()> {
        let dir = self.root.open(id)?;
        let mut rec = dir.read()?;
        let cg = live_cgroup(id, &mut rec)?;
        cg.update(patch)?;
        dir.write(&rec)?;
        Ok(())
    }
}

/// The cgroup of a container that has processes to limit.
pub(super) fn live_cgroup<'a>(
    id: &str,
    rec: &'a mut Record,
) -> Result<&'a mut crate::cgroups::Cgroup> {
    let status = rec.live_status();
    if matches!(status, Status::Stopped | Status::Creating) {
        return Err(Error::WrongState {
            id: id.into(),
            status,
            what: "it has no processes to limit",
        });
    }
    rec.cgroup
        .as_mut()
        .ok_or_else(|| Error::Usage(format!("container \"{id}\" has no cgroup")))
}
