//! `update` semantics: the resources a container has, with what the update
//! sets laid over them field by field (runc keeps every value not given).

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxResources,
};

/// `patch` over `base`: set fields win, unset ones keep `base`'s. Lists
/// (devices, per-device throttles) are replaced whole; maps (rdma,
/// unified, huge page sizes) merge by key.
pub fn merge(base: &LinuxResources, patch: &LinuxResources) -> LinuxResources {
    let mut out = base.clone();
    if let Some(d) = patch.devices() {
        out.set_devices(Some(d.clone()));
    }
    if let Some(m) = patch.memory() {
        out.set_memory(Some(memory(base.memory().unwrap_or_default(), m)));
    }
    if let Some(c) = patch.cpu() {
        out.set_cpu(Some(cpu(base.cpu().clone().unwrap_or_default(), c)));
    }
    if let Some(p) = patch.pids() {
        out.set_pids(Some(*p));
    }
    if let Some(b) = patch.block_io() {
        out.set_block_io(Some(block_io(
            base.block_io().clone().unwrap_or_default(),
            b,
        )));
    }
    if let Some(h) = patch.hugepage_limits() {
        let mut all: Vec<LinuxHugepageLimit> = base.hugepage_limits().clone().unwrap_or_default();
        for l in h {
            match all.iter_mut().find(|x| x.page_size() == l.page_size()) {
                Some(x) => *x = l.clone(),
                None => all.push(l.clone()),
            }
        }
        out.set_hugepage_limits(Some(all));
    }
    if let Some(n) = patch.network() {
        let mut net: LinuxNetwork = base.network().clone().unwrap_or_default();
        if n.class_id().is_some() {
            net.set_class_id(n.class_id());
        }
        if n.priorities().is_some() {
            net.set_priorities(n.priorities().clone());
        }
        out.set_network(Some(net));
    }
    if let Some(r) = patch.rdma() {
        let mut all = base.rdma().clone().unwrap_or_default();
        all.extend(r.iter().map(|(k, v)| (k.clone(), *v)));
        out.set_rdma(Some(all));
    }
    if let Some(u) = patch.unified() {
        let mut all = base.unified().clone().unwrap_or_default();
        all.extend(u.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.set_unified(Some(all));
    }
    out
}

fn memory(mut m: LinuxMemory, p: &LinuxMemory) -> LinuxMemory {
    if p.limit().is_some() {
        m.set_limit(p.limit());
    }
    if p.reservation().is_some() {
        m.set_reservation(p.reservation());
    }
    if p.swap().is_some() {
        m.set_swap(p.swap());
    }
    #[allow(deprecated)]
    if p.kernel().is_some() {
        m.set_kernel(p.kernel());
    }
    if p.kernel_tcp().is_some() {
        m.set_kernel_tcp(p.kernel_tcp());
    }
    if p.swappiness().is_some() {
        m.set_swappiness(p.swappiness());
    }
    if p.disable_oom_killer().is_some() {
        m.set_disable_oom_killer(p.disable_oom_killer());
    }
    if p.use_hierarchy().is_some() {
        m.set_use_hierarchy(p.use_hierarchy());
    }
    if p.check_before_update().is_some() {
        m.set_check_before_update(p.check_before_update());
    }
    m
}

fn cpu(mut c: LinuxCpu, p: &LinuxCpu) -> LinuxCpu {
    if p.shares().is_some() {
        c.set_shares(p.shares());
    }
    if p.quota().is_some() {
        c.set_quota(p.quota());
    }
    if p.period().is_some() {
        c.set_period(p.period());
    }
    if p.burst().is_some() {
        c.set_burst(p.burst());
    }
    if p.realtime_runtime().is_some() {
        c.set_realtime_runtime(p.realtime_runtime());
    }
    if p.realtime_period().is_some() {
        c.set_realtime_period(p.realtime_period());
    }
    if p.idle().is_some() {
        c.set_idle(p.idle());
    }
    // containerd sends "" for "not given".
    if p.cpus().as_deref().is_some_and(|s| !s.is_empty()) {
        c.set_cpus(p.cpus().clone());
    }
    if p.mems().as_deref().is_some_and(|s| !s.is_empty()) {
        c.set_mems(p.mems().clone());
    }
    c
}

fn block_io(mut b: LinuxBlockIo, p: &LinuxBlockIo) -> LinuxBlockIo {
    if p.weight().is_some() {
        b.set_weight(p.weight());
    }
    if p.leaf_weight().is_some() {
        b.set_leaf_weight(p.leaf_weight());
    }
    if p.weight_device().is_some() {
        b.set_weight_device(p.weight_device().clone());
    }
    if p.throttle_read_bps_device().is_some() {
        b.set_throttle_read_bps_device(p.throttle_read_bps_device().clone());
    }
    if p.throttle_write_bps_device().is_some() {
        b.set_throttle_write_bps_device(p.throttle_write_bps_device().clone());
    }
    if p.throttle_read_iops_device().is_some() {
        b.set_throttle_read_iops_device(p.throttle_read_iops_device().clone());
    }
    if p.throttle_write_iops_device().is_some() {
        b.set_throttle_write_iops_device(p.throttle_write_iops_device().clone());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn set_fields_win_and_others_stay() {
        let base = res(
            r#"{"memory":{"limit":100,"swap":200},"cpu":{"shares":512,"cpus":"0"},"pids":{"limit":5},
                "hugepageLimits":[{"pageSize":"2MB","limit":1},{"pageSize":"1GB","limit":2}],
                "unified":{"memory.high":"1"}}"#,
        );
        let patch = res(r#"{"memory":{"limit":150},"cpu":{"quota":1000,"cpus":""},
                "hugepageLimits":[{"pageSize":"2MB","limit":9}],"unified":{"pids.max":"3"}}"#);
        let m = merge(&base, &patch);
        let mem = m.memory().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(150), Some(200)));
        let cpu = m.cpu().as_ref().unwrap();
        assert_eq!(
            (cpu.shares(), cpu.quota(), cpu.cpus().as_deref()),
            (Some(512), Some(1000), Some("0"))
        );
        assert_eq!(m.pids().unwrap().limit(), 5);
        let h = m.hugepage_limits().as_ref().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].limit(), 9);
        assert_eq!(h[1].limit(), 2);
        let u = m.unified().as_ref().unwrap();
        assert_eq!(u.len(), 2);
        // An empty patch changes nothing.
        assert_eq!(merge(&base, &LinuxResources::default()), base);
    }
}
