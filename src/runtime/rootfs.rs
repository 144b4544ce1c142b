//! The container's filesystem: mounts inside the rootfs, devices, pivot_root,
//! read-only root, masked and read-only paths. Runs in the init process, in
//! the container's new mount namespace.
//!
//! Every destination is resolved inside the rootfs by [`crate::inroot`] and
//! mounted through its fd (move_mount, or mount(2) on `/proc/self/fd/N`), so
//! symlinks in the rootfs cannot send a mount to the host (CVE-2019-19921,
//! CVE-2021-30465, CVE-2023-27561).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

use super::mount_options::attr;
use super::plan::{DeviceKind, DevicePlan, MountPlan, NsKind, Plan};
use crate::cgroups::{Cgroup, Hierarchies, HierarchyKind};
use crate::inroot::{self, Create, Root, proc_fd_path};
use crate::linux::{self, MountAttr};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Path(#[from] inroot::Error),
    #[error(transparent)]
    Proc(#[from] super::procfs::Error),
    #[error(transparent)]
    CopyUp(#[from] super::copyup::Error),
    #[error("mount {what} on {dest}: {errno}")]
    Mount {
        what: String,
        dest: PathBuf,
        errno: Errno,
    },
    #[error("{dest}: {why}")]
    Refused { dest: PathBuf, why: String },
    #[error("{op} {path}: {errno}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

fn sys(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(Errno) -> Error {
    let path = path.into();
    move |errno| Error::Sys { op, path, errno }
}

/// The devices every container gets (runtime-spec "Default Devices").
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

pub struct Context<'a> {
    pub plan: &'a Plan,
    /// Whether we are in a user namespace we created or joined: mknod is not
    /// allowed there, and some filesystems cannot be mounted.
    pub in_userns: bool,
    pub hierarchies: Option<&'a Hierarchies>,
    pub cgroup: Option<&'a Cgroup>,
    /// Returns once the init is in its cgroups (and its new cgroup
    /// namespace): called before the first cgroup mount.
    pub cgroups_joined: &'a dyn Fn() -> std::result::Result<(), Errno>,
}

/// The proc and sysfs mounts we made, held by fd: masked and read-only
/// paths under them are resolved from these, not from their path in the
/// rootfs, so a rename of /proc in the rootfs while the container is made
/// (CVE-2019-19921, CVE-2023-27561) cannot make a mask miss its procfs.
#[derive(Default)]
pub struct Anchors(Vec<(PathBuf, OwnedFd)>);

impl Anchors {
    /// The root to resolve `p` under and `p` relative to it: the deepest
    /// anchor containing `p`, or the container's root.
    fn split(&self, p: &Path) -> Option<(Root, PathBuf)> {
        self.0
            .iter()
            .filter(|(dest, _)| p.starts_with(dest))
            .max_by_key(|(dest, _)| dest.components().count())
            .and_then(|(dest, fd)| {
                let fd = fd.try_clone().ok()?;
                let rel = p.strip_prefix(dest).ok()?;
                Some((Root::from_fd(fd, dest.clone()), Path::new("/").join(rel)))
            })
    }
}

/// Step one, before pivot_root: propagation, the rootfs bind, the spec's
/// mounts in order, devices. Returns the open rootfs.
pub fn prepare(ctx: &Context<'_>) -> Result<(Root, Anchors)> {
    let plan = ctx.plan;
    // Keep our mounts from propagating to the host; a shared rootfs
    // propagation is applied after pivot_root (pivot_root refuses a shared
    // parent).
    let prop = match plan.rootfs_propagation {
        Some(p) if !p.contains(MsFlags::MS_SHARED) => p,
        _ => MsFlags::MS_SLAVE,
    };
    set_propagation("/", prop, "propagation")?;

    // The rootfs must be a mount point for pivot_root.
    let rootfs = &plan.rootfs;
    let meta = std::fs::metadata(rootfs).map_err(|e| Error::Sys {
        op: "stat rootfs",
        path: rootfs.clone(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    if !meta.is_dir() {
        return Err(Error::Refused {
            dest: rootfs.clone(),
            why: "the rootfs is not a directory".into(),
        });
    }
    nix::mount::mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| Error::Mount {
        what: "rootfs bind".into(),
        dest: rootfs.clone(),
        errno,
    })?;
    let root = Root::open(rootfs)?;

    let mut anchors = Anchors::default();
    for m in &plan.mounts {
        mount_one(ctx, &root, m)?;
        if m.fstype == "proc" || m.fstype == "sysfs" {
            anchors
                .0
                .push((m.destination.clone(), mounted_root(&root, m)?));
        }
    }

    if !plan
        .mounts
        .iter()
        .any(|m| m.destination == Path::new("/dev") && m.is_bind())
    {
        for (path, major, minor) in DEFAULT_DEVICES {
            if plan.devices.iter().any(|d| d.path == Path::new(path)) {
                continue;
            }
            let d = DevicePlan {
                path: path.into(),
                kind: DeviceKind::Char,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            };
            create_device(ctx, &root, &d)?;
        }
        for d in &plan.devices {
            create_device(ctx, &root, d)?;
        }
        dev_symlinks(&root)?;
    }
    Ok((root, anchors))
}

/// The root of the proc or sysfs mount just made at `m.destination`,
/// checked to be that filesystem: a directory swapped in since the mount
/// is refused.
fn mounted_root(root: &Root, m: &MountPlan) -> Result<OwnedFd> {
    let dest = &m.destination;
    let fd = root.resolve_nofollow(dest)?;
    let fs = nix::sys::statfs::fstatfs(fd.as_fd()).map_err(sys("statfs", dest))?;
    let magic = fs.filesystem_type().0 as i64;
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(sys("stat", dest))?;
    let ok = match m.fstype.as_str() {
        "proc" => magic == 0x9fa0 && st.st_ino == 1,
        _ => magic == 0x6265_6572 && st.st_mode & libc::S_IFMT == libc::S_IFDIR,
    };
    if !ok {
        return Err(Error::Refused {
            dest: dest.clone(),
            why: format!(
                "was replaced while {} was mounted on it (it is now {})",
                m.fstype,
                super::procfs::fs_name(magic)
            ),
        });
    }
    Ok(fd)
}

fn mount_one(ctx: &Context<'_>, root: &Root, m: &MountPlan) -> Result<()> {
    let dest = &m.destination;
    if m.is_bind() {
        return bind_mount(root, m);
    }
    if m.fstype == "cgroup" || m.fstype == "cgroup2" {
        return mount_cgroup(ctx, root, m);
    }
    let target = if m.fstype == "proc" || m.fstype == "sysfs" {
        // A rootfs whose /proc or /sys is a symlink is hostile: runc was
        // tricked into mounting procfs elsewhere (CVE-2019-19921). The last
        // component is not followed, so a symlink swapped in while we
        // resolve is what we get, and refuse.
        let target = root.resolve_or_create_nofollow(dest, Create::Dir(0o755))?;
        let st = nix::sys::stat::fstat(target.as_raw_fd()).map_err(sys("stat", dest))?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {}
            libc::S_IFLNK => {
                return Err(Error::Refused {
                    dest: dest.clone(),
                    why: "is a symlink in the rootfs; refusing to mount proc or sysfs through it"
                        .into(),
                });
            }
            _ => {
                return Err(Error::Refused {
                    dest: dest.clone(),
                    why: format!("{} must be mounted on a directory", m.fstype),
                });
            }
        }
        target
    } else {
        root.resolve_or_create(dest, Create::Dir(0o755))?
    };
    let mut flags = m.options.flags & !(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC);
    let data = m.options.data_string();
    let source = m.source.clone().unwrap_or_else(|| PathBuf::from(&m.fstype));
    // What the tmpfs will hide, opened before it does; the tmpfs is
    // mounted writable for the copy and made read-only after.
    let copy_from = if m.options.tmpcopyup && m.fstype == "tmpfs" {
        flags.remove(MsFlags::MS_RDONLY);
        Some(
            inroot::reopen(&target, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(sys("open for tmpcopyup", dest))?,
        )
    } else {
        None
    };
    let res = mount_at(&source, &target, &m.fstype, flags, &data);
    match res {
        Ok(()) if copy_from.is_some() => {
            let tmpfs = root.resolve(dest)?;
            let tmpfs_dir = inroot::reopen(&tmpfs, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(sys("open for tmpcopyup", dest))?;
            if let Some(from) = &copy_from {
                super::copyup::copy_contents(from, &tmpfs_dir, dest)?;
            }
            if m.options.is_readonly() {
                let a = MountAttr {
                    attr_set: attr::RDONLY,
                    ..Default::default()
                };
                linux::mount_setattr(tmpfs.as_fd(), false, &a).map_err(|errno| Error::Mount {
                    what: "read-only tmpfs".into(),
                    dest: dest.clone(),
                    errno,
                })?;
            }
        }
        Ok(()) => {}
        // In a user namespace the kernel refuses sysfs (no network namespace
        // of ours) and sometimes mqueue: bind the host's instead, as runc does.
        Err(Errno::EPERM) if ctx.in_userns && (m.fstype == "sysfs" || m.fstype == "mqueue") => {
            let host = if m.fstype == "sysfs" {
                "/sys"
            } else {
                "/dev/mqueue"
            };
            let tree =
                linux::open_tree_clone(Path::new(host), true).map_err(|errno| Error::Mount {
                    what: format!("{host} (bind)"),
                    dest: dest.clone(),
                    errno,
                })?;
            set_attrs(&tree, m, true)?;
            linux::move_mount(tree.as_fd(), target.as_fd()).map_err(|errno| Error::Mount {
                what: format!("{host} (bind)"),
                dest: dest.clone(),
                errno,
            })?;
        }
        Err(errno) => {
            return Err(Error::Mount {
                what: m.fstype.clone(),
                dest: dest.clone(),
                errno,
            });
        }
    }
    apply_propagation(root, dest, &m.options.propagation)?;
    if m.options.rec_set != 0 || m.options.rec_clear != 0 {
        let fd = root.resolve(dest)?;
        let a = MountAttr {
            attr_set: m.options.rec_set,
            attr_clr: m.options.rec_clear,
            ..Default::default()
        };
        linux::mount_setattr(fd.as_fd(), true, &a).map_err(|errno| Error::Mount {
            what: "recursive attributes".into(),
            dest: dest.clone(),
            errno,
        })?;
    }
    Ok(())
}

/// mount(2) onto exactly the object `target` holds.
fn mount_at(
    source: &Path,
    target: &OwnedFd,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> std::result::Result<(), Errno> {
    let dst = proc_fd_path(target.as_raw_fd());
    nix::mount::mount(
        Some(source),
        &dst,
        Some(fstype),
        flags,
        if data.is_empty() { None } else { Some(data) },
    )
}

/// Mount flags that mount_setattr expresses as attributes.
fn attrs_of(flags: MsFlags, cleared: MsFlags) -> MountAttr {
    let mut a = MountAttr::default();
    for (f, bit) in [
        (MsFlags::MS_RDONLY, attr::RDONLY),
        (MsFlags::MS_NOSUID, attr::NOSUID),
        (MsFlags::MS_NODEV, attr::NODEV),
        (MsFlags::MS_NOEXEC, attr::NOEXEC),
        (MsFlags::MS_NODIRATIME, attr::NODIRATIME),
    ] {
        if flags.contains(f) {
            a.attr_set |= bit;
        } else if cleared.contains(f) {
            a.attr_clr |= bit;
        }
    }
    let atime = if flags.contains(MsFlags::MS_NOATIME) {
        Some(attr::NOATIME)
    } else if flags.contains(MsFlags::MS_STRICTATIME) {
        Some(attr::STRICTATIME)
    } else if flags.contains(MsFlags::MS_RELATIME) {
        Some(attr::RELATIME)
    } else {
        None
    };
    if let Some(t) = atime {
        a.attr_clr |= attr::ATIME_MASK;
        a.attr_set |= t;
    }
    a
}

fn set_attrs(tree: &OwnedFd, m: &MountPlan, recursive_bind: bool) -> Result<()> {
    let a = attrs_of(m.options.flags, m.options.cleared);
    if a.attr_set != 0 || a.attr_clr != 0 {
        // `ro` on an rbind applies to the top mount only, as in runc; `rro`
        // is the recursive form.
        linux::mount_setattr(tree.as_fd(), false, &a).map_err(|errno| Error::Mount {
            what: "attributes".into(),
            dest: m.destination.clone(),
            errno,
        })?;
    }
    if m.options.rec_set != 0 || m.options.rec_clear != 0 {
        let r = MountAttr {
            attr_set: m.options.rec_set,
            attr_clr: m.options.rec_clear,
            ..Default::default()
        };
        linux::mount_setattr(tree.as_fd(), recursive_bind, &r).map_err(|errno| Error::Mount {
            what: "recursive attributes".into(),
            dest: m.destination.clone(),
            errno,
        })?;
    }
    for p in &m.options.propagation {
        let rec = p.contains(MsFlags::MS_REC);
        let a = MountAttr {
            propagation: (*p & !MsFlags::MS_REC).bits(),
            ..Default::default()
        };
        linux::mount_setattr(tree.as_fd(), rec, &a).map_err(|errno| Error::Mount {
            what: "propagation".into(),
            dest: m.destination.clone(),
            errno,
        })?;
    }
    Ok(())
}

/// A bind mount: the source tree is cloned, given its flags while still
/// detached, then attached on the destination's fd.
fn bind_mount(root: &Root, m: &MountPlan) -> Result<()> {
    let dest = &m.destination;
    let source = m.source.as_ref().ok_or_else(|| Error::Refused {
        dest: dest.clone(),
        why: "bind mount without a source".into(),
    })?;
    let recursive = m.options.flags.contains(MsFlags::MS_REC);
    let tree = linux::open_tree_clone(source, recursive).map_err(|errno| Error::Mount {
        what: format!("bind of {}", source.display()),
        dest: dest.clone(),
        errno,
    })?;
    let st = nix::sys::stat::fstat(tree.as_raw_fd()).map_err(sys("stat", source))?;
    let create = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        Create::Dir(0o755)
    } else {
        Create::File {
            dir_mode: 0o755,
            file_mode: 0o644,
        }
    };
    let target = root.resolve_or_create(dest, create)?;
    set_attrs(&tree, m, recursive)?;
    linux::move_mount(tree.as_fd(), target.as_fd()).map_err(|errno| Error::Mount {
        what: format!("bind of {}", source.display()),
        dest: dest.clone(),
        errno,
    })
}

fn apply_propagation(root: &Root, dest: &Path, props: &[MsFlags]) -> Result<()> {
    if props.is_empty() {
        return Ok(());
    }
    // Resolve again: the path now crosses into the new mount, whose root is
    // what propagation applies to.
    let fd = root.resolve(dest)?;
    for p in props {
        let rec = p.contains(MsFlags::MS_REC);
        let a = MountAttr {
            propagation: (*p & !MsFlags::MS_REC).bits(),
            ..Default::default()
        };
        linux::mount_setattr(fd.as_fd(), rec, &a).map_err(|errno| Error::Mount {
            what: "propagation".into(),
            dest: dest.to_path_buf(),
            errno,
        })?;
    }
    Ok(())
}

/// A `cgroup` mount: the real hierarchies when the container has its own
/// cgroup namespace (they then show its cgroup as their root), or binds of
/// its cgroup directories otherwise, as runc does.
fn mount_cgroup(ctx: &Context<'_>, root: &Root, m: &MountPlan) -> Result<()> {
    let dest = &m.destination;
    (ctx.cgroups_joined)().map_err(sys(
        "wait for the cgroups to be joined before mounting",
        dest,
    ))?;
    let Some(hier) = ctx.hierarchies else {
        return Err(Error::Refused {
            dest: dest.clone(),
            why: "no cgroup hierarchy is mounted on the host".into(),
        });
    };
    let own_ns = ctx.plan.namespaces.has(NsKind::Cgroup);
    let flags = m.options.flags & !(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC);
    let target = root.resolve_or_create(dest, Create::Dir(0o755))?;
    let mount_err = |what: &str, errno| Error::Mount {
        what: what.to_string(),
        dest: dest.clone(),
        errno,
    };

    if hier.layout() == crate::cgroups::Layout::Unified {
        if own_ns {
            return mount_at(Path::new("cgroup2"), &target, "cgroup2", flags, "")
                .map_err(|e| mount_err("cgroup2", e));
        }
        let dir = container_dir(ctx.cgroup, &HierarchyKind::V2).ok_or_else(|| Error::Refused {
            dest: dest.clone(),
            why: "the container has no cgroup v2 directory to bind".into(),
        })?;
        return bind_dir(&dir, &target, flags, dest);
    }

    // v1 or hybrid: a tmpfs holding one directory per hierarchy.
    let tmpfs_flags =
        (flags & !MsFlags::MS_RDONLY) | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_at(
        Path::new("tmpfs"),
        &target,
        "tmpfs",
        tmpfs_flags,
        "mode=755",
    )
    .map_err(|e| mount_err("tmpfs", e))?;
    for h in hier.all() {
        let name = h
            .mount_point
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("unified"));
        let sub = dest.join(&name);
        let sub_fd = root.resolve_or_create(&sub, Create::Dir(0o755))?;
        let res = match (&h.kind, own_ns) {
            (HierarchyKind::V2, true) => {
                mount_at(Path::new("cgroup2"), &sub_fd, "cgroup2", flags, "")
            }
            (HierarchyKind::V1(cs), true) => {
                let data = if cs.iter().all(|c| c.starts_with("name=")) {
                    format!("none,{}", cs.join(","))
                } else {
                    cs.join(",")
                };
                mount_at(Path::new("cgroup"), &sub_fd, "cgroup", flags, &data)
            }
            (kind, false) => match container_dir(ctx.cgroup, kind) {
                Some(dir) => {
                    bind_dir(&dir, &sub_fd, flags, &sub)?;
                    Ok(())
                }
                None => Ok(()),
            },
        };
        res.map_err(|errno| Error::Mount {
            what: format!("cgroup {}", name.display()),
            dest: sub.clone(),
            errno,
        })?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let fd = root.resolve(dest)?;
        let a = MountAttr {
            attr_set: attr::RDONLY,
            ..Default::default()
        };
        linux::mount_setattr(fd.as_fd(), false, &a)
            .map_err(|e| mount_err("read-only cgroup tmpfs", e))?;
    }
    Ok(())
}

fn container_dir(cg: Option<&Cgroup>, kind: &HierarchyKind) -> Option<PathBuf> {
    cg?.dirs
        .iter()
        .find(|d| &d.kind == kind)
        .map(|d| d.dir.clone())
}

fn bind_dir(src: &Path, target: &OwnedFd, flags: MsFlags, dest: &Path) -> Result<()> {
    let tree = linux::open_tree_clone(src, false).map_err(|errno| Error::Mount {
        what: format!("bind of {}", src.display()),
        dest: dest.to_path_buf(),
        errno,
    })?;
    let a = attrs_of(flags, MsFlags::empty());
    if a.attr_set != 0 {
        linux::mount_setattr(tree.as_fd(), false, &a).map_err(|errno| Error::Mount {
            what: "attributes".into(),
            dest: dest.to_path_buf(),
            errno,
        })?;
    }
    linux::move_mount(tree.as_fd(), target.as_fd()).map_err(|errno| Error::Mount {
        what: format!("bind of {}", src.display()),
        dest: dest.to_path_buf(),
        errno,
    })
}

fn create_device(ctx: &Context<'_>, root: &Root, d: &DevicePlan) -> Result<()> {
    let (dir, name) = root.resolve_parent(&d.path, 0o755)?;
    let cname = CString::new(name.as_bytes()).map_err(|_| Error::Refused {
        dest: d.path.clone(),
        why: "NUL in name".into(),
    })?;
    // Whatever the rootfs has at that name goes: it is not the device asked for.
    match nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        cname.as_c_str(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(errno) => {
            return Err(Error::Sys {
                op: "unlink",
                path: d.path.clone(),
                errno,
            });
        }
    }
    if ctx.in_userns {
        // mknod is not allowed in a user namespace: bind the host's node.
        let file = nix::fcntl::openat(
            Some(dir.as_raw_fd()),
            cname.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_WRONLY,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(sys("create", &d.path))?;
        let _ = nix::unistd::close(file);
        let target = root.resolve_nofollow(&d.path)?;
        let tree = linux::open_tree_clone(&d.path, false).map_err(|errno| Error::Mount {
            what: format!("host device {}", d.path.display()),
            dest: d.path.clone(),
            errno,
        })?;
        return linux::move_mount(tree.as_fd(), target.as_fd()).map_err(|errno| Error::Mount {
            what: format!("host device {}", d.path.display()),
            dest: d.path.clone(),
            errno,
        });
    }
    let kind = match d.kind {
        DeviceKind::Char => SFlag::S_IFCHR,
        DeviceKind::Block => SFlag::S_IFBLK,
        DeviceKind::Fifo => SFlag::S_IFIFO,
    };
    let dev = nix::sys::stat::makedev(d.major, d.minor);
    nix::sys::stat::mknodat(
        Some(dir.as_raw_fd()),
        cname.as_c_str(),
        kind,
        Mode::from_bits_truncate(d.mode),
        dev,
    )
    .map_err(sys("mknod", &d.path))?;
    // mknod applies the umask; the mode asked for is exact.
    nix::sys::stat::fchmodat(
        Some(dir.as_raw_fd()),
        cname.as_c_str(),
        Mode::from_bits_truncate(d.mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(sys("chmod", &d.path))?;
    let uid = ctx.plan.host_uid(d.uid);
    let gid = ctx.plan.host_gid(d.gid);
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        cname.as_c_str(),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(sys("chown", &d.path))
}

fn dev_symlinks(root: &Root) -> Result<()> {
    let links = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    for (link, target) in links {
        let (dir, name) = root.resolve_parent(Path::new(link), 0o755)?;
        match nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name.as_os_str()) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => {
                return Err(Error::Sys {
                    op: "symlink",
                    path: link.into(),
                    errno,
                });
            }
        }
    }
    if Path::new("/proc/kcore").exists() {
        let (dir, name) = root.resolve_parent(Path::new("/dev/core"), 0o755)?;
        match nix::unistd::symlinkat("/proc/kcore", Some(dir.as_raw_fd()), name.as_os_str()) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => {
                return Err(Error::Sys {
                    op: "symlink",
                    path: "/dev/core".into(),
                    errno,
                });
            }
        }
    }
    // /dev/ptmx must be the container's own devpts instance's ptmx.
    if let Ok(pts) = root.resolve(Path::new("/dev/pts/ptmx")) {
        drop(pts);
        let (dir, name) = root.resolve_parent(Path::new("/dev/ptmx"), 0o755)?;
        let cname = CString::new(name.as_bytes()).unwrap_or_default();
        match nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            cname.as_c_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(errno) => {
                return Err(Error::Sys {
                    op: "unlink",
                    path: "/dev/ptmx".into(),
                    errno,
                });
            }
        }
        nix::unistd::symlinkat("pts/ptmx", Some(dir.as_raw_fd()), cname.as_c_str())
            .map_err(sys("symlink", "/dev/ptmx"))?;
    }
    Ok(())
}

/// Step two: make the rootfs `/`. With `no_pivot`, MS_MOVE and chroot (for
/// ramdisk roots, where pivot_root is impossible).
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).map_err(sys("chdir", rootfs))?;
    if no_pivot {
        nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(
            |errno| Error::Mount {
                what: "rootfs (move)".into(),
                dest: "/".into(),
                errno,
            },
        )?;
        nix::unistd::chroot(".").map_err(sys("chroot", rootfs))?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one,
        // then unmounting "." removes it: no put_old directory needed.
        nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root", rootfs))?;
        // The old root's mounts must not propagate our unmount to the host.
        set_propagation(".", MsFlags::MS_SLAVE, "old root propagation")?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(sys("unmount old root", "/"))?;
    }
    nix::unistd::chdir("/").map_err(sys("chdir", "/"))
}

/// Step three, after pivot_root: read-only root, masked and read-only paths,
/// rootfs propagation.
pub fn finalize(plan: &Plan, anchors: &Anchors) -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    for p in &plan.readonly_paths {
        match anchors.split(p) {
            Some((under, rel)) => readonly_path(&under, &rel, p)?,
            None => readonly_path(&root, p, p)?,
        }
    }
    if !plan.masked_paths.is_empty() {
        let null = verified_dev_null()?;
        for p in &plan.masked_paths {
            match anchors.split(p) {
                Some((under, rel)) => mask_path(&under, &rel, p, &null)?,
                None => mask_path(&root, p, p, &null)?,
            }
        }
    }
    if plan.root_readonly {
        let fd = root.resolve(Path::new("/"))?;
        let a = MountAttr {
            attr_set: attr::RDONLY,
            ..Default::default()
        };
        linux::mount_setattr(fd.as_fd(), false, &a).map_err(|errno| Error::Mount {
            what: "read-only root".into(),
            dest: "/".into(),
            errno,
        })?;
    }
    if let Some(p) = plan.rootfs_propagation {
        set_propagation("/", p, "rootfs propagation")?;
    }
    Ok(())
}

/// Sets the propagation type `kind` (MS_SLAVE, MS_PRIVATE, ...) on the
/// mount at `path` and every mount below it.
fn set_propagation(path: &str, kind: MsFlags, what: &str) -> Result<()> {
    nix::mount::mount(
        None::<&str>,
        path,
        None::<&str>,
        kind | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| Error::Mount {
        what: what.into(),
        dest: "/".into(),
        errno,
    })
}

/// `rel` is resolved under `root`; `p` is the configured path, for errors.
fn readonly_path(root: &Root, rel: &Path, p: &Path) -> Result<()> {
    let fd = match root.resolve(rel) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let tree = linux::open_tree_clone_fd(fd.as_fd(), true).map_err(|errno| Error::Mount {
        what: "read-only bind".into(),
        dest: p.to_path_buf(),
        errno,
    })?;
    let a = MountAttr {
        attr_set: attr::RDONLY,
        ..Default::default()
    };
    linux::mount_setattr(tree.as_fd(), true, &a).map_err(|errno| Error::Mount {
        what: "read-only bind".into(),
        dest: p.to_path_buf(),
        errno,
    })?;
    linux::move_mount(tree.as_fd(), fd.as_fd()).map_err(|errno| Error::Mount {
        what: "read-only bind".into(),
        dest: p.to_path_buf(),
        errno,
    })
}

/// /dev/null, checked to be the real null device before it is bound over
/// anything: a container that swapped it for a link to a host file could
/// otherwise have that file bound in (CVE-2025-31133).
fn verified_dev_null() -> Result<OwnedFd> {
    let root = Root::open(Path::new("/"))?;
    let fd = root.resolve_nofollow(Path::new("/dev/null"))?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(sys("stat", "/dev/null"))?;
    let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && nix::sys::stat::major(st.st_rdev) == 1
        && nix::sys::stat::minor(st.st_rdev) == 3;
    if !is_null {
        return Err(Error::Refused {
            dest: "/dev/null".into(),
            why: "is not the null device (1:3); refusing to mask with it".into(),
        });
    }
    Ok(fd)
}

/// `rel` is resolved under `root`; `p` is the configured path, for errors.
fn mask_path(root: &Root, rel: &Path, p: &Path, null: &OwnedFd) -> Result<()> {
    let fd = match root.resolve(rel) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(sys("stat", p))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        mount_at(
            Path::new("tmpfs"),
            &fd,
            "tmpfs",
            MsFlags::MS_RDONLY,
            "size=0k,mode=0555",
        )
        .map_err(|errno| Error::Mount {
            what: "masking tmpfs".into(),
            dest: p.to_path_buf(),
            errno,
        })
    } else {
        let tree =
            linux::open_tree_clone_fd(null.as_fd(), false).map_err(|errno| Error::Mount {
                what: "/dev/null (mask)".into(),
                dest: p.to_path_buf(),
                errno,
            })?;
        linux::move_mount(tree.as_fd(), fd.as_fd()).map_err(|errno| Error::Mount {
            what: "/dev/null (mask)".into(),
            dest: p.to_path_buf(),
            errno,
        })
    }
}

/// Writes the config's sysctls through the container's /proc/sys, after
/// checking that /proc is a real procfs (CVE-2019-16884).
pub fn apply_sysctls(sysctl: &[(String, String)]) -> Result<()> {
    if sysctl.is_empty() {
        return Ok(());
    }
    let proc = super::procfs::ProcFs::open(Path::new("/proc"), "set sysctls")?;
    for (key, value) in sysctl {
        proc.write(
            &super::procfs::sysctl_path(key),
            value.as_bytes(),
            "set sysctls",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_from_flags() {
        let a = attrs_of(
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOATIME,
            MsFlags::MS_NOEXEC,
        );
        assert_eq!(a.attr_set, attr::RDONLY | attr::NOSUID | attr::NOATIME);
        assert_eq!(a.attr_clr, attr::NOEXEC | attr::ATIME_MASK);
    }
}
