//! Which cgroup hierarchies are mounted here and what each holds, read from
//! /proc/self/mountinfo (pure parsing, tested without root).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Only cgroup2.
    Unified,
    /// Only cgroup v1.
    Legacy,
    /// v1 controllers and a cgroup2 mount side by side.
    Hybrid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HierarchyKind {
    /// A v1 hierarchy and the controllers (or `name=…`) bound to it.
    V1(Vec<String>),
    V2,
}

impl HierarchyKind {
    pub fn has_controller(&self, c: &str) -> bool {
        matches!(self, HierarchyKind::V1(cs) if cs.iter().any(|x| x == c))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub kind: HierarchyKind,
    pub mount_point: PathBuf,
    /// The cgroup this mount shows as its root (not `/` inside a cgroup
    /// namespace or for a bind mount of a sub-cgroup).
    pub root: PathBuf,
}

impl Hierarchy {
    /// Our own cgroup's directory in this hierarchy.
    pub(super) fn own_dir(&self, own: &OwnCgroups) -> PathBuf {
        let mine = match &self.kind {
            HierarchyKind::V2 => own.v2.clone(),
            HierarchyKind::V1(cs) => own
                .v1
                .iter()
                .find(|(k, _)| {
                    let mut a: Vec<&str> = k.split(',').collect();
                    let mut b: Vec<&str> = cs.iter().map(String::as_str).collect();
                    a.sort_unstable();
                    b.sort_unstable();
                    a == b
                })
                .map(|(_, p)| p.clone()),
        };
        match mine
            .as_deref()
            .and_then(|m| m.strip_prefix(&self.root).ok())
        {
            Some(rel) => self.mount_point.join(rel),
            None => self.mount_point.clone(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Hierarchies {
    list: Vec<Hierarchy>,
}

impl Hierarchies {
    /// Reads this host's hierarchies.
    pub fn detect() -> Result<Hierarchies> {
        let text = fs::read_to_string("/proc/self/mountinfo").map_err(Error::Mountinfo)?;
        let h = Hierarchies::parse(&text);
        if h.list.is_empty() {
            return Err(Error::NoHierarchy);
        }
        Ok(h)
    }

    /// Parses mountinfo text. The first mount of each hierarchy wins; later
    /// ones are bind mounts of it.
    pub fn parse(text: &str) -> Hierarchies {
        let mut list: Vec<Hierarchy> = Vec::new();
        for line in text.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let (root, mount_point) = (unescape(pre[3]), unescape(pre[4]));
            let kind = match post[0] {
                "cgroup2" => HierarchyKind::V2,
                "cgroup" => {
                    let cs: Vec<String> = post[2]
                        .split(',')
                        .filter(|o| {
                            !matches!(
                                *o,
                                "rw" | "ro"
                                    | "clone_children"
                                    | "noprefix"
                                    | "xattr"
                                    | "cpuset_v2_mode"
                            ) && !o.starts_with("release_agent=")
                        })
                        .map(str::to_string)
                        .collect();
                    if cs.is_empty() {
                        continue;
                    }
                    HierarchyKind::V1(cs)
                }
                _ => continue,
            };
            if list.iter().any(|h| h.kind == kind) {
                continue;
            }
            list.push(Hierarchy {
                kind,
                mount_point: PathBuf::from(mount_point),
                root: PathBuf::from(root),
            });
        }
        Hierarchies { list }
    }

    pub fn all(&self) -> &[Hierarchy] {
        &self.list
    }

    pub fn layout(&self) -> Layout {
        let v2 = self.list.iter().any(|h| h.kind == HierarchyKind::V2);
        let v1 = self
            .list
            .iter()
            .any(|h| matches!(h.kind, HierarchyKind::V1(_)));
        match (v1, v2) {
            (true, true) => Layout::Hybrid,
            (false, true) => Layout::Unified,
            _ => Layout::Legacy,
        }
    }

    pub fn v2(&self) -> Option<&Hierarchy> {
        self.list.iter().find(|h| h.kind == HierarchyKind::V2)
    }

    /// The v1 hierarchy a controller is bound to, if any.
    pub fn v1_for(&self, controller: &str) -> Option<&Hierarchy> {
        self.list.iter().find(|h| h.kind.has_controller(controller))
    }
}

/// Our own cgroup in each hierarchy, from /proc/self/cgroup.
#[derive(Debug, Default)]
pub(super) struct OwnCgroups {
    v1: Vec<(String, PathBuf)>,
    v2: Option<PathBuf>,
}

pub(super) fn own_cgroups() -> Result<OwnCgroups> {
    let text = fs::read_to_string("/proc/self/cgroup").map_err(|e| Error::Io {
        op: "read",
        path: PathBuf::from("/proc/self/cgroup"),
        err: e,
    })?;
    Ok(parse_own(&text))
}

fn parse_own(text: &str) -> OwnCgroups {
    let mut own = OwnCgroups::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if ctrls.is_empty() {
            own.v2 = Some(PathBuf::from(path));
        } else {
            own.v1.push((ctrls.to_string(), PathBuf::from(path)));
        }
    }
    own
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the controllers a v2 hierarchy offers at `dir`.
pub fn v2_controllers(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// This development host's layout: v1 controllers one per mount, and
    /// cgroup2 at /sys/fs/cgroup/unified.
    pub(crate) const HYBRID: &str = "\
25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 31 0:29 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:30 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
36 31 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 31 0:27 / /mnt/cpu\\040again rw,relatime - cgroup cgroup rw,cpu
";

    #[test]
    fn parses_hybrid() {
        let h = Hierarchies::parse(HYBRID);
        assert_eq!(h.layout(), Layout::Hybrid);
        assert_eq!(h.all().len(), 5);
        assert_eq!(
            h.v1_for("memory").unwrap().mount_point,
            PathBuf::from("/sys/fs/cgroup/memory")
        );
        assert_eq!(
            h.v1_for("cpuset").unwrap().kind,
            HierarchyKind::V1(vec!["cpuset".into()])
        );
        assert!(h.v1_for("name=systemd").is_some());
        assert_eq!(
            h.v2().unwrap().mount_point,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn parses_unified_and_legacy() {
        let u =
            Hierarchies::parse("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert_eq!(u.layout(), Layout::Unified);
        let l = Hierarchies::parse(
            "32 31 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        assert_eq!(l.layout(), Layout::Legacy);
        assert!(l.v1_for("cpuacct").is_some());
    }

    #[test]
    fn own_dir_strips_the_mount_root() {
        let own = parse_own("4:memory:/user/a\n3:cpu,cpuacct:/user/b\n0::/user/c\n");
        let h = Hierarchy {
            kind: HierarchyKind::V1(vec!["cpuacct".into(), "cpu".into()]),
            mount_point: "/sys/fs/cgroup/cpu".into(),
            root: "/".into(),
        };
        assert_eq!(h.own_dir(&own), PathBuf::from("/sys/fs/cgroup/cpu/user/b"));
        let v2 = Hierarchy {
            kind: HierarchyKind::V2,
            mount_point: "/cg".into(),
            root: "/user".into(),
        };
        assert_eq!(v2.own_dir(&own), PathBuf::from("/cg/c"));
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
    }
}
