//! `linux.resources` → the steps that enforce it: file writes in the
//! directory of the hierarchy holding each controller, and on cgroup v2 a
//! device filter program. Planning is pure (it asks a [`Host`] what exists)
//! and is unit-tested against fake v1, v2 and hybrid hosts; [`super::apply`]
//! carries the steps out.
//!
//! A value the config sets that this host cannot honour (controller not
//! mounted, file absent on this kernel, a v1-only knob on v2) is an error
//! naming the field, the controller and the file: a limit is never dropped
//! silently. Unset values, and the zeros runc also treats as unset, are
//! left alone.

use oci_spec::runtime::LinuxResources;

use super::controller::{Controller, Dir, Host};
use super::devices::{self, Policy};
use super::{Error, Result, v1, v2};

/// One action of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Write(Write),
    /// v1 realtime: raise the RT budget of the container's ancestors (below
    /// the hierarchy root) so its own `cpu.rt_runtime_us` fits in theirs;
    /// new cgroups start with none.
    RtAncestors {
        runtime: i64,
        period: u64,
        field: &'static str,
    },
    /// v2 devices: load and attach this policy's eBPF program, replacing
    /// the one attached before.
    DeviceFilter(Policy),
}

/// Write `value` to `file` in the container's directory `dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub dir: Dir,
    pub file: String,
    pub value: String,
    /// The config field the value comes from, for messages.
    pub field: String,
    pub check: Check,
}

/// What to do beyond the write itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    None,
    /// Read the file back: the kernel clamps or ignores some values
    /// without failing the write (cpu.shares, kmem limits).
    ReadBack,
    /// As ReadBack, the kernel rounding the value down to whole pages.
    ReadBackPages,
    /// EINVAL may only mean "not yet": retry after the other writes (a
    /// shorter cfs period that fits only with the new quota, as runc).
    RetryLast,
}

/// Builds a plan, checking that each file exists where it will be written.
pub(super) struct Planner<'a> {
    pub host: &'a dyn Host,
    pub steps: Vec<Step>,
}

impl<'a> Planner<'a> {
    /// Where `c` lives; an error naming `field` if nowhere.
    pub fn need(&self, c: Controller, field: &str) -> Result<Dir> {
        self.host.place(c).ok_or_else(|| {
            let why = match (c, self.host.v2_controllers()) {
                (Controller::NetCls | Controller::NetPrio, Some(_)) => format!(
                    "the {} controller is not mounted on this host (cgroup v2 has no {0} controller)",
                    c.v1_name()
                ),
                (_, Some(v2)) => format!(
                    "the {} controller is not mounted as cgroup v1 nor enabled in cgroup v2 (which offers: {})",
                    c.v1_name(),
                    if v2.is_empty() { "nothing".into() } else { v2.join(" ") }
                ),
                (_, None) => format!("the {} controller is not mounted on this host", c.v1_name()),
            };
            Error::Unsupported {
                what: field.to_string(),
                why,
            }
        })
    }

    pub fn write(&mut self, dir: Dir, file: &str, value: impl ToString, field: &str) -> Result<()> {
        self.write_checked(dir, file, value, field, Check::None)
    }

    pub fn write_checked(
        &mut self,
        dir: Dir,
        file: &str,
        value: impl ToString,
        field: &str,
        check: Check,
    ) -> Result<()> {
        if !self.host.has(dir, file) {
            return Err(self.missing(dir, file, field, ""));
        }
        self.push(dir, file, value, field, check);
        Ok(())
    }

    /// Writes only if this kernel has the file (optional extras, such as
    /// hugetlb reservation limits).
    pub fn write_if_present(&mut self, dir: Dir, file: &str, value: impl ToString, field: &str) {
        if self.host.has(dir, file) {
            self.push(dir, file, value, field, Check::None);
        }
    }

    fn push(&mut self, dir: Dir, file: &str, value: impl ToString, field: &str, check: Check) {
        self.steps.push(Step::Write(Write {
            dir,
            file: file.to_string(),
            value: value.to_string(),
            field: field.to_string(),
            check,
        }));
    }

    /// The error for a file this kernel lacks; `hint` says what it means.
    pub fn missing(&self, dir: Dir, file: &str, field: &str, hint: &str) -> Error {
        let controller = match dir {
            Dir::V1(c) => format!("the {} controller (cgroup v1)", c.v1_name()),
            Dir::V2 => "cgroup v2".to_string(),
        };
        Error::Unsupported {
            what: field.to_string(),
            why: format!(
                "{controller} has no {file} in {}{}",
                self.host.describe(dir),
                if hint.is_empty() {
                    String::new()
                } else {
                    format!(" ({hint})")
                }
            ),
        }
    }

    /// A v1-only setting given where the controller is v2 (or the reverse).
    pub fn unsupported(&self, field: &str, why: &str) -> Error {
        Error::Unsupported {
            what: field.to_string(),
            why: why.to_string(),
        }
    }
}

pub(super) fn invalid(field: &str, why: impl ToString) -> Error {
    Error::Invalid {
        what: field.to_string(),
        why: why.to_string(),
    }
}

/// The steps enforcing `r` on `host`. Devices are always planned: no rule
/// list means only the default devices, as runc does.
pub fn plan(r: &LinuxResources, host: &dyn Host) -> Result<Vec<Step>> {
    let mut p = Planner {
        host,
        steps: Vec::new(),
    };
    plan_devices(&mut p, r.devices().as_deref())?;
    if let Some(m) = r.memory() {
        memory(&mut p, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(&mut p, c)?;
    }
    if let Some(pids) = r.pids() {
        plan_pids(&mut p, pids.limit())?;
    }
    if let Some(b) = r.block_io() {
        let field = "linux.resources.blockIO";
        match p.need(Controller::Io, field)? {
            Dir::V1(_) => v1::block_io(&mut p, b)?,
            Dir::V2 => v2::io(&mut p, b)?,
        }
    }
    if let Some(h) = r.hugepage_limits().as_deref().filter(|h| !h.is_empty()) {
        hugetlb(&mut p, h)?;
    }
    if let Some(n) = r.network() {
        v1::network(&mut p, n)?;
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
        plan_rdma(&mut p, rdma)?;
    }
    if let Some(u) = r.unified().as_ref().filter(|m| !m.is_empty()) {
        unified(&mut p, u)?;
    }
    Ok(p.steps)
}

/// Only the groups `patch` sets, each planned from `merged` (the stored
/// resources with the patch over them) so that values derived from
/// several fields (v2 swap = memsw - limit) stay right. Devices only when
/// the patch changes them.
pub fn plan_update(
    patch: &LinuxResources,
    merged: &LinuxResources,
    devices_changed: bool,
    host: &dyn Host,
) -> Result<Vec<Step>> {
    let mut only = LinuxResources::default();
    if devices_changed {
        only.set_devices(merged.devices().clone());
    }
    if patch.memory().is_some() {
        only.set_memory(*merged.memory());
    }
    if patch.cpu().is_some() {
        only.set_cpu(merged.cpu().clone());
    }
    if patch.pids().is_some() {
        only.set_pids(*merged.pids());
    }
    if patch.block_io().is_some() {
        only.set_block_io(merged.block_io().clone());
    }
    if patch.hugepage_limits().is_some() {
        only.set_hugepage_limits(merged.hugepage_limits().clone());
    }
    if patch.network().is_some() {
        only.set_network(merged.network().clone());
    }
    if patch.rdma().is_some() {
        only.set_rdma(merged.rdma().clone());
    }
    if patch.unified().is_some() {
        only.set_unified(patch.unified().clone());
    }
    let mut steps = plan(&only, host)?;
    if !devices_changed {
        steps.retain(|s| !is_device_step(s));
    }
    Ok(steps)
}

fn is_device_step(s: &Step) -> bool {
    match s {
        Step::DeviceFilter(_) => true,
        Step::Write(w) => w.dir == Dir::V1(Controller::Devices),
        Step::RtAncestors { .. } => false,
    }
}

fn plan_devices(
    p: &mut Planner<'_>,
    config: Option<&[oci_spec::runtime::LinuxDeviceCgroup]>,
) -> Result<()> {
    let field = "linux.resources.devices";
    let dir = match (p.host.place(Controller::Devices), config) {
        (Some(d), _) => d,
        // Nothing asked for and nothing to enforce it with.
        (None, None) => return Ok(()),
        (None, Some(_)) => return Err(p.need(Controller::Devices, field).unwrap_err()),
    };
    let rules = devices::container_rules(config.unwrap_or_default())?;
    match dir {
        Dir::V1(_) => {
            for rule in &rules {
                p.write(dir, rule.v1_file(), rule.v1_line(), field)?;
            }
        }
        Dir::V2 => p.steps.push(Step::DeviceFilter(Policy::from_rules(&rules))),
    }
    Ok(())
}

fn memory(p: &mut Planner<'_>, m: &oci_spec::runtime::LinuxMemory) -> Result<()> {
    let set = m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || kernel_limit(m).is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.use_hierarchy().is_some();
    if !set {
        return Ok(());
    }
    match p.need(Controller::Memory, "linux.resources.memory")? {
        Dir::V1(_) => v1::memory(p, m),
        Dir::V2 => v2::memory(p, m),
    }
}

/// `memory.kernel` is deprecated in the spec (and in Linux); still read so
/// that a config setting it is not silently ignored.
#[allow(deprecated)]
pub(super) fn kernel_limit(m: &oci_spec::runtime::LinuxMemory) -> Option<i64> {
    m.kernel()
}

fn cpu(p: &mut Planner<'_>, c: &oci_spec::runtime::LinuxCpu) -> Result<()> {
    let sched = c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.burst().is_some()
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.realtime_period().is_some_and(|v| v != 0)
        || c.idle().is_some();
    if sched {
        match p.need(Controller::Cpu, "linux.resources.cpu")? {
            Dir::V1(_) => v1::cpu(p, c)?,
            Dir::V2 => v2::cpu(p, c)?,
        }
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    for (file, value, field) in [
        ("cpuset.cpus", cpus, "linux.resources.cpu.cpus"),
        ("cpuset.mems", mems, "linux.resources.cpu.mems"),
    ] {
        if let Some(v) = value {
            let dir = p.need(Controller::Cpuset, field)?;
            p.write(dir, file, v, field)?;
        }
    }
    Ok(())
}

fn plan_pids(p: &mut Planner<'_>, limit: i64) -> Result<()> {
    // As runc: 0 is "unset", negative is "no limit".
    if limit == 0 {
        return Ok(());
    }
    let field = "linux.resources.pids.limit";
    let dir = p.need(Controller::Pids, field)?;
    let v = if limit < 0 {
        "max".to_string()
    } else {
        limit.to_string()
    };
    p.write(dir, "pids.max", v, field)
}

fn hugetlb(p: &mut Planner<'_>, limits: &[oci_spec::runtime::LinuxHugepageLimit]) -> Result<()> {
    let field = "linux.resources.hugepageLimits";
    let dir = p.need(Controller::Hugetlb, field)?;
    for (i, l) in limits.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let size = l.page_size();
        if !super::convert::valid_hugepage_size(size) {
            return Err(invalid(
                &field,
                format!("pageSize {size:?} is not a size like 2MB or 1GB"),
            ));
        }
        let (limit_file, rsvd_file, value) = match dir {
            Dir::V1(_) => (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                l.limit().max(-1).to_string(),
            ),
            Dir::V2 => (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
                super::convert::v2_limit(l.limit()),
            ),
        };
        if !p.host.has(dir, &limit_file) {
            return Err(p.missing(
                dir,
                &limit_file,
                &field,
                &format!("this host has no {size} huge pages"),
            ));
        }
        // Reservations are what the spec asks for where the kernel has
        // them (Linux 5.7+); the fault-time limit is set too, as runc.
        p.write(dir, &limit_file, &value, &field)?;
        p.write_if_present(dir, &rsvd_file, &value, &field);
    }
    Ok(())
}

fn plan_rdma(
    p: &mut Planner<'_>,
    rdma: &std::collections::HashMap<String, oci_spec::runtime::LinuxRdma>,
) -> Result<()> {
    let field = "linux.resources.rdma";
    let dir = p.need(Controller::Rdma, field)?;
    let mut devs: Vec<_> = rdma.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devs {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(invalid(field, format!("device name {dev:?} is not valid")));
        }
        let mut line = dev.clone();
        if let Some(h) = l.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        p.write(dir, "rdma.max", line, &format!("{field}.{dev}"))?;
    }
    Ok(())
}

/// `unified`: file → value in the v2 directory, for whatever the host's v2
/// hierarchy offers (on a hybrid host, only its controllers).
fn unified(p: &mut Planner<'_>, u: &std::collections::HashMap<String, String>) -> Result<()> {
    let Some(offers) = p.host.v2_controllers() else {
        return Err(p.unsupported(
            "linux.resources.unified",
            "cgroup v2 is not mounted on this host (unified is for cgroup v2 only)",
        ));
    };
    let mut keys: Vec<_> = u.iter().collect();
    keys.sort();
    for (k, v) in keys {
        let field = format!("linux.resources.unified.{k}");
        // A key names a file in the container's directory, nothing else.
        if k.is_empty() || k.contains('/') || k.starts_with('.') || !k.contains('.') {
            return Err(invalid(
                &field,
                "the key must be a cgroup file name such as memory.high",
            ));
        }
        if !p.host.has(Dir::V2, k) {
            return Err(p.missing(
                Dir::V2,
                k,
                &field,
                &format!(
                    "cgroup v2 here offers: {}",
                    if offers.is_empty() {
                        "no controllers".into()
                    } else {
                        offers.join(" ")
                    }
                ),
            ));
        }
        p.write(Dir::V2, k, v, &field)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    /// A host where each controller is v1, v2 or missing, with a set of
    /// files per directory.
    pub(crate) struct FakeHost {
        pub v1: Vec<Controller>,
        pub v2: Option<Vec<&'static str>>,
        pub files: HashSet<(Dir, String)>,
        pub content: HashMap<(Dir, String), String>,
    }

    const V1_FILES: &[(Controller, &[&str])] = &[
        (
            Controller::Memory,
            &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.soft_limit_in_bytes",
                "memory.kmem.limit_in_bytes",
                "memory.kmem.tcp.limit_in_bytes",
                "memory.swappiness",
                "memory.oom_control",
                "memory.use_hierarchy",
            ],
        ),
        (
            Controller::Cpu,
            &[
                "cpu.shares",
                "cpu.cfs_quota_us",
                "cpu.cfs_period_us",
                "cpu.cfs_burst_us",
                "cpu.rt_runtime_us",
                "cpu.rt_period_us",
                "cpu.idle",
            ],
        ),
        (Controller::Cpuset, &["cpuset.cpus", "cpuset.mems"]),
        (Controller::Pids, &["pids.max"]),
        (Controller::Devices, &["devices.allow", "devices.deny"]),
        (
            Controller::Io,
            &[
                "blkio.bfq.weight",
                "blkio.bfq.weight_device",
                "blkio.throttle.read_bps_device",
                "blkio.throttle.write_bps_device",
                "blkio.throttle.read_iops_device",
                "blkio.throttle.write_iops_device",
            ],
        ),
    ];

    const V2_FILES: &[&str] = &[
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "cpu.weight",
        "cpu.max",
        "cpu.max.burst",
        "cpu.idle",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
        "io.max",
        "hugetlb.2MB.max",
        "hugetlb.2MB.rsvd.max",
        "hugetlb.1GB.max",
        "memory.high",
    ];

    impl FakeHost {
        /// This development host: v1 everything, hugetlb on cgroup v2.
        pub fn hybrid() -> FakeHost {
            let mut h = FakeHost {
                v1: V1_FILES.iter().map(|(c, _)| *c).collect(),
                v2: Some(vec!["hugetlb"]),
                files: HashSet::new(),
                content: HashMap::new(),
            };
            for (c, files) in V1_FILES {
                for f in *files {
                    h.files.insert((Dir::V1(*c), f.to_string()));
                }
            }
            for f in ["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max"] {
                h.files.insert((Dir::V2, f.to_string()));
            }
            h
        }

        pub fn unified() -> FakeHost {
            let mut h = FakeHost {
                v1: Vec::new(),
                v2: Some(vec![
                    "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma",
                ]),
                files: HashSet::new(),
                content: HashMap::new(),
            };
            for f in V2_FILES {
                h.files.insert((Dir::V2, f.to_string()));
            }
            h
        }
    }

    impl Host for FakeHost {
        fn place(&self, c: Controller) -> Option<Dir> {
            if self.v1.contains(&c) {
                return Some(Dir::V1(c));
            }
            let v2 = self.v2.as_ref()?;
            match c {
                Controller::Devices | Controller::Freezer | Controller::Cpuacct => Some(Dir::V2),
                _ => c.v2_name().filter(|n| v2.contains(n)).map(|_| Dir::V2),
            }
        }
        fn has(&self, dir: Dir, file: &str) -> bool {
            self.files.contains(&(dir, file.to_string()))
        }
        fn read(&self, dir: Dir, file: &str) -> Option<String> {
            self.content.get(&(dir, file.to_string())).cloned()
        }
        fn describe(&self, dir: Dir) -> String {
            match dir {
                Dir::V1(c) => format!("/sys/fs/cgroup/{}/berth/t", c.v1_name()),
                Dir::V2 => "/sys/fs/cgroup/unified/berth/t".into(),
            }
        }
        fn v2_controllers(&self) -> Option<Vec<String>> {
            self.v2
                .as_ref()
                .map(|v| v.iter().map(|s| s.to_string()).collect())
        }
    }

    pub(crate) fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    /// The plan's writes as "file=value", device steps left out.
    pub(crate) fn writes(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .filter(|s| !is_device_step(s))
            .map(|s| match s {
                Step::Write(w) => format!("{}={}", w.file, w.value),
                Step::RtAncestors {
                    runtime, period, ..
                } => format!("rt-ancestors={runtime}/{period}"),
                Step::DeviceFilter(_) => unreachable!(),
            })
            .collect()
    }

    pub(crate) fn err(r: &str, host: &FakeHost) -> String {
        plan(&res(r), host).unwrap_err().to_string()
    }

    #[test]
    fn devices_are_always_planned() {
        let steps = plan(&res("{}"), &FakeHost::hybrid()).unwrap();
        let Step::Write(first) = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!(
            (first.file.as_str(), first.value.as_str()),
            ("devices.deny", "a")
        );
        assert_eq!(steps.len(), 11, "deny all + the 10 default devices");
        let steps = plan(&res("{}"), &FakeHost::unified()).unwrap();
        let [Step::DeviceFilter(p)] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert!(!p.default_allow);
        assert_eq!(p.exceptions.len(), 10);
        // No devices controller anywhere and no rules: nothing to do.
        let none = FakeHost {
            v1: vec![Controller::Pids],
            v2: None,
            files: HashSet::new(),
            content: HashMap::new(),
        };
        assert!(plan(&res("{}"), &none).unwrap().is_empty());
        let e = err(r#"{"devices":[{"allow":false}]}"#, &none);
        assert!(e.contains("devices controller is not mounted"), "{e}");
    }

    #[test]
    fn pids_everywhere() {
        for host in [FakeHost::hybrid(), FakeHost::unified()] {
            assert_eq!(
                writes(&plan(&res(r#"{"pids":{"limit":20}}"#), &host).unwrap()),
                ["pids.max=20"]
            );
            assert_eq!(
                writes(&plan(&res(r#"{"pids":{"limit":-1}}"#), &host).unwrap()),
                ["pids.max=max"]
            );
            assert!(writes(&plan(&res(r#"{"pids":{"limit":0}}"#), &host).unwrap()).is_empty());
        }
    }

    #[test]
    fn hugetlb_goes_where_it_lives() {
        // Hybrid: hugetlb is on the v2 mount, next to v1 memory.
        let h = FakeHost::hybrid();
        let steps = plan(
            &res(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#),
            &h,
        )
        .unwrap();
        let w: Vec<_> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Write(w) if w.file.starts_with("hugetlb") => {
                    Some((w.dir, w.file.clone(), w.value.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            w,
            [
                (Dir::V2, "hugetlb.2MB.max".into(), "4194304".into()),
                (Dir::V2, "hugetlb.2MB.rsvd.max".into(), "4194304".into())
            ]
        );
        let e = err(r#"{"hugepageLimits":[{"pageSize":"1GB","limit":0}]}"#, &h);
        assert!(
            e.contains("hugetlb.1GB.max") && e.contains("no 1GB huge pages"),
            "{e}"
        );
        let e = err(r#"{"hugepageLimits":[{"pageSize":"../x","limit":0}]}"#, &h);
        assert!(
            e.contains("hugepageLimits[0]") && e.contains("not a size"),
            "{e}"
        );
        // v1 hugetlb.
        let mut v1 = FakeHost::hybrid();
        v1.v1.push(Controller::Hugetlb);
        v1.files.insert((
            Dir::V1(Controller::Hugetlb),
            "hugetlb.2MB.limit_in_bytes".into(),
        ));
        let steps = plan(
            &res(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":-1}]}"#),
            &v1,
        )
        .unwrap();
        assert_eq!(writes(&steps), ["hugetlb.2MB.limit_in_bytes=-1"]);
    }

    #[test]
    fn unified_keys() {
        let u = FakeHost::unified();
        assert_eq!(
            writes(&plan(&res(r#"{"unified":{"memory.high":"1000000"}}"#), &u).unwrap()),
            ["memory.high=1000000"]
        );
        for bad in ["../x.y", "memory", "/memory.high", ".hidden"] {
            let e = err(&format!(r#"{{"unified":{{"{bad}":"1"}}}}"#), &u);
            assert!(e.contains("cgroup file name"), "{bad}: {e}");
        }
        // Hybrid: the v2 mount holds only hugetlb.
        let e = err(r#"{"unified":{"memory.high":"1"}}"#, &FakeHost::hybrid());
        assert!(
            e.contains("memory.high") && e.contains("offers: hugetlb"),
            "{e}"
        );
        // Legacy: no v2 at all.
        let mut legacy = FakeHost::hybrid();
        legacy.v2 = None;
        let e = err(r#"{"unified":{"memory.high":"1"}}"#, &legacy);
        assert!(e.contains("cgroup v2 is not mounted"), "{e}");
    }

    #[test]
    fn network_needs_net_cls() {
        let e = err(r#"{"network":{"classID":1048577}}"#, &FakeHost::hybrid());
        assert!(
            e.contains("linux.resources.network.classID") && e.contains("net_cls"),
            "{e}"
        );
        let e = err(
            r#"{"network":{"priorities":[{"name":"eth0","priority":5}]}}"#,
            &FakeHost::unified(),
        );
        assert!(
            e.contains("net_prio") && e.contains("cgroup v2 has no"),
            "{e}"
        );
        let mut h = FakeHost::hybrid();
        h.v1.extend([Controller::NetCls, Controller::NetPrio]);
        h.files
            .insert((Dir::V1(Controller::NetCls), "net_cls.classid".into()));
        h.files
            .insert((Dir::V1(Controller::NetPrio), "net_prio.ifpriomap".into()));
        let steps = plan(
            &res(r#"{"network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5},{"name":"lo","priority":2}]}}"#),
            &h,
        )
        .unwrap();
        assert_eq!(
            writes(&steps),
            [
                "net_cls.classid=1048577",
                "net_prio.ifpriomap=eth0 5",
                "net_prio.ifpriomap=lo 2"
            ]
        );
    }

    #[test]
    fn rdma_lines() {
        let mut u = FakeHost::unified();
        u.files.insert((Dir::V2, "rdma.max".into()));
        let steps = plan(
            &res(r#"{"rdma":{"mlx5_1":{"hcaHandles":3},"mlx5_0":{"hcaHandles":2,"hcaObjects":100}}}"#),
            &u,
        )
        .unwrap();
        assert_eq!(
            writes(&steps),
            [
                "rdma.max=mlx5_0 hca_handle=2 hca_object=100",
                "rdma.max=mlx5_1 hca_handle=3"
            ]
        );
        let e = err(
            r#"{"rdma":{"mlx5_0":{"hcaHandles":2}}}"#,
            &FakeHost::hybrid(),
        );
        assert!(e.contains("rdma controller"), "{e}");
    }

    #[test]
    fn update_plans_only_what_changed() {
        let h = FakeHost::unified();
        let stored = res(r#"{"memory":{"limit":104857600,"swap":209715200},"pids":{"limit":10}}"#);
        let patch = res(r#"{"memory":{"swap":314572800}}"#);
        let merged = res(r#"{"memory":{"limit":104857600,"swap":314572800},"pids":{"limit":10}}"#);
        let _ = stored;
        let steps = plan_update(&patch, &merged, false, &h).unwrap();
        // swap.max is recomputed from the stored limit; pids untouched.
        assert_eq!(
            writes(&steps),
            ["memory.swap.max=209715200", "memory.max=104857600"]
        );
        assert!(!steps.iter().any(is_device_step));
        let steps = plan_update(&res("{}"), &merged, true, &h).unwrap();
        assert!(matches!(steps.as_slice(), [Step::DeviceFilter(_)]));
    }
}
