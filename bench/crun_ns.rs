//! crun 1.8 refuses this host's hybrid cgroup layout (v1 controllers plus a
//! cgroup2 at /sys/fs/cgroup/unified holding only hugetlb). It is run in a
//! private mount namespace whose /sys/fs/cgroup is a tmpfs with bind mounts
//! of the v1 hierarchies only, so it sees legacy v1. Host cgroups are never
//! remounted: the binds show the same hierarchies, and the tmpfs exists only
//! in that namespace.
//!
//! A throwaway `sleep` builds the namespace before it execs; we keep an fd
//! to it (which keeps it alive) and kill the sleep. Each crun is then
//! started with `setns` into it, a microsecond in the child: crun's own
//! time is what is measured, not an `unshare` wrapper's.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

const CGROUP: &str = "/sys/fs/cgroup";

/// Whether /sys/fs/cgroup is a hybrid layout (a tmpfs with a cgroup2
/// mount beside the v1 hierarchies), which crun 1.8 refuses.
pub fn host_is_hybrid() -> bool {
    let fs = rustix::fs::statfs(CGROUP).ok();
    let tmpfs = fs.is_some_and(|s| s.f_type == libc::TMPFS_MAGIC);
    let unified = rustix::fs::statfs(Path::new(CGROUP).join("unified"))
        .is_ok_and(|s| s.f_type == libc::CGROUP2_SUPER_MAGIC);
    tmpfs && unified
}

/// One entry of the private /sys/fs/cgroup: a bind of a v1 hierarchy (its
/// name, its mount point), or a symlink (`cpu -> cpu,cpuacct` on most
/// distributions).
enum Entry {
    Bind(CString, CString),
    Symlink(CString, CString),
}

fn cstr(b: &[u8]) -> Result<CString> {
    CString::new(b).context("a NUL in a cgroup path")
}

pub fn v1_only_namespace() -> Result<OwnedFd> {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(CGROUP).with_context(|| format!("read {CGROUP}"))? {
        let e = e?;
        let name = e.file_name();
        let dst = Path::new(CGROUP).join(&name);
        let ft = e.file_type()?;
        if ft.is_symlink() {
            let target = std::fs::read_link(e.path())?;
            entries.push(Entry::Symlink(
                cstr(target.as_os_str().as_bytes())?,
                cstr(dst.as_os_str().as_bytes())?,
            ));
            continue;
        }
        let magic = rustix::fs::statfs(&dst).map(|s| s.f_type).unwrap_or(0);
        if magic != libc::CGROUP_SUPER_MAGIC {
            // The cgroup2 mount (and anything else): left out.
            continue;
        }
        entries.push(Entry::Bind(
            cstr(name.as_bytes())?,
            cstr(dst.as_os_str().as_bytes())?,
        ));
    }
    if !entries.iter().any(|e| matches!(e, Entry::Bind(..))) {
        bail!("no cgroup v1 hierarchy under {CGROUP}");
    }

    let mut holder = Command::new("sleep");
    holder
        .arg("600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the child is a fork of this single-threaded process; it only
    // makes syscalls on data prepared above, then execs.
    unsafe {
        holder.pre_exec(move || build_in_child(&entries));
    }
    let mut child = holder
        .spawn()
        .context("build crun's private mount namespace (unshare, tmpfs, binds)")?;
    // spawn returned: the child exec'd, so the namespace is complete.
    let ns = File::open(format!("/proc/{}/ns/mnt", child.id()))
        .context("open the private mount namespace")?;
    let _ = child.kill();
    let _ = child.wait();
    Ok(ns.into())
}

fn build_in_child(entries: &[Entry]) -> std::io::Result<()> {
    use std::io::Error;
    fn check(r: libc::c_int) -> std::io::Result<()> {
        if r < 0 {
            Err(Error::last_os_error())
        } else {
            Ok(())
        }
    }
    // SAFETY (whole function): plain syscalls on NUL-terminated strings
    // owned by `entries` and on string literals.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        // The hierarchies are reached through this fd once the tmpfs hides
        // them. Opened here: a bind source must be in our (new) namespace.
        let dir = libc::open(
            c"/sys/fs/cgroup".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        check(dir)?;
        check(libc::mount(
            c"tmpfs".as_ptr(),
            c"/sys/fs/cgroup".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"mode=755".as_ptr().cast(),
        ))?;
        for e in entries {
            match e {
                Entry::Symlink(target, dst) => check(libc::symlink(target.as_ptr(), dst.as_ptr()))?,
                Entry::Bind(name, dst) => {
                    check(libc::mkdir(dst.as_ptr(), 0o555))?;
                    // Allocating is fine: this process is a fork of a
                    // single-threaded one.
                    let src = format!("/proc/self/fd/{dir}/{}", name.to_string_lossy());
                    let src =
                        CString::new(src).map_err(|_| Error::from_raw_os_error(libc::EINVAL))?;
                    check(libc::mount(
                        src.as_ptr(),
                        dst.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ))?;
                }
            }
        }
        // Read-only, as the host's tmpfs is.
        check(libc::mount(
            std::ptr::null(),
            c"/sys/fs/cgroup".as_ptr(),
            std::ptr::null(),
            libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ))?;
    }
    Ok(())
}
