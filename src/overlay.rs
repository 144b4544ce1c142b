//! A container's root filesystem: an overlay of the image's layer
//! directories (read-only, highest first) with an upper and work directory
//! of its own.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mount overlay on {target}: {errno}")]
    Mount { target: PathBuf, errno: Errno },
    #[error("unmount {target}: {errno}")]
    Unmount { target: PathBuf, errno: Errno },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "overlay on {target}: the layer list does not fit in one mount option page ({len} bytes)"
    )]
    TooLong { target: PathBuf, len: usize },
}

pub type Result<T> = std::result::Result<T, Error>;

pub struct Overlay {
    /// Image layers, lowest first.
    pub layers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
    /// Mount with `volatile` (Linux 5.10+): no syncs of the upper layer,
    /// neither the container's fsyncs nor the syncfs of the whole upper
    /// filesystem that an unmount does (tens of ms while anything else
    /// writes to that disk). Only for a container whose upper layer is
    /// thrown away when it exits (`run --rm`), as podman does for `--rm`.
    pub volatile: bool,
}

/// The kernel copies mount data into one page.
const MAX_DATA: usize = 4095;

const VOLATILE: &str = ",volatile";

impl Overlay {
    /// The mount data. Layers are named relative to their common parent when
    /// the absolute form would not fit the page limit (the mount is then
    /// made with that parent as cwd).
    fn data(&self) -> (String, Option<PathBuf>) {
        let lower = |names: Vec<String>| names.join(":");
        let abs: Vec<String> = self
            .layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower(abs),
            self.upper.display(),
            self.work.display()
        );
        if data.len() + VOLATILE.len() <= MAX_DATA {
            return (data, None);
        }
        // Relative to the layers' common ancestor (e.g. ROOT/layers), the
        // names are about half as long.
        let Some(base) = common_ancestor(&self.layers) else {
            return (data, None);
        };
        let rel: Vec<String> = self
            .layers
            .iter()
            .rev()
            .filter_map(|p| {
                p.strip_prefix(&base)
                    .ok()
                    .map(|r| String::from_utf8_lossy(r.as_os_str().as_bytes()).into_owned())
            })
            .collect();
        (
            format!(
                "lowerdir={},upperdir={},workdir={}",
                lower(rel),
                self.upper.display(),
                self.work.display()
            ),
            Some(base),
        )
    }

    /// Makes the upper/work/target directories and mounts.
    pub fn mount(&self) -> Result<()> {
        for d in [&self.upper, &self.work, &self.target] {
            fs::create_dir_all(d).map_err(|source| Error::Io {
                op: "create",
                path: d.clone(),
                source,
            })?;
        }
        if self.layers.is_empty() {
            // An image with no layers: the upper directory alone is the root.
            return nix::mount::mount(
                Some(&self.upper),
                &self.target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|errno| Error::Mount {
                target: self.target.clone(),
                errno,
            });
        }
        let (mut data, cwd) = self.data();
        if self.volatile {
            data.push_str(VOLATILE);
            // A volatile mount leaves this marker, and the kernel refuses
            // the next mount while it is there (the upper layer may have
            // lost writes). The layer of a `--rm` container is disposable:
            // a second mount (a start after a crash) takes it as it is.
            let marker = self.work.join("work/incompat");
            match fs::remove_dir_all(&marker) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        op: "remove",
                        path: marker,
                        source,
                    });
                }
            }
        }
        if data.len() > MAX_DATA {
            return Err(Error::TooLong {
                target: self.target.clone(),
                len: data.len(),
            });
        }
        let mount = || {
            let m = |data: &str| {
                nix::mount::mount(
                    Some("overlay"),
                    &self.target,
                    Some("overlay"),
                    MsFlags::empty(),
                    Some(data),
                )
            };
            match m(&data) {
                // A kernel before 5.10 does not know `volatile`: a plain
                // mount is as correct, only slower to unmount.
                Err(Errno::EINVAL) if self.volatile => {
                    m(data.strip_suffix(VOLATILE).unwrap_or(&data))
                }
                r => r,
            }
        };
        let res = match cwd {
            None => mount(),
            Some(dir) => {
                // Relative lowerdirs resolve against our cwd at mount time.
                let old = std::env::current_dir().map_err(|source| Error::Io {
                    op: "getcwd",
                    path: dir.clone(),
                    source,
                })?;
                std::env::set_current_dir(&dir).map_err(|source| Error::Io {
                    op: "chdir",
                    path: dir.clone(),
                    source,
                })?;
                let r = mount();
                let _ = std::env::set_current_dir(old);
                r
            }
        };
        res.map_err(|errno| Error::Mount {
            target: self.target.clone(),
            errno,
        })
    }
}

fn common_ancestor(paths: &[PathBuf]) -> Option<PathBuf> {
    let first = paths.first()?;
    let mut base = first.parent()?.to_path_buf();
    while !paths.iter().all(|p| p.starts_with(&base) && p != &base) {
        base = base.parent()?.to_path_buf();
    }
    Some(base)
}

/// Whether something is mounted at `target` (from /proc/self/mountinfo).
pub fn is_mounted(target: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let t = target.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|mp| unescape(mp) == t))
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Unmounts `target` if mounted (lazily: a process may still hold a file).
pub fn unmount(target: &Path) -> Result<()> {
    while is_mounted(target) {
        match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
            Err(errno) => {
                return Err(Error::Unmount {
                    target: target.to_path_buf(),
                    errno,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_highest_first_and_shortens() {
        let o = Overlay {
            layers: vec!["/l/a".into(), "/l/b".into()],
            upper: "/c/u".into(),
            work: "/c/w".into(),
            target: "/c/r".into(),
            volatile: false,
        };
        assert_eq!(
            o.data(),
            (
                "lowerdir=/l/b:/l/a,upperdir=/c/u,workdir=/c/w".to_string(),
                None
            )
        );
        let long = Overlay {
            layers: (0..50)
                .map(|i| PathBuf::from(format!("/var/lib/berth/layers/{:064}/root", i)))
                .collect(),
            ..o
        };
        let (d, cwd) = long.data();
        assert_eq!(cwd.as_deref(), Some(Path::new("/var/lib/berth/layers")));
        assert!(d.starts_with(&format!("lowerdir={:064}/root:", 49)), "{d}");
    }
}
