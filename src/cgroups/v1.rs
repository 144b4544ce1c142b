//! cgroup v1 files for the OCI resources (the spec's own vocabulary: the
//! values go in as given, as runc writes them).

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork};

use super::controller::{Controller, Dir};
use super::convert::parse_limit;
use super::resources::{Check, Planner, Step, invalid, kernel_limit};
use super::{Error, Result};

const MEM: Dir = Dir::V1(Controller::Memory);
const CPU: Dir = Dir::V1(Controller::Cpu);
const BLKIO: Dir = Dir::V1(Controller::Io);
const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

fn check_limit(field: &str, v: i64) -> Result<()> {
    if v < -1 {
        return Err(invalid(
            field,
            format!("{v} is negative and not -1 (unlimited)"),
        ));
    }
    Ok(())
}

pub(super) fn memory(p: &mut Planner<'_>, m: &LinuxMemory) -> Result<()> {
    // runc treats 0 as unset for these.
    let limit = m.limit().filter(|v| *v != 0);
    let mut swap = m.swap().filter(|v| *v != 0);
    if let Some(l) = limit {
        check_limit("linux.resources.memory.limit", l)?;
    }
    if let Some(s) = swap {
        check_limit("linux.resources.memory.swap", s)?;
    }
    // An unlimited memory with no swap given means unlimited swap too.
    if limit == Some(-1) && swap.is_none() && p.host.has(MEM, MEMSW) {
        swap = Some(-1);
    }
    if let (Some(l), Some(s)) = (limit, swap)
        && l > 0
        && s > 0
        && s < l
    {
        return Err(invalid(
            "linux.resources.memory.swap",
            format!("{s} (memory+swap) is below the memory limit {l}"),
        ));
    }
    let swap_hint = "the kernel does no swap accounting (swapaccount=1, CONFIG_MEMCG_SWAP)";
    if swap.is_some() && !p.host.has(MEM, MEMSW) {
        return Err(p.missing(MEM, MEMSW, "linux.resources.memory.swap", swap_hint));
    }
    // The kernel keeps limit <= memsw at every moment: when raising memsw
    // above the current limit, it goes first (runc's order).
    let swap_first = match (limit, swap) {
        (Some(_), Some(s)) => {
            s == -1
                || p.host
                    .read(MEM, LIMIT)
                    .and_then(|c| parse_limit(&c))
                    .is_some_and(|cur| cur < s as u64)
        }
        _ => false,
    };
    if swap_first && let Some(s) = swap {
        p.write(MEM, MEMSW, s, "linux.resources.memory.swap")?;
    }
    if let Some(l) = limit {
        p.write(MEM, LIMIT, l, "linux.resources.memory.limit")?;
    }
    if !swap_first && let Some(s) = swap {
        p.write(MEM, MEMSW, s, "linux.resources.memory.swap")?;
    }
    if let Some(r) = m.reservation().filter(|v| *v != 0) {
        check_limit("linux.resources.memory.reservation", r)?;
        p.write(
            MEM,
            "memory.soft_limit_in_bytes",
            r,
            "linux.resources.memory.reservation",
        )?;
    }
    if let Some(k) = kernel_limit(m) {
        check_limit("linux.resources.memory.kernel", k)?;
        // Since Linux 5.16 the file takes any value and ignores it.
        p.write_checked(
            MEM,
            "memory.kmem.limit_in_bytes",
            k,
            "linux.resources.memory.kernel",
            if k >= 0 {
                Check::ReadBackPages
            } else {
                Check::None
            },
        )?;
    }
    if let Some(k) = m.kernel_tcp() {
        check_limit("linux.resources.memory.kernelTCP", k)?;
        p.write_checked(
            MEM,
            "memory.kmem.tcp.limit_in_bytes",
            k,
            "linux.resources.memory.kernelTCP",
            if k >= 0 {
                Check::ReadBackPages
            } else {
                Check::None
            },
        )?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(invalid(
                "linux.resources.memory.swappiness",
                format!("{s} is above 100"),
            ));
        }
        p.write(
            MEM,
            "memory.swappiness",
            s,
            "linux.resources.memory.swappiness",
        )?;
    }
    if m.disable_oom_killer() == Some(true) {
        p.write(
            MEM,
            "memory.oom_control",
            1,
            "linux.resources.memory.disableOOMKiller",
        )?;
    }
    if let Some(h) = m.use_hierarchy() {
        p.write(
            MEM,
            "memory.use_hierarchy",
            u8::from(h),
            "linux.resources.memory.useHierarchy",
        )?;
    }
    Ok(())
}

pub(super) fn cpu(p: &mut Planner<'_>, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|v| *v != 0) {
        // The kernel clamps to [2, 262144] without failing: read it back.
        p.write_checked(
            CPU,
            "cpu.shares",
            s,
            "linux.resources.cpu.shares",
            Check::ReadBack,
        )?;
    }
    let quota = c.quota().filter(|v| *v != 0);
    if let Some(period) = c.period().filter(|v| *v != 0) {
        // A shorter period may only fit the parent's quota once ours is
        // set: retry it last on EINVAL (runc's order).
        let check = if quota.is_some() {
            Check::RetryLast
        } else {
            Check::None
        };
        p.write_checked(
            CPU,
            "cpu.cfs_period_us",
            period,
            "linux.resources.cpu.period",
            check,
        )?;
    }
    if let Some(q) = quota {
        p.write(
            CPU,
            "cpu.cfs_quota_us",
            q.max(-1),
            "linux.resources.cpu.quota",
        )?;
    }
    if let Some(b) = c.burst() {
        p.write(CPU, "cpu.cfs_burst_us", b, "linux.resources.cpu.burst")?;
    }
    let rt_period = c.realtime_period().filter(|v| *v != 0);
    let rt_runtime = c.realtime_runtime().filter(|v| *v != 0);
    if let Some(rp) = rt_period {
        p.write(
            CPU,
            "cpu.rt_period_us",
            rp,
            "linux.resources.cpu.realtimePeriod",
        )?;
    }
    if let Some(rt) = rt_runtime {
        let field = "linux.resources.cpu.realtimeRuntime";
        if !p.host.has(CPU, "cpu.rt_runtime_us") {
            return Err(p.missing(
                CPU,
                "cpu.rt_runtime_us",
                field,
                "the kernel lacks CONFIG_RT_GROUP_SCHED",
            ));
        }
        if rt > 0 {
            p.steps.push(Step::RtAncestors {
                runtime: rt,
                period: rt_period.unwrap_or(1_000_000),
                field: "linux.resources.cpu.realtimeRuntime",
            });
        }
        p.write(CPU, "cpu.rt_runtime_us", rt.max(-1), field)?;
    }
    if let Some(i) = c.idle() {
        p.write(CPU, "cpu.idle", i, "linux.resources.cpu.idle")?;
    }
    Ok(())
}

pub(super) fn block_io(p: &mut Planner<'_>, b: &LinuxBlockIo) -> Result<()> {
    // CFQ's blkio.weight is gone since Linux 5.0; BFQ's takes the same
    // range (runc falls back the same way).
    let weight_files = if p.host.has(BLKIO, "blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        let field = "linux.resources.blockIO.weight";
        if !p.host.has(BLKIO, weight_files.0) {
            return Err(p.missing(
                BLKIO,
                "blkio.weight or blkio.bfq.weight",
                field,
                "no proportional-weight I/O scheduler",
            ));
        }
        p.write(BLKIO, weight_files.0, w, field)?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        p.write(
            BLKIO,
            "blkio.leaf_weight",
            w,
            "linux.resources.blockIO.leafWeight",
        )
        .map_err(cfq_only)?;
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let dev = format!("{}:{}", d.major(), d.minor());
        if let Some(w) = d.weight() {
            p.write(
                BLKIO,
                weight_files.1,
                format!("{dev} {w}"),
                &format!("linux.resources.blockIO.weightDevice[{i}].weight"),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            p.write(
                BLKIO,
                "blkio.leaf_weight_device",
                format!("{dev} {w}"),
                &format!("linux.resources.blockIO.weightDevice[{i}].leafWeight"),
            )
            .map_err(cfq_only)?;
        }
    }
    throttles(p, b, |p, file, dev, rate, field| {
        p.write(
            BLKIO,
            &format!("blkio.throttle.{file}_device"),
            format!("{dev} {rate}"),
            field,
        )
    })
}

fn cfq_only(e: Error) -> Error {
    match e {
        Error::Unsupported { what, why } => Error::Unsupported {
            what,
            why: format!("{why}; leaf weights were CFQ's, removed in Linux 5.0"),
        },
        other => other,
    }
}

/// The four throttle lists as (v1 file stem, device, rate, field).
pub(super) fn throttles(
    p: &mut Planner<'_>,
    b: &LinuxBlockIo,
    mut each: impl FnMut(&mut Planner<'_>, &str, &str, u64, &str) -> Result<()>,
) -> Result<()> {
    let lists = [
        (
            "read_bps",
            "throttleReadBpsDevice",
            b.throttle_read_bps_device(),
        ),
        (
            "write_bps",
            "throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
        ),
        (
            "read_iops",
            "throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
        ),
        (
            "write_iops",
            "throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, name, list) in lists {
        for (i, t) in list.iter().flatten().enumerate() {
            let field = format!("linux.resources.blockIO.{name}[{i}]");
            if t.major() < 0 || t.minor() < 0 {
                return Err(invalid(&field, "major and minor must be device numbers"));
            }
            let dev = format!("{}:{}", t.major(), t.minor());
            each(p, file, &dev, t.rate(), &field)?;
        }
    }
    Ok(())
}

pub(super) fn network(p: &mut Planner<'_>, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        let field = "linux.resources.network.classID";
        let dir = p.need(Controller::NetCls, field)?;
        p.write(dir, "net_cls.classid", id, field)?;
    }
    for (i, prio) in n.priorities().iter().flatten().enumerate() {
        let field = format!("linux.resources.network.priorities[{i}]");
        let dir = p.need(Controller::NetPrio, &field)?;
        if prio.name().is_empty() || prio.name().contains(char::is_whitespace) {
            return Err(invalid(
                &field,
                format!("interface name {:?} is not valid", prio.name()),
            ));
        }
        p.write(
            dir,
            "net_prio.ifpriomap",
            format!("{} {}", prio.name(), prio.priority()),
            &field,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::resources::plan;
    use super::super::resources::tests::{FakeHost, err, res, writes};
    use super::*;

    #[test]
    fn memory_files_and_order() {
        let h = FakeHost::hybrid();
        let steps = plan(
            &res(r#"{"memory":{"limit":104857600,"swap":209715200,"reservation":52428800,"swappiness":10,"disableOOMKiller":true,"useHierarchy":true}}"#),
            &h,
        )
        .unwrap();
        // Created: the limit is unlimited (unknown here), limit first.
        assert_eq!(
            writes(&steps),
            [
                "memory.limit_in_bytes=104857600",
                "memory.memsw.limit_in_bytes=209715200",
                "memory.soft_limit_in_bytes=52428800",
                "memory.swappiness=10",
                "memory.oom_control=1",
                "memory.use_hierarchy=1",
            ]
        );
        // Raising both above the current limit: memsw first.
        let mut h = FakeHost::hybrid();
        h.content.insert((MEM, LIMIT.into()), "104857600\n".into());
        let steps = plan(
            &res(r#"{"memory":{"limit":209715200,"swap":419430400}}"#),
            &h,
        )
        .unwrap();
        assert_eq!(
            writes(&steps),
            [
                "memory.memsw.limit_in_bytes=419430400",
                "memory.limit_in_bytes=209715200"
            ]
        );
        // Unlimited memory means unlimited swap too.
        let steps = plan(&res(r#"{"memory":{"limit":-1}}"#), &h).unwrap();
        assert_eq!(
            writes(&steps),
            ["memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=-1"]
        );
    }

    #[test]
    fn memory_errors_name_field_and_file() {
        let h = FakeHost::hybrid();
        let e = err(r#"{"memory":{"limit":200,"swap":100}}"#, &h);
        assert!(
            e.contains("linux.resources.memory.swap") && e.contains("below"),
            "{e}"
        );
        let e = err(r#"{"memory":{"swappiness":101}}"#, &h);
        assert!(e.contains("swappiness") && e.contains("above 100"), "{e}");
        let mut noswap = FakeHost::hybrid();
        noswap.files.remove(&(MEM, MEMSW.to_string()));
        let e = err(r#"{"memory":{"limit":100,"swap":200}}"#, &noswap);
        assert!(
            e.contains("memory.memsw.limit_in_bytes") && e.contains("swap accounting"),
            "{e}"
        );
        let mut nokmem = FakeHost::hybrid();
        nokmem
            .files
            .remove(&(MEM, "memory.kmem.limit_in_bytes".to_string()));
        let e = err(r#"{"memory":{"kernel":1048576}}"#, &nokmem);
        assert!(
            e.contains("memory.kmem.limit_in_bytes") && e.contains("memory controller"),
            "{e}"
        );
        // kmem is checked after the write: Linux >= 5.16 ignores it.
        let steps = plan(
            &res(r#"{"memory":{"kernel":1048576,"kernelTCP":2097152}}"#),
            &h,
        )
        .unwrap();
        let checks: Vec<_> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Write(w) if w.file.starts_with("memory.kmem") => Some(w.check),
                _ => None,
            })
            .collect();
        assert_eq!(checks, [Check::ReadBackPages, Check::ReadBackPages]);
    }

    #[test]
    fn cpu_files() {
        let h = FakeHost::hybrid();
        let steps = plan(
            &res(r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"burst":1000,"realtimeRuntime":10000,"realtimePeriod":1000000,"idle":0,"cpus":"0","mems":"0"}}"#),
            &h,
        )
        .unwrap();
        assert_eq!(
            writes(&steps),
            [
                "cpu.shares=512",
                "cpu.cfs_period_us=100000",
                "cpu.cfs_quota_us=50000",
                "cpu.cfs_burst_us=1000",
                "cpu.rt_period_us=1000000",
                "rt-ancestors=10000/1000000",
                "cpu.rt_runtime_us=10000",
                "cpu.idle=0",
                "cpuset.cpus=0",
                "cpuset.mems=0",
            ]
        );
        let period = steps.iter().find_map(|s| match s {
            Step::Write(w) if w.file == "cpu.cfs_period_us" => Some(w.check),
            _ => None,
        });
        assert_eq!(period, Some(Check::RetryLast));
        // Zeros are unset, as in runc.
        assert!(
            writes(
                &plan(
                    &res(r#"{"cpu":{"shares":0,"quota":0,"period":0,"cpus":""}}"#),
                    &h
                )
                .unwrap()
            )
            .is_empty()
        );
    }

    #[test]
    fn blkio_files() {
        let h = FakeHost::hybrid();
        let steps = plan(
            &res(
                r#"{"blockIO":{"weight":500,"weightDevice":[{"major":254,"minor":0,"weight":300}],
                "throttleReadBpsDevice":[{"major":254,"minor":0,"rate":1048576}],
                "throttleWriteIOPSDevice":[{"major":254,"minor":0,"rate":100}]}}"#,
            ),
            &h,
        )
        .unwrap();
        assert_eq!(
            writes(&steps),
            [
                "blkio.bfq.weight=500",
                "blkio.bfq.weight_device=254:0 300",
                "blkio.throttle.read_bps_device=254:0 1048576",
                "blkio.throttle.write_iops_device=254:0 100",
            ]
        );
        let e = err(r#"{"blockIO":{"leafWeight":500}}"#, &h);
        assert!(e.contains("blkio.leaf_weight") && e.contains("CFQ"), "{e}");
        let mut nobfq = FakeHost::hybrid();
        nobfq.files.remove(&(BLKIO, "blkio.bfq.weight".to_string()));
        let e = err(r#"{"blockIO":{"weight":500}}"#, &nobfq);
        assert!(e.contains("blkio.weight or blkio.bfq.weight"), "{e}");
    }
}
