//! cgroup v2 files for the OCI resources, whose values are v1's: each is
//! converted as runc and crun do ([`super::convert`]). What v2 cannot
//! express (swappiness, kernel memory, realtime budgets, leaf weights) is
//! an error when set, never dropped.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};

use super::controller::Dir;
use super::convert::{self, blkio_weight_to_io_weight, cpu_max, io_max_rate, v2_limit};
use super::resources::{Planner, invalid, kernel_limit};
use super::{Result, v1};

const V2: Dir = Dir::V2;

pub(super) fn memory(p: &mut Planner<'_>, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().filter(|v| *v != 0);
    let swap = m.swap().filter(|v| *v != 0);
    if let Some(l) = limit
        && l < -1
    {
        return Err(invalid(
            "linux.resources.memory.limit",
            format!("{l} is negative and not -1 (unlimited)"),
        ));
    }
    if swap.is_some() || limit == Some(-1) {
        let field = "linux.resources.memory.swap";
        let s = convert::memsw_to_swap_max(swap.unwrap_or(0), limit.unwrap_or(0))
            .map_err(|e| invalid(field, e))?;
        let value = match s {
            // swap == limit: no swap at all.
            0 => "0".to_string(),
            s => v2_limit(s),
        };
        if p.host.has(V2, "memory.swap.max") {
            // Swap first, as runc: memory.max may then shrink under it.
            p.write(V2, "memory.swap.max", value, field)?;
        } else if value != "max" {
            return Err(p.missing(
                V2,
                "memory.swap.max",
                field,
                "the kernel does no swap accounting",
            ));
        }
    }
    if let Some(l) = limit {
        p.write(
            V2,
            "memory.max",
            v2_limit(l),
            "linux.resources.memory.limit",
        )?;
    }
    if let Some(r) = m.reservation().filter(|v| *v != 0) {
        p.write(
            V2,
            "memory.low",
            v2_limit(r),
            "linux.resources.memory.reservation",
        )?;
    }
    if kernel_limit(m).is_some() {
        return Err(p.unsupported(
            "linux.resources.memory.kernel",
            "cgroup v2 has no kernel memory limit (memory.kmem.limit_in_bytes is cgroup v1 only); kernel memory counts in memory.max",
        ));
    }
    if m.kernel_tcp().is_some() {
        return Err(p.unsupported(
            "linux.resources.memory.kernelTCP",
            "cgroup v2 has no TCP buffer limit (memory.kmem.tcp.limit_in_bytes is cgroup v1 only)",
        ));
    }
    if m.swappiness().is_some() {
        return Err(p.unsupported(
            "linux.resources.memory.swappiness",
            "cgroup v2 has no per-cgroup swappiness (memory.swappiness is cgroup v1 only)",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(p.unsupported(
            "linux.resources.memory.disableOOMKiller",
            "cgroup v2 cannot disable the OOM killer (memory.oom_control is cgroup v1 only)",
        ));
    }
    if m.use_hierarchy() == Some(false) {
        return Err(p.unsupported(
            "linux.resources.memory.useHierarchy",
            "cgroup v2 accounting is always hierarchical",
        ));
    }
    Ok(())
}

pub(super) fn cpu(p: &mut Planner<'_>, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|v| *v != 0) {
        p.write(
            V2,
            "cpu.weight",
            convert::shares_to_weight(s),
            "linux.resources.cpu.shares",
        )?;
    }
    if let Some(v) = cpu_max(c.quota(), c.period()) {
        let field = if c.quota().is_some_and(|q| q != 0) {
            "linux.resources.cpu.quota"
        } else {
            "linux.resources.cpu.period"
        };
        p.write(V2, "cpu.max", v, field)?;
    }
    if let Some(b) = c.burst() {
        p.write(V2, "cpu.max.burst", b, "linux.resources.cpu.burst")?;
    }
    for (field, set) in [
        (
            "linux.resources.cpu.realtimeRuntime",
            c.realtime_runtime().is_some_and(|v| v != 0),
        ),
        (
            "linux.resources.cpu.realtimePeriod",
            c.realtime_period().is_some_and(|v| v != 0),
        ),
    ] {
        if set {
            return Err(p.unsupported(
                field,
                "the cgroup v2 cpu controller has no realtime budget (cpu.rt_runtime_us is cgroup v1 only)",
            ));
        }
    }
    if let Some(i) = c.idle() {
        p.write(V2, "cpu.idle", i, "linux.resources.cpu.idle")?;
    }
    Ok(())
}

pub(super) fn io(p: &mut Planner<'_>, b: &LinuxBlockIo) -> Result<()> {
    // BFQ takes v1's weights as they are; the io controller (iocost) wants
    // them scaled to [1, 10000].
    let bfq = p.host.has(V2, "io.bfq.weight");
    let weight = |w: u16| {
        if bfq {
            u64::from(w)
        } else {
            blkio_weight_to_io_weight(w)
        }
    };
    let weight_file = if bfq { "io.bfq.weight" } else { "io.weight" };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        let field = "linux.resources.blockIO.weight";
        if !p.host.has(V2, weight_file) {
            return Err(p.missing(
                V2,
                "io.weight or io.bfq.weight",
                field,
                "no proportional-weight I/O control on this kernel",
            ));
        }
        p.write(V2, weight_file, weight(w), field)?;
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        return Err(p.unsupported(
            "linux.resources.blockIO.leafWeight",
            "cgroup v2 has no leaf weights (they were CFQ's, cgroup v1 only)",
        ));
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            p.write(
                V2,
                weight_file,
                format!("{}:{} {}", d.major(), d.minor(), weight(w)),
                &format!("linux.resources.blockIO.weightDevice[{i}].weight"),
            )?;
        }
        if d.leaf_weight().is_some() {
            return Err(p.unsupported(
                &format!("linux.resources.blockIO.weightDevice[{i}].leafWeight"),
                "cgroup v2 has no leaf weights (they were CFQ's, cgroup v1 only)",
            ));
        }
    }
    v1::throttles(p, b, |p, stem, dev, rate, field| {
        let key = match stem {
            "read_bps" => "rbps",
            "write_bps" => "wbps",
            "read_iops" => "riops",
            _ => "wiops",
        };
        p.write(
            V2,
            "io.max",
            format!("{dev} {key}={}", io_max_rate(rate)),
            field,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::resources::plan;
    use super::super::resources::tests::{FakeHost, err, res, writes};

    #[test]
    fn memory_converted() {
        let u = FakeHost::unified();
        let steps = plan(
            &res(r#"{"memory":{"limit":104857600,"swap":209715200,"reservation":52428800}}"#),
            &u,
        )
        .unwrap();
        assert_eq!(
            writes(&steps),
            [
                "memory.swap.max=104857600",
                "memory.max=104857600",
                "memory.low=52428800"
            ]
        );
        // swap == limit: no swap.
        let steps = plan(&res(r#"{"memory":{"limit":1048576,"swap":1048576}}"#), &u).unwrap();
        assert_eq!(writes(&steps), ["memory.swap.max=0", "memory.max=1048576"]);
        let steps = plan(&res(r#"{"memory":{"limit":-1}}"#), &u).unwrap();
        assert_eq!(writes(&steps), ["memory.swap.max=max", "memory.max=max"]);
    }

    #[test]
    fn v1_only_memory_knobs_are_refused() {
        let u = FakeHost::unified();
        for (json, words) in [
            (r#"{"memory":{"swappiness":10}}"#, "swappiness"),
            (r#"{"memory":{"kernel":1048576}}"#, "kernel memory"),
            (r#"{"memory":{"kernelTCP":1048576}}"#, "TCP"),
            (r#"{"memory":{"disableOOMKiller":true}}"#, "OOM killer"),
            (r#"{"memory":{"useHierarchy":false}}"#, "hierarchical"),
            (r#"{"memory":{"swap":1048576}}"#, "needs a memory limit"),
        ] {
            let e = err(json, &u);
            assert!(
                e.contains(words) && e.contains("linux.resources.memory"),
                "{json}: {e}"
            );
        }
        // What v2 does anyway is fine.
        assert!(
            writes(
                &plan(
                    &res(r#"{"memory":{"useHierarchy":true,"disableOOMKiller":false}}"#),
                    &u
                )
                .unwrap()
            )
            .is_empty()
        );
    }

    #[test]
    fn cpu_converted() {
        let u = FakeHost::unified();
        let steps = plan(
            &res(
                r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":1000,"idle":1,"cpus":"0-1","mems":"0"}}"#,
            ),
            &u,
        )
        .unwrap();
        assert_eq!(
            writes(&steps),
            [
                "cpu.weight=100",
                "cpu.max=50000 100000",
                "cpu.max.burst=1000",
                "cpu.idle=1",
                "cpuset.cpus=0-1",
                "cpuset.mems=0"
            ]
        );
        let e = err(r#"{"cpu":{"realtimeRuntime":1000}}"#, &u);
        assert!(
            e.contains("realtimeRuntime") && e.contains("realtime"),
            "{e}"
        );
        // Hybrid: cpu is v1 there, so realtime is fine.
        assert!(
            plan(
                &res(r#"{"cpu":{"realtimeRuntime":1000}}"#),
                &FakeHost::hybrid()
            )
            .is_ok()
        );
    }

    #[test]
    fn io_converted() {
        let u = FakeHost::unified();
        let steps = plan(
            &res(
                r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":1000}],
                "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":0}],
                "throttleReadIOPSDevice":[{"major":8,"minor":16,"rate":100}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":50}]}}"#,
            ),
            &u,
        )
        .unwrap();
        assert_eq!(
            writes(&steps),
            [
                "io.weight=4950",
                "io.weight=8:0 10000",
                "io.max=8:0 rbps=1048576",
                "io.max=8:0 wbps=max",
                "io.max=8:16 riops=100",
                "io.max=8:16 wiops=50"
            ]
        );
        let e = err(r#"{"blockIO":{"leafWeight":100}}"#, &u);
        assert!(e.contains("leaf weights"), "{e}");
        // BFQ takes v1 weights unscaled.
        let mut bfq = FakeHost::unified();
        bfq.files.insert((super::V2, "io.bfq.weight".to_string()));
        let steps = plan(&res(r#"{"blockIO":{"weight":500}}"#), &bfq).unwrap();
        assert_eq!(writes(&steps), ["io.bfq.weight=500"]);
    }
}
