//! Fuzz body: OCI config.json → container plan, the runtime's pure
//! translation step (`berth-runtime create`), and process.json → process
//! plan (`berth-runtime exec --process`). Whatever the plan accepts must
//! also survive what the runtime derives from it before any syscall.

use std::path::Path;

use berth::runtime::plan::{self, Plan};
use berth::runtime::seccomp;
use oci_spec::runtime::{Process, Spec};

pub fn run(data: &[u8]) {
    if let Ok(process) = serde_json::from_slice::<Process>(data) {
        let _ = plan::plan_process(&process);
    }
    let Ok(spec) = serde_json::from_slice::<Spec>(data) else {
        return;
    };
    let Ok(plan) = Plan::from_spec(&spec, Path::new("/run/berth-fuzz/bundle")) else {
        return;
    };
    let _ = plan.namespaces.new_flags();
    // Files the runtime creates for the container (the console, /dev nodes)
    // are owned by its user as the host sees it.
    let _ = (plan.host_uid(0), plan.host_gid(0));
    if let Some(p) = &plan.process {
        let _ = (plan.host_uid(p.uid), plan.host_gid(p.gid));
        for g in &p.additional_gids {
            let _ = plan.host_gid(*g);
        }
    }
    for d in &plan.devices {
        let _ = (plan.host_uid(d.uid), plan.host_gid(d.gid));
    }
    for m in &plan.mounts {
        let _ = m.options.data_string();
    }
    if let Some(profile) = &plan.seccomp {
        let _ = seccomp::compile(profile);
    }
}
