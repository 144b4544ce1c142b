//! The container plan: an OCI config checked and translated into plain data
//! that the syscall layer executes. Everything here is pure, so the rules of
//! the runtime-spec are unit-tested without root; most runtime bugs live in
//! this translation.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{
    Hooks, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, LinuxResources, PosixRlimitType,
    Spec,
};

use super::mount_options::{self, Options};
use super::seccomp;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Invalid(msg.into()))
}

/// A namespace kind, with the names the kernel and the spec use for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum NsKind {
    User,
    Mount,
    Pid,
    Net,
    Ipc,
    Uts,
    Cgroup,
    Time,
}

impl NsKind {
    pub const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Mount,
        NsKind::Pid,
        NsKind::Net,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    pub fn clone_flag(self) -> CloneFlags {
        match self {
            NsKind::User => CloneFlags::CLONE_NEWUSER,
            NsKind::Mount => CloneFlags::CLONE_NEWNS,
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
            NsKind::Net => CloneFlags::CLONE_NEWNET,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            NsKind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        }
    }

    /// The name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mount => "mnt",
            NsKind::Pid => "pid",
            NsKind::Net => "net",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// The config's name for it (`linux.namespaces[].type`).
    pub fn spec_type(self) -> LinuxNamespaceType {
        match self {
            NsKind::User => LinuxNamespaceType::User,
            NsKind::Mount => LinuxNamespaceType::Mount,
            NsKind::Pid => LinuxNamespaceType::Pid,
            NsKind::Net => LinuxNamespaceType::Network,
            NsKind::Ipc => LinuxNamespaceType::Ipc,
            NsKind::Uts => LinuxNamespaceType::Uts,
            NsKind::Cgroup => LinuxNamespaceType::Cgroup,
            NsKind::Time => LinuxNamespaceType::Time,
        }
    }

    fn from_spec(t: LinuxNamespaceType) -> NsKind {
        match t {
            LinuxNamespaceType::User => NsKind::User,
            LinuxNamespaceType::Mount => NsKind::Mount,
            LinuxNamespaceType::Pid => NsKind::Pid,
            LinuxNamespaceType::Network => NsKind::Net,
            LinuxNamespaceType::Ipc => NsKind::Ipc,
            LinuxNamespaceType::Uts => NsKind::Uts,
            LinuxNamespaceType::Cgroup => NsKind::Cgroup,
            LinuxNamespaceType::Time => NsKind::Time,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// Namespaces to create.
    pub new: Vec<NsKind>,
    /// Namespaces to join, by path (`/proc/PID/ns/net`, a bind mount of one).
    pub join: Vec<(NsKind, PathBuf)>,
}

impl Namespaces {
    pub fn creates(&self, k: NsKind) -> bool {
        self.new.contains(&k)
    }
    pub fn joins(&self, k: NsKind) -> Option<&Path> {
        self.join
            .iter()
            .find(|(j, _)| *j == k)
            .map(|(_, p)| p.as_path())
    }
    /// Whether the container has its own namespace of this kind (new or joined).
    pub fn has(&self, k: NsKind) -> bool {
        self.creates(k) || self.joins(k).is_some()
    }
    pub fn new_flags(&self) -> CloneFlags {
        self.new
            .iter()
            .fold(CloneFlags::empty(), |f, k| f | k.clone_flag())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPlan {
    pub destination: PathBuf,
    pub fstype: String,
    pub source: Option<PathBuf>,
    pub options: Options,
}

impl MountPlan {
    pub fn is_bind(&self) -> bool {
        self.options.is_bind() || self.fstype == "bind"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePlan {
    pub path: PathBuf,
    pub kind: DeviceKind,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: PosixRlimitType,
    pub soft: u64,
    pub hard: u64,
}

/// Capability sets by name (`CAP_…`), as the caps crate parses them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: Vec<caps::Capability>,
    pub effective: Vec<caps::Capability>,
    pub permitted: Vec<caps::Capability>,
    pub inheritable: Vec<caps::Capability>,
    pub ambient: Vec<caps::Capability>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    /// None: leave the runtime's capabilities alone (the spec's "absent").
    pub caps: Option<CapSets>,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub root_readonly: bool,
    pub namespaces: Namespaces,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    pub time_offsets: Vec<(String, i64, u32)>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub mounts: Vec<MountPlan>,
    pub devices: Vec<DevicePlan>,
    pub rootfs_propagation: Option<MsFlags>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub sysctl: Vec<(String, String)>,
    pub process: Option<ProcessPlan>,
    pub hooks: Hooks,
    pub cgroups_path: Option<String>,
    pub resources: Option<LinuxResources>,
    pub seccomp: Option<seccomp::Profile>,
    pub annotations: std::collections::HashMap<String, String>,
    pub oci_version: String,
}

/// Reads `<bundle>/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| Error::Parse { path, source })
}

impl Plan {
    /// Checks and translates a config. `bundle` must be absolute.
    pub fn from_spec(spec: &Spec, bundle: &Path) -> Result<Plan> {
        let root = match spec.root() {
            Some(r) => r,
            None => {
                return invalid("root is required (root.path names the container's filesystem)");
            }
        };
        if root.path().as_os_str().is_empty() {
            return invalid("root.path is empty");
        }
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            bundle.join(root.path())
        };

        let linux = spec.linux().clone().unwrap_or_default();
        let namespaces = plan_namespaces(&linux)?;

        let uid_mappings = linux.uid_mappings().clone().unwrap_or_default();
        let gid_mappings = linux.gid_mappings().clone().unwrap_or_default();
        if namespaces.creates(NsKind::User) {
            if uid_mappings.is_empty() || gid_mappings.is_empty() {
                return invalid(
                    "a new user namespace needs linux.uidMappings and linux.gidMappings",
                );
            }
        } else if (!uid_mappings.is_empty() || !gid_mappings.is_empty())
            && namespaces.joins(NsKind::User).is_none()
        {
            return invalid("linux.uidMappings/gidMappings are set but there is no user namespace");
        }
        for m in uid_mappings.iter().chain(gid_mappings.iter()) {
            if m.size() == 0 {
                return invalid("an id mapping has size 0");
            }
            // The kernel refuses ranges past the 32-bit ids (user_namespaces(7)),
            // and host_uid's arithmetic relies on it (found by fuzzing).
            let end = |start: u32| u64::from(start) + u64::from(m.size());
            if end(m.container_id()) > 1 << 32 || end(m.host_id()) > 1 << 32 {
                return invalid(format!(
                    "id mapping {}:{}:{} runs past the 32-bit id range",
                    m.container_id(),
                    m.host_id(),
                    m.size()
                ));
            }
        }

        let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
        let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
        if (hostname.is_some() || domainname.is_some()) && !namespaces.has(NsKind::Uts) {
            return invalid(
                "hostname/domainname need a uts namespace (add {\"type\": \"uts\"} to linux.namespaces)",
            );
        }

        let mut mounts = Vec::new();
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            let dest = m.destination();
            if !dest.is_absolute() {
                return invalid(format!(
                    "mounts[{i}].destination {dest:?} must be an absolute path"
                ));
            }
            let options = mount_options::parse(m.options().as_deref().unwrap_or(&[]))
                .map_err(|e| Error::Invalid(format!("mounts[{i}] ({}): {e}", dest.display())))?;
            let fstype = m.typ().clone().unwrap_or_default();
            let mut plan = MountPlan {
                destination: dest.clone(),
                fstype,
                source: m.source().clone(),
                options,
            };
            if plan.fstype.is_empty() && !plan.options.is_bind() {
                return invalid(format!(
                    "mounts[{i}] ({}) has no type and is not a bind mount",
                    dest.display()
                ));
            }
            if plan.is_bind() {
                plan.options.flags |= MsFlags::MS_BIND;
                match &plan.source {
                    None => {
                        return invalid(format!(
                            "mounts[{i}] ({}): a bind mount needs a source",
                            dest.display()
                        ));
                    }
                    Some(s) if !s.is_absolute() => plan.source = Some(bundle.join(s)),
                    Some(_) => {}
                }
            }
            if matches!(plan.fstype.as_str(), "proc" | "sysfs")
                && plan.destination.components().count() < 2
            {
                return invalid(format!("mounts[{i}]: cannot mount {} on /", plan.fstype));
            }
            mounts.push(plan);
        }

        let devices = plan_devices(&linux)?;

        let rootfs_propagation = match linux.rootfs_propagation().as_deref() {
            None | Some("") => None,
            Some(p) => match mount_options::parse_propagation(p) {
                Some(f) => Some(f),
                None => {
                    return invalid(format!(
                        "linux.rootfsPropagation {p:?} is not a propagation mode"
                    ));
                }
            },
        };

        let masked_paths = abs_paths("linux.maskedPaths", linux.masked_paths().as_deref())?;
        let readonly_paths = abs_paths("linux.readonlyPaths", linux.readonly_paths().as_deref())?;

        let mut sysctl: Vec<(String, String)> = linux
            .sysctl()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        sysctl.sort();
        for (k, _) in &sysctl {
            check_sysctl(k, &namespaces)?;
        }

        let process = match spec.process() {
            Some(p) => Some(plan_process(p)?),
            None => None,
        };
        let seccomp = plan_seccomp(&linux)?;

        let time_offsets = linux
            .time_offsets()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(clock, off)| (clock, off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)))
            .collect::<Vec<_>>();
        if !time_offsets.is_empty() && !namespaces.creates(NsKind::Time) {
            return invalid("linux.timeOffsets need a new time namespace");
        }
        for (clock, _, _) in &time_offsets {
            if clock != "monotonic" && clock != "boottime" {
                return invalid(format!(
                    "linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)"
                ));
            }
        }

        Ok(Plan {
            bundle: bundle.to_path_buf(),
            rootfs,
            root_readonly: root.readonly().unwrap_or(false),
            namespaces,
            uid_mappings,
            gid_mappings,
            time_offsets,
            hostname,
            domainname,
            mounts,
            devices,
            rootfs_propagation,
            masked_paths,
            readonly_paths,
            sysctl,
            process,
            hooks: spec.hooks().clone().unwrap_or_default(),
            cgroups_path: linux
                .cgroups_path()
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            resources: linux.resources().clone(),
            seccomp,
            annotations: spec.annotations().clone().unwrap_or_default(),
            oci_version: spec.version().clone(),
        })
    }

    /// The container's user as the host sees it, for files we create for it.
    pub fn host_uid(&self, uid: u32) -> u32 {
        map_id(&self.uid_mappings, uid)
    }
    pub fn host_gid(&self, gid: u32) -> u32 {
        map_id(&self.gid_mappings, gid)
    }
}

fn map_id(maps: &[LinuxIdMapping], id: u32) -> u32 {
    for m in maps {
        if id >= m.container_id() && id - m.container_id() < m.size() {
            return m.host_id() + (id - m.container_id());
        }
    }
    id
}

fn plan_namespaces(linux: &oci_spec::runtime::Linux) -> Result<Namespaces> {
    let mut ns = Namespaces::default();
    let mut seen = HashSet::new();
    for n in linux.namespaces().iter().flatten() {
        let kind = NsKind::from_spec(n.typ());
        if !seen.insert(kind) {
            return invalid(format!(
                "namespace {:?} is listed twice in linux.namespaces",
                kind.proc_name()
            ));
        }
        match n.path() {
            Some(p) if !p.as_os_str().is_empty() => {
                if !p.is_absolute() {
                    return invalid(format!("namespace path {p:?} must be absolute"));
                }
                ns.join.push((kind, p.clone()));
            }
            _ => ns.new.push(kind),
        }
    }
    Ok(ns)
}

/// `linux.seccomp`, checked (shared by create and exec).
pub fn plan_seccomp(linux: &oci_spec::runtime::Linux) -> Result<Option<seccomp::Profile>> {
    linux
        .seccomp()
        .as_ref()
        .map(seccomp::Profile::from_spec)
        .transpose()
        .map_err(|e| Error::Invalid(e.to_string()))
}

fn plan_devices(linux: &oci_spec::runtime::Linux) -> Result<Vec<DevicePlan>> {
    let mut out = Vec::new();
    for d in linux.devices().iter().flatten() {
        let path = d.path();
        if !path.is_absolute() || !path.starts_with("/dev") {
            return invalid(format!(
                "linux.devices: {path:?} must be an absolute path under /dev"
            ));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => DeviceKind::Fifo,
            LinuxDeviceType::A => {
                return invalid(format!(
                    "linux.devices: {path:?} has type \"a\", which is not a device"
                ));
            }
        };
        if d.major() < 0 || d.minor() < 0 {
            return invalid(format!(
                "linux.devices: {path:?} has a negative major or minor number"
            ));
        }
        out.push(DevicePlan {
            path: path.clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

fn abs_paths(what: &str, paths: Option<&[String]>) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths.unwrap_or(&[]) {
        if !p.starts_with('/') {
            return invalid(format!("{what}: {p:?} must be an absolute path"));
        }
        out.push(PathBuf::from(p));
    }
    Ok(out)
}

/// Sysctls are only allowed when the namespace they belong to is the
/// container's own (as runc's validator does); otherwise they would change
/// the host.
pub fn check_sysctl(key: &str, ns: &Namespaces) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if key.contains("..") || key.contains('\0') || key.starts_with('/') {
        return invalid(format!("sysctl {key:?} is not a valid name"));
    }
    if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        if ns.has(NsKind::Ipc) {
            return Ok(());
        }
        return invalid(format!("sysctl {key:?} needs an ipc namespace"));
    }
    if key.starts_with("net.") {
        if ns.has(NsKind::Net) {
            return Ok(());
        }
        return invalid(format!("sysctl {key:?} needs a network namespace"));
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        if ns.has(NsKind::Uts) {
            return Ok(());
        }
        return invalid(format!("sysctl {key:?} needs a uts namespace"));
    }
    invalid(format!(
        "sysctl {key:?} is not namespaced; setting it would change the host"
    ))
}

/// Checks and translates a process (the config's, or one for `exec`).
pub fn plan_process(p: &oci_spec::runtime::Process) -> Result<ProcessPlan> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return invalid("process.args must name a program");
    }
    if !p.cwd().is_absolute() {
        return invalid(format!(
            "process.cwd {:?} must be an absolute path",
            p.cwd()
        ));
    }
    let env = p.env().clone().unwrap_or_default();
    for e in &env {
        if !e.contains('=') || e.starts_with('=') || e.contains('\0') {
            return invalid(format!("process.env entry {e:?} is not KEY=value"));
        }
    }
    let caps = match p.capabilities() {
        None => None,
        Some(c) => Some(CapSets {
            bounding: cap_list(c.bounding())?,
            effective: cap_list(c.effective())?,
            permitted: cap_list(c.permitted())?,
            inheritable: cap_list(c.inheritable())?,
            ambient: cap_list(c.ambient())?,
        }),
    };
    let mut rlimits = Vec::new();
    let mut seen = HashSet::new();
    for r in p.rlimits().iter().flatten() {
        if !seen.insert(format!("{:?}", r.typ())) {
            return invalid(format!("process.rlimits: {:?} is listed twice", r.typ()));
        }
        if r.soft() > r.hard() {
            return invalid(format!(
                "process.rlimits: {:?} has soft {} above hard {}",
                r.typ(),
                r.soft(),
                r.hard()
            ));
        }
        rlimits.push(Rlimit {
            resource: r.typ(),
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    if let Some(adj) = p.oom_score_adj()
        && !(-1000..=1000).contains(&adj)
    {
        return invalid(format!("process.oomScoreAdj {adj} is outside -1000..1000"));
    }
    let user = p.user();
    Ok(ProcessPlan {
        args,
        env,
        cwd: p.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        terminal: p.terminal().unwrap_or(false),
        console_size: p
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16)),
        caps,
        rlimits,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        apparmor_profile: p.apparmor_profile().clone().filter(|s| !s.is_empty()),
        selinux_label: p.selinux_label().clone().filter(|s| !s.is_empty()),
    })
}

fn cap_list(set: &Option<oci_spec::runtime::Capabilities>) -> Result<Vec<caps::Capability>> {
    let mut out = Vec::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        match name.parse::<caps::Capability>() {
            Ok(cap) => out.push(cap),
            Err(_) => return invalid(format!("unknown capability {name:?}")),
        }
    }
    out.sort_by_key(|c| c.index());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    const MINIMAL: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]},
        "linux":{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"uts"}]}, "hostname":"h"}"#;

    #[test]
    fn minimal_plan() {
        let p = Plan::from_spec(&spec(MINIMAL), Path::new("/b")).unwrap();
        assert_eq!(p.rootfs, PathBuf::from("/b/rootfs"));
        assert_eq!(
            p.namespaces.new,
            vec![NsKind::Pid, NsKind::Mount, NsKind::Uts]
        );
        assert_eq!(p.hostname.as_deref(), Some("h"));
        assert_eq!(p.process.unwrap().args, vec!["sh"]);
    }

    #[test]
    fn id_mappings_stay_in_the_32_bit_range() {
        let with = |uid_map: &str| {
            let s = MINIMAL.replace(
                r#"{"type":"uts"}]"#,
                &format!(
                    r#"{{"type":"uts"}},{{"type":"user"}}],"uidMappings":[{uid_map}],
                    "gidMappings":[{{"containerID":0,"hostID":1000,"size":1}}]"#
                ),
            );
            Plan::from_spec(&spec(&s), Path::new("/b"))
        };
        let p = with(r#"{"containerID":0,"hostID":100000,"size":65536}"#).unwrap();
        assert_eq!(p.host_uid(5), 100005);
        let top = with(r#"{"containerID":0,"hostID":4294967286,"size":10}"#).unwrap();
        assert_eq!(top.host_uid(9), u32::MAX);
        for bad in [
            r#"{"containerID":0,"hostID":4294967295,"size":10}"#,
            r#"{"containerID":4294967295,"hostID":0,"size":2}"#,
        ] {
            let e = with(bad).unwrap_err();
            assert!(e.to_string().contains("32-bit id range"), "{bad}: {e}");
        }
    }

    #[test]
    fn hostname_needs_uts() {
        let s = MINIMAL.replace(r#",{"type":"uts"}"#, "");
        let e = Plan::from_spec(&spec(&s), Path::new("/b")).unwrap_err();
        assert!(e.to_string().contains("uts namespace"), "{e}");
    }

    #[test]
    fn unknown_namespace_type_is_a_parse_error() {
        let s = MINIMAL.replace(r#"{"type":"pid"}"#, r#"{"type":"bogus"}"#);
        let e = serde_json::from_str::<Spec>(&s).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn duplicate_namespace() {
        let s = MINIMAL.replace(r#"{"type":"pid"}"#, r#"{"type":"pid"},{"type":"pid"}"#);
        assert!(Plan::from_spec(&spec(&s), Path::new("/b")).is_err());
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let s = MINIMAL.replace(r#"{"type":"pid"}"#, r#"{"type":"user"}"#);
        let e = Plan::from_spec(&spec(&s), Path::new("/b")).unwrap_err();
        assert!(e.to_string().contains("uidMappings"), "{e}");
    }

    #[test]
    fn unknown_capability_is_an_error() {
        let s = MINIMAL.replace(
            r#""args":["sh"]"#,
            r#""args":["sh"],"capabilities":{"bounding":["CAP_TEST"]}"#,
        );
        // oci-spec already refuses the name while parsing.
        let parsed = serde_json::from_str::<Spec>(&s);
        match parsed {
            Err(e) => assert!(e.to_string().contains("TEST"), "{e}"),
            Ok(sp) => assert!(Plan::from_spec(&sp, Path::new("/b")).is_err()),
        }
    }

    #[test]
    fn relative_cwd_is_refused() {
        let s = MINIMAL.replace(r#""cwd":"/""#, r#""cwd":"tmp""#);
        assert!(Plan::from_spec(&spec(&s), Path::new("/b")).is_err());
    }

    #[test]
    fn sysctl_rules() {
        let ns = Namespaces {
            new: vec![NsKind::Net],
            join: vec![],
        };
        assert!(check_sysctl("net.ipv4.ip_forward", &ns).is_ok());
        assert!(check_sysctl("kernel.shmmax", &ns).is_err());
        assert!(check_sysctl("vm.swappiness", &ns).is_err());
    }

    #[test]
    fn bind_source_is_relative_to_bundle() {
        let s = MINIMAL.replace(
            r#""linux""#,
            r#""mounts":[{"destination":"/data","type":"bind","source":"d","options":["rbind","ro"]}],"linux""#,
        );
        let p = Plan::from_spec(&spec(&s), Path::new("/b")).unwrap();
        assert_eq!(p.mounts[0].source.as_deref(), Some(Path::new("/b/d")));
        assert!(p.mounts[0].options.is_readonly());
    }

    #[test]
    fn id_mapping() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":100000,"size":65536}]"#).unwrap();
        assert_eq!(map_id(&m, 0), 100000);
        assert_eq!(map_id(&m, 1000), 101000);
        assert_eq!(map_id(&m, 70000), 70000);
    }
}
