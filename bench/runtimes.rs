//! The OCI runtimes under test, each with a private `--root` (state dir)
//! so `list` shows only the bench's containers, and each deleting every
//! container left in it when dropped.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::Ctx;
use crate::measure::Cmd;

pub struct Runtime {
    pub name: &'static str,
    prog: PathBuf,
    root: PathBuf,
    ns: Option<Rc<OwnedFd>>,
}

impl Runtime {
    pub fn cmd(&self) -> Cmd {
        Cmd::new(&self.prog)
            .arg("--root")
            .arg(&self.root)
            .in_mntns(self.ns.clone())
    }

    /// The ids in the state dir: runc, crun and berth-runtime keep one
    /// directory per container.
    pub fn ids(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut v: Vec<String> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    pub fn delete_all(&self) {
        for id in self.ids() {
            self.cmd().args(["delete", "--force", &id]).quiet();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.delete_all();
        let left = self.ids();
        if !left.is_empty() {
            eprintln!("bench: {} could not delete {}", self.name, left.join(" "));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// berth-runtime, runc and crun (those installed), berth-runtime first.
pub fn all(ctx: &Ctx, tag: &str) -> Result<Vec<Runtime>> {
    let mut v = Vec::new();
    let mut add = |name: &'static str, prog: PathBuf, ns: Option<Rc<OwnedFd>>| -> Result<()> {
        let root = ctx.state_dir(&format!("{tag}-{name}-root"))?;
        v.push(Runtime {
            name,
            prog,
            root,
            ns,
        });
        Ok(())
    };
    add("berth-runtime", ctx.runtime.clone(), None)?;
    if crate::which("runc") {
        add("runc", "runc".into(), None)?;
    }
    if crate::which("crun") {
        add("crun", "crun".into(), ctx.crun_ns.clone())?;
    }
    Ok(v)
}

pub fn only(ctx: &Ctx, tag: &str, name: &str) -> Result<Option<Runtime>> {
    Ok(all(ctx, tag)?.into_iter().find(|r| r.name == name))
}

/// Waits (off the clock) until `pid` has exited: gone, or a zombie not yet
/// reaped by whoever inherited it (runtimes call that stopped too).
pub fn wait_exited(pid: i32, limit: Duration) -> bool {
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        match std::fs::read_to_string(&stat) {
            Err(_) => return true,
            Ok(s) => {
                let state = s
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next());
                if state == Some("Z") || state == Some("X") {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

pub fn read_pid(path: &Path) -> Result<i32> {
    Ok(std::fs::read_to_string(path)?.trim().parse()?)
}
