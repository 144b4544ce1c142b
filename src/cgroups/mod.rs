//! Control groups: where each controller lives on this host, and one
//! container's cgroup across all hierarchies.
//!
//! Hosts come in three layouts: pure v2 (one cgroup2 mount at
//! /sys/fs/cgroup), legacy v1 (one mount per controller set), and hybrid (v1
//! controllers plus a cgroup2 mount, often at /sys/fs/cgroup/unified, holding
//! whatever controllers v1 did not claim). We read the real layout from
//! /proc/self/mountinfo and treat every hierarchy on its own terms, so the
//! decision is per controller, not per host.

mod apply;
mod controller;
mod convert;
pub mod devices;
mod freezer;
mod hierarchy;
mod merge;
mod oom;
mod resources;
mod stats;
mod v1;
mod v2;

pub use controller::{Controller, Dir};
pub use freezer::{is_frozen, set_frozen, thaw};
pub use hierarchy::{Hierarchies, Hierarchy, HierarchyKind, Layout, v2_controllers};
pub use merge::merge;
pub use oom::{Notice, OomWatcher};
pub use stats::Stats;

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup: read /proc/self/mountinfo: {0}")]
    Mountinfo(std::io::Error),
    #[error("cgroup: no cgroup hierarchy is mounted (looked in /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("cgroup: invalid cgroupsPath {path:?}: {why}")]
    InvalidPath { path: String, why: &'static str },
    #[error("cgroup: {op} {path}: {err}")]
    Io {
        op: &'static str,
        path: PathBuf,
        /// Not `source`: the message shows it, and a chained source
        /// would print it twice.
        err: std::io::Error,
    },
    #[error("cgroup: {path} still has processes after {waited_ms} ms")]
    Busy { path: PathBuf, waited_ms: u128 },
    #[error("cgroup: cannot apply {what}: {why}")]
    Unsupported { what: String, why: String },
    #[error("cgroup: invalid {what}: {why}")]
    Invalid { what: String, why: String },
    #[error("cgroup: write {value:?} to {path} ({field}): {err}")]
    Write {
        value: String,
        path: PathBuf,
        field: String,
        /// Not `source`: the message shows it, and a chained source
        /// would print it twice.
        err: std::io::Error,
    },
    #[error(transparent)]
    DeviceRule(#[from] devices::Error),
    #[error(transparent)]
    DeviceFilter(#[from] devices::attach::Error),
    #[error(
        "cgroup: the systemd cgroup driver was asked for, but systemd is not running here (no /run/systemd/system); drop --systemd-cgroup"
    )]
    NoSystemd,
}

pub type Result<T> = std::result::Result<T, Error>;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        err: source,
    }
}

/// The parent of containers that name no cgroupsPath.
pub const DEFAULT_PARENT: &str = "berth";

/// One container's cgroup: a directory in every hierarchy. Serializable so a
/// later command (kill, delete) acts on exactly what create made.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cgroup {
    /// The cgroup path as the config gave it (or the default), for messages.
    pub path: String,
    pub dirs: Vec<CgroupDir>,
    /// The resources applied (create, then each update), so that an update
    /// can derive values from fields it does not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<oci_spec::runtime::LinuxResources>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CgroupDir {
    pub kind: HierarchyKind,
    /// The container's directory in this hierarchy.
    pub dir: PathBuf,
    /// Directories create made, deepest last; delete removes these only.
    #[serde(default)]
    pub created: Vec<PathBuf>,
}

impl Cgroup {
    /// Computes (without touching anything) where the container's cgroup is
    /// in each hierarchy. `cgroups_path` absolute is from each hierarchy's
    /// root; relative is from our own cgroup; None is `/berth/<id>`.
    pub fn plan(hier: &Hierarchies, cgroups_path: Option<&str>, id: &str) -> Result<Cgroup> {
        let (path, relative) = match cgroups_path {
            None | Some("") => (format!("/{DEFAULT_PARENT}/{id}"), false),
            Some(p) => (p.to_string(), !p.starts_with('/')),
        };
        let rel = clean_relative(&path)?;
        if rel.as_os_str().is_empty() {
            return Err(Error::InvalidPath {
                path,
                why: "it names the root cgroup",
            });
        }
        let own = if relative {
            Some(hierarchy::own_cgroups()?)
        } else {
            None
        };
        let dirs = hier
            .all()
            .iter()
            .map(|h| {
                let base = match &own {
                    Some(own) => h.own_dir(own),
                    None => h.mount_point.clone(),
                };
                CgroupDir {
                    kind: h.kind.clone(),
                    dir: base.join(&rel),
                    created: Vec::new(),
                }
            })
            .collect();
        Ok(Cgroup {
            path,
            dirs,
            resources: None,
        })
    }

    /// Makes the directories, enabling v2 controllers down the path and
    /// seeding v1 cpusets, which start empty and refuse tasks until filled.
    /// On failure, what was made is removed.
    pub fn create(&mut self) -> Result<()> {
        for i in 0..self.dirs.len() {
            if let Err(e) = self.dirs[i].create() {
                let _ = self.remove();
                return Err(e);
            }
        }
        Ok(())
    }

    /// The fd `clone3(CLONE_INTO_CGROUP)` takes: the container's directory in
    /// the v2 hierarchy, if there is one. Starting the process inside it
    /// avoids a cgroup.procs write and its RCU grace-period wait.
    pub fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        let Some(d) = self.dirs.iter().find(|d| d.kind == HierarchyKind::V2) else {
            return Ok(None);
        };
        let fd = nix::fcntl::open(
            &d.dir,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::Io {
            op: "open",
            path: d.dir.clone(),
            err: e.into(),
        })?;
        // SAFETY: open returned a new fd that nothing else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Moves `pid` into every hierarchy; `skip_v2` when it was started
    /// inside the v2 directory already.
    ///
    /// Slow after idle: each cgroup.procs write takes the kernel's global
    /// cgroup_threadgroup_rwsem for writing, and when no writer has used
    /// it for about a grace period, that first switches its readers to the
    /// slow path (rcu_sync_enter), waiting a full RCU grace period: 8-14 ms
    /// on the 2-CPU dev host, 0.2 ms for the writes that follow. It holds
    /// cgroup_mutex meanwhile, so no other cgroup work (mkdir, clone into a
    /// cgroup) can overlap it; the runtime overlaps it with the init's
    /// mounts instead (see runtime::init's CgroupGate).
    pub fn add_task(&self, pid: Pid, skip_v2: bool) -> Result<()> {
        for d in &self.dirs {
            if skip_v2 && d.kind == HierarchyKind::V2 {
                continue;
            }
            let f = d.dir.join("cgroup.procs");
            write_file(&f, &pid.as_raw().to_string())?;
        }
        Ok(())
    }

    /// The directory whose cgroup.procs lists the container's processes.
    fn procs_dir(&self) -> Option<&CgroupDir> {
        // Every hierarchy holds the same processes; prefer v2 (one file, and
        // it covers threads moved by the container into sub-cgroups too).
        self.dirs
            .iter()
            .find(|d| d.kind == HierarchyKind::V2)
            .or_else(|| self.dirs.first())
    }

    /// Every process in the container's cgroup (sub-cgroups included).
    pub fn pids(&self) -> Result<Vec<Pid>> {
        let Some(d) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(&d.dir, &mut out)?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Sends `sig` to every process in the cgroup.
    pub fn signal_all(&self, sig: Signal) -> Result<()> {
        for pid in self.pids()? {
            match nix::sys::signal::kill(pid, sig) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => {
                    return Err(Error::Io {
                        op: "kill",
                        path: PathBuf::from(pid.to_string()),
                        err: e.into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes the directories create made, waiting up to `wait` for exiting
    /// processes to leave. Missing directories are not an error.
    pub fn remove_within(&self, wait: Duration) -> Result<()> {
        let start = Instant::now();
        let mut first_err = None;
        // The default parent (/berth) is shared by every container without a
        // cgroupsPath: whoever leaves it empty removes it, so none is left.
        let default_parent = self.path.starts_with(&format!("/{DEFAULT_PARENT}/"));
        for d in &self.dirs {
            if let Err(e) = d.remove(start, wait) {
                first_err.get_or_insert(e);
            } else if default_parent && let Some(parent) = d.dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Whether the container's directory still exists in some hierarchy.
    pub fn exists(&self) -> bool {
        self.dirs.iter().any(|d| d.dir.exists())
    }

    pub fn remove(&self) -> Result<()> {
        self.remove_within(Duration::from_secs(5))
    }
}

impl CgroupDir {
    fn create(&mut self) -> Result<()> {
        // Walk from the hierarchy root down, making what is missing. Another
        // container's delete may remove a shared parent between our mkdirs,
        // so ENOENT restarts the walk.
        for _attempt in 0..8 {
            match self.create_once() {
                Err(Error::Io { err, .. }) if err.kind() == ErrorKind::NotFound => continue,
                other => return other,
            }
        }
        self.create_once()
    }

    fn create_once(&mut self) -> Result<()> {
        let mut missing = Vec::new();
        let mut p = self.dir.as_path();
        while !p.exists() {
            missing.push(p.to_path_buf());
            p = match p.parent() {
                Some(parent) => parent,
                None => break,
            };
        }
        if self.kind == HierarchyKind::V2 {
            // Controllers must be enabled in each ancestor's subtree_control
            // for the leaf to have their files.
            let mut anc: Vec<PathBuf> = self
                .dir
                .ancestors()
                .skip(1)
                .map(Path::to_path_buf)
                .collect();
            anc.reverse();
            for a in &anc {
                if missing.iter().any(|m| m == a) {
                    self.mkdir(a)?;
                } else if !a.join("cgroup.subtree_control").exists() {
                    // Above the hierarchy's mount point.
                    continue;
                }
                enable_subtree_controllers(a)?;
            }
        }
        for m in missing.iter().rev() {
            if !m.exists() {
                self.mkdir(m)?;
            }
        }
        Ok(())
    }

    fn mkdir(&mut self, dir: &Path) -> Result<()> {
        match fs::create_dir(dir) {
            Ok(()) => {
                self.created.push(dir.to_path_buf());
                if self.kind.has_controller("cpuset") {
                    seed_cpuset(dir)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::Io {
                op: "mkdir",
                path: dir.to_path_buf(),
                err: e,
            }),
        }
    }

    fn remove(&self, start: Instant, wait: Duration) -> Result<()> {
        // The leaf may hold sub-cgroups the container made: remove deepest first.
        remove_tree(&self.dir, start, wait)?;
        for dir in self.created.iter().rev().filter(|d| **d != self.dir) {
            // Shared parents (/berth) go only when empty; a sibling may be
            // using them, which is fine.
            match fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT | libc::EBUSY | libc::ENOTEMPTY)
                    ) => {}
                Err(e) => {
                    return Err(Error::Io {
                        op: "rmdir",
                        path: dir.clone(),
                        err: e,
                    });
                }
            }
        }
        Ok(())
    }
}

fn remove_tree(dir: &Path, start: Instant, wait: Duration) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Io {
                op: "read",
                path: dir.to_path_buf(),
                err: e,
            });
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path(), start, wait)?;
        }
    }
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            // EBUSY: processes are still leaving (exiting, or zombies not yet reaped).
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(Error::Busy {
                    path: dir.to_path_buf(),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            Err(e) => {
                return Err(Error::Io {
                    op: "rmdir",
                    path: dir.to_path_buf(),
                    err: e,
                });
            }
        }
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<Pid>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let text = match fs::read_to_string(&procs) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Io {
                op: "read",
                path: procs,
                err: e,
            });
        }
    };
    out.extend(
        text.lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
            .map(Pid::from_raw),
    );
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&entry.path(), out)?;
            }
        }
    }
    Ok(())
}

/// Writes `value` to a cgroup file in one write(2), as the kernel wants.
pub fn write_file(path: &Path, value: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io("open", path))?;
    f.write_all(value.as_bytes()).map_err(io("write", path))
}

fn enable_subtree_controllers(dir: &Path) -> Result<()> {
    let available = fs::read_to_string(dir.join("cgroup.controllers")).map_err(io("read", dir))?;
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let want: Vec<String> = available
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    write_file(&dir.join("cgroup.subtree_control"), &want.join(" "))
}

fn seed_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mine = fs::read_to_string(dir.join(file)).unwrap_or_default();
        if mine.trim().is_empty() {
            let theirs = fs::read_to_string(parent.join(file)).map_err(io("read", parent))?;
            write_file(&dir.join(file), theirs.trim())?;
        }
    }
    Ok(())
}

/// Turns a cgroupsPath into a relative path with no `..`, `.` or empty parts.
fn clean_relative(path: &str) -> Result<PathBuf> {
    if path.contains('\0') {
        return Err(Error::InvalidPath {
            path: path.into(),
            why: "it contains a NUL byte",
        });
    }
    let mut out = PathBuf::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err(Error::InvalidPath {
                path: path.into(),
                why: "'..' is not allowed",
            });
        }
        out.push(part);
    }
    Ok(out)
}

/// Refuses `--systemd-cgroup` honestly: the systemd driver is not written,
/// and most hosts without systemd could not use it anyway.
pub fn check_systemd_driver() -> Result<()> {
    if !Path::new("/run/systemd/system").exists() {
        return Err(Error::NoSystemd);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_relative_refuses_dotdot() {
        assert_eq!(clean_relative("/a//b/./c").unwrap(), PathBuf::from("a/b/c"));
        assert!(clean_relative("/a/../b").is_err());
    }

    #[test]
    fn plan_default_path() {
        let h = Hierarchies::parse(hierarchy::tests::HYBRID);
        let cg = Cgroup::plan(&h, None, "c1").unwrap();
        assert_eq!(cg.path, "/berth/c1");
        assert!(
            cg.dirs
                .iter()
                .any(|d| d.dir == Path::new("/sys/fs/cgroup/memory/berth/c1"))
        );
        assert!(
            cg.dirs
                .iter()
                .any(|d| d.dir == Path::new("/sys/fs/cgroup/unified/berth/c1"))
        );
        assert!(Cgroup::plan(&h, Some("/"), "c1").is_err());
    }
}
