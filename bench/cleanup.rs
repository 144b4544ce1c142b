//! The last line of cleanup, run when the bench ends however it ends: each
//! section removes its own containers first (see `runtimes`, `engine`,
//! `podman`); this sweeps what could still be there: mounts under the work
//! dir, processes and cgroups named with the bench's prefix, the work dir.

use std::path::{Path, PathBuf};

pub struct Sweep {
    work: PathBuf,
    prefix: String,
    /// Podman's parent cgroups (`libpod_parent`) that were there before.
    libpod_before: Vec<PathBuf>,
}

/// Where podman with cgroupfs puts its containers' cgroups.
fn libpod_parents() -> Vec<PathBuf> {
    hierarchies()
        .into_iter()
        .map(|h| h.join("libpod_parent"))
        .filter(|p| p.is_dir())
        .collect()
}

impl Sweep {
    pub fn new(work: PathBuf, prefix: String) -> Sweep {
        Sweep {
            work,
            prefix,
            libpod_before: libpod_parents(),
        }
    }
}

/// The bench engines' default bridge, see `Ctx::bridge`.
pub fn bridge_name(prefix: &str) -> String {
    format!("{prefix}br")
}

/// The bridge and its nftables table (`inet berth_<bridge>`, as the engine
/// names it), if the engine left them.
fn remove_bridge(bridge: &str) {
    if std::path::Path::new("/sys/class/net").join(bridge).exists() {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", bridge])
            .status();
        eprintln!("bench: removed a leftover bridge {bridge}");
    }
    let table = format!("berth_{bridge}");
    let listed = std::process::Command::new("nft")
        .args(["list", "table", "inet", &table])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if listed {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", &table])
            .status();
        eprintln!("bench: removed a leftover nftables table {table}");
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        unmount_under(&self.work);
        remove_bridge(&bridge_name(&self.prefix));
        for h in hierarchies() {
            remove_cgroups(&h, &self.prefix, 0);
        }
        // Made by our podman runs (with its `conmon` child): removed if
        // empty, rmdir fails otherwise.
        for p in libpod_parents() {
            if !self.libpod_before.contains(&p) {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    for e in rd
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
                let _ = std::fs::remove_dir(&p);
            }
        }
        let _ = std::fs::remove_dir_all(&self.work);
        if self.work.exists() {
            eprintln!("bench: could not remove {}", self.work.display());
        }
    }
}

/// Every mount point under `dir` (as mountinfo escapes them), deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

fn unescape(s: &str) -> String {
    // mountinfo writes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn unmount_under(dir: &Path) {
    for m in mounts_under(dir) {
        if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("bench: unmount {}: {e}", m.display());
        }
    }
}

/// The mounted cgroup hierarchies (v1 controllers and the cgroup2 mount).
fn hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with("cgroup ") || t.starts_with("cgroup2 "))
        })
        .filter_map(|l| l.split(' ').nth(4).map(|p| PathBuf::from(unescape(p))))
        .collect()
}

/// Kills the processes of, and removes, every cgroup whose name contains
/// `prefix`, a few levels deep (runtimes put them at the top or under the
/// caller's cgroup).
fn remove_cgroups(dir: &Path, prefix: &str, depth: usize) {
    if depth > 4 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let p = e.path();
        if e.file_name().to_string_lossy().contains(prefix) {
            remove_tree(&p);
        } else {
            remove_cgroups(&p, prefix, depth + 1);
        }
    }
}

fn remove_tree(cg: &Path) {
    if let Ok(rd) = std::fs::read_dir(cg) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if std::fs::remove_dir(cg).is_ok() || !cg.exists() {
            eprintln!("bench: removed a leftover cgroup {}", cg.display());
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    eprintln!("bench: could not remove cgroup {}", cg.display());
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescape_mountinfo() {
        assert_eq!(super::unescape(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(super::unescape("/plain"), "/plain");
    }
}
