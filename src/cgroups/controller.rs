//! Controllers and where each one lives for a container: in its own v1
//! hierarchy, or in the v2 one. The choice is per controller, not per host:
//! on a hybrid host memory may be v1 while hugetlb is v2.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Cgroup, HierarchyKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Devices,
    Freezer,
    /// `blkio` in v1, `io` in v2.
    Io,
    Pids,
    Hugetlb,
    NetCls,
    NetPrio,
    Rdma,
}

impl Controller {
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
            Controller::Io => "blkio",
            Controller::Pids => "pids",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::Rdma => "rdma",
        }
    }

    /// The name in cgroup.controllers; None for what v2 does not have as a
    /// controller (devices and freezer are built in, net_* do not exist).
    pub fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Cpu | Controller::Cpuacct => Some("cpu"),
            Controller::Cpuset => Some("cpuset"),
            Controller::Memory => Some("memory"),
            Controller::Io => Some("io"),
            Controller::Pids => Some("pids"),
            Controller::Hugetlb => Some("hugetlb"),
            Controller::Rdma => Some("rdma"),
            Controller::Devices
            | Controller::Freezer
            | Controller::NetCls
            | Controller::NetPrio => None,
        }
    }
}

/// A directory of the container: in the v1 hierarchy holding a controller,
/// or in the v2 hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    V1(Controller),
    V2,
}

/// What the resource planner may ask of the host: pure questions, so the
/// planning is tested with a fake.
pub trait Host {
    /// Where `c` lives for this container, if anywhere.
    fn place(&self, c: Controller) -> Option<Dir>;
    /// Whether the container's directory `dir` has `file`.
    fn has(&self, dir: Dir, file: &str) -> bool;
    /// A file's current content (to order writes on update).
    fn read(&self, dir: Dir, file: &str) -> Option<String>;
    /// The directory, for messages.
    fn describe(&self, dir: Dir) -> String;
    /// Whether there is a v2 hierarchy at all, and what it offers.
    fn v2_controllers(&self) -> Option<Vec<String>>;
}

/// The live host, seen from one created cgroup.
pub struct Placement<'a> {
    cg: &'a Cgroup,
    v2: Option<Vec<String>>,
}

impl<'a> Placement<'a> {
    pub fn new(cg: &'a Cgroup) -> Placement<'a> {
        // The container's own cgroup.controllers: what its parent enabled.
        let v2 = cg.v2_dir().map(super::v2_controllers);
        Placement { cg, v2 }
    }

    pub fn path(&self, dir: Dir) -> Option<&'a Path> {
        match dir {
            Dir::V1(c) => self.cg.v1_dir(c),
            Dir::V2 => self.cg.v2_dir(),
        }
    }

    pub fn file(&self, dir: Dir, file: &str) -> Option<PathBuf> {
        self.path(dir).map(|p| p.join(file))
    }
}

impl Host for Placement<'_> {
    fn place(&self, c: Controller) -> Option<Dir> {
        if self.cg.v1_dir(c).is_some() {
            return Some(Dir::V1(c));
        }
        let v2 = self.v2.as_ref()?;
        match c {
            Controller::Devices | Controller::Freezer => Some(Dir::V2),
            // cpu.stat (usage) is in every v2 cgroup, controller or not.
            Controller::Cpuacct => Some(Dir::V2),
            _ => c
                .v2_name()
                .filter(|n| v2.iter().any(|x| x == n))
                .map(|_| Dir::V2),
        }
    }

    fn has(&self, dir: Dir, file: &str) -> bool {
        self.file(dir, file).is_some_and(|p| p.exists())
    }

    fn read(&self, dir: Dir, file: &str) -> Option<String> {
        fs::read_to_string(self.file(dir, file)?).ok()
    }

    fn describe(&self, dir: Dir) -> String {
        match self.path(dir) {
            Some(p) => p.display().to_string(),
            None => "(not mounted)".into(),
        }
    }

    fn v2_controllers(&self) -> Option<Vec<String>> {
        self.v2.clone()
    }
}

impl Cgroup {
    /// The container's directory in the v1 hierarchy holding `c`.
    pub fn v1_dir(&self, c: Controller) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.kind.has_controller(c.v1_name()))
            .map(|d| d.dir.as_path())
    }

    /// The container's directory in the v2 hierarchy.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.kind == HierarchyKind::V2)
            .map(|d| d.dir.as_path())
    }
}
