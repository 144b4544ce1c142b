//! Carrying out a resource plan ([`super::resources`]) on the live host:
//! `apply` at create, `update` on a running container.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::controller::{Controller, Dir, Host, Placement};
use super::devices::{attach, bpf};
use super::resources::{self, Check, Step, Write};
use super::{Cgroup, Error, Result, merge};

impl Cgroup {
    /// Enforces `r` (at create). The resources are kept in the cgroup
    /// record so that `update` can change some of them.
    pub fn apply(&mut self, r: &LinuxResources) -> Result<()> {
        {
            let host = Placement::new(self);
            let steps = resources::plan(r, &host)?;
            execute(&host, &steps)?;
        }
        self.resources = Some(r.clone());
        Ok(())
    }

    /// Changes the groups `patch` sets on a live container, keeping the
    /// rest as they are.
    pub fn update(&mut self, patch: &LinuxResources) -> Result<()> {
        let stored = self.resources.clone().unwrap_or_default();
        let merged = merge::merge(&stored, patch);
        let devices_changed = patch.devices().is_some() && patch.devices() != stored.devices();
        {
            let host = Placement::new(self);
            check_before_update(&host, &merged, patch)?;
            let steps = resources::plan_update(patch, &merged, devices_changed, &host)?;
            execute(&host, &steps)?;
        }
        self.resources = Some(merged);
        Ok(())
    }
}

/// memory.checkBeforeUpdate: refuse a new limit below what is in use,
/// rather than have the kernel reclaim or kill to get there.
fn check_before_update(
    host: &Placement<'_>,
    merged: &LinuxResources,
    patch: &LinuxResources,
) -> Result<()> {
    let Some(m) = merged.memory() else {
        return Ok(());
    };
    let Some(limit) = patch.memory().and_then(|p| p.limit()).filter(|l| *l > 0) else {
        return Ok(());
    };
    if m.check_before_update() != Some(true) {
        return Ok(());
    }
    let Some(dir) = host.place(Controller::Memory) else {
        return Ok(());
    };
    let file = match dir {
        Dir::V1(_) => "memory.usage_in_bytes",
        Dir::V2 => "memory.current",
    };
    let usage = host
        .read(dir, file)
        .and_then(|s| s.trim().parse::<u64>().ok());
    match usage {
        Some(u) if u > limit as u64 => Err(Error::Invalid {
            what: "linux.resources.memory.limit".into(),
            why: format!(
                "{limit} is below the current usage {u} ({file}; checkBeforeUpdate is set)"
            ),
        }),
        _ => Ok(()),
    }
}

/// The last file written, kept open: device rules are a dozen writes to
/// one or two files.
struct OpenFile {
    path: PathBuf,
    file: File,
}

fn write_value(open: &mut Option<OpenFile>, path: &Path, value: &str) -> std::io::Result<()> {
    if open.as_ref().is_none_or(|o| o.path != path) {
        let file = fs::OpenOptions::new().write(true).open(path)?;
        *open = Some(OpenFile {
            path: path.to_path_buf(),
            file,
        });
    }
    let Some(o) = open.as_mut() else {
        return Ok(());
    };
    // One write(2): a cgroup file takes each write as one value.
    let n = o.file.write(value.as_bytes())?;
    if n != value.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", value.len()),
        ));
    }
    Ok(())
}

fn write_error(w: &Write, path: &Path, source: std::io::Error) -> Error {
    Error::Write {
        value: w.value.clone(),
        path: path.to_path_buf(),
        field: w.field.clone(),
        err: source,
    }
}

fn execute(host: &Placement<'_>, steps: &[Step]) -> Result<()> {
    let mut open = None;
    let mut retry: Vec<(&Write, PathBuf)> = Vec::new();
    for step in steps {
        match step {
            Step::Write(w) => {
                let path = host
                    .file(w.dir, &w.file)
                    .ok_or_else(|| Error::Unsupported {
                        what: w.field.clone(),
                        why: format!("the container has no directory for {}", w.file),
                    })?;
                match write_value(&mut open, &path, &w.value) {
                    Ok(()) => verify(w, &path)?,
                    Err(e)
                        if w.check == Check::RetryLast
                            && e.raw_os_error() == Some(libc::EINVAL) =>
                    {
                        retry.push((w, path));
                    }
                    Err(e) => return Err(write_error(w, &path, e)),
                }
            }
            Step::RtAncestors {
                runtime,
                period,
                field,
            } => {
                let Some(dir) = host.path(Dir::V1(Controller::Cpu)) else {
                    continue;
                };
                raise_rt_ancestors(dir, *runtime, *period, field)?;
            }
            Step::DeviceFilter(policy) => {
                let Some(dir) = host.path(Dir::V2) else {
                    continue;
                };
                attach::replace(dir, &bpf::program(policy))?;
            }
        }
    }
    drop(open);
    for (w, path) in retry {
        let mut open = None;
        write_value(&mut open, &path, &w.value).map_err(|e| write_error(w, &path, e))?;
    }
    Ok(())
}

/// Some values the kernel takes without failing but clamps or ignores.
fn verify(w: &Write, path: &Path) -> Result<()> {
    if w.check != Check::ReadBack && w.check != Check::ReadBackPages {
        return Ok(());
    }
    let got = fs::read_to_string(path)
        .map_err(|source| Error::Io {
            op: "read",
            path: path.to_path_buf(),
            err: source,
        })?
        .trim()
        .to_string();
    let ok = if w.check == Check::ReadBackPages {
        // SAFETY: sysconf only reads a constant.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        match (w.value.parse::<u64>(), got.parse::<u64>()) {
            (Ok(want), Ok(got)) => got == want / page * page,
            _ => got == w.value,
        }
    } else {
        got == w.value
    };
    if ok {
        return Ok(());
    }
    Err(Error::Unsupported {
        what: w.field.clone(),
        why: format!(
            "the kernel took {} but {} reads {got}: it clamps or ignores this value",
            w.value,
            path.display()
        ),
    })
}

/// New v1 cgroups get no realtime budget, and the budgets of a cgroup's
/// children must fit in its own. Raise each ancestor (not the root's,
/// which is the host's) to what its other children hold plus what the
/// path down to the container needs, each scaled to the ancestor's period.
fn raise_rt_ancestors(dir: &Path, runtime: i64, period: u64, field: &str) -> Result<()> {
    let mut chain: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| a.join("cpu.rt_runtime_us").exists())
        .collect();
    chain.pop();
    // Bottom-up: what each ancestor must grant, as (runtime, period).
    let mut need = (runtime.max(0) as u128, u128::from(period.max(1)));
    let mut child = dir;
    let mut plan = Vec::new();
    for a in &chain {
        let their_period = read_i64(&a.join("cpu.rt_period_us"))?.max(1) as u128;
        let mut total = (need.0 * their_period).div_ceil(need.1);
        for sib in siblings(a, child) {
            let rt = read_i64(&sib.join("cpu.rt_runtime_us")).unwrap_or(0).max(0) as u128;
            let p = read_i64(&sib.join("cpu.rt_period_us")).unwrap_or(1).max(1) as u128;
            total += (rt * their_period).div_ceil(p);
        }
        plan.push((*a, total));
        need = (total, their_period);
        child = a;
    }
    for (a, total) in plan.into_iter().rev() {
        let rt_file = a.join("cpu.rt_runtime_us");
        let cur = read_i64(&rt_file)?;
        if cur >= 0 && (cur as u128) < total {
            let value = total.to_string();
            let mut open = None;
            write_value(&mut open, &rt_file, &value).map_err(|source| Error::Write {
                value,
                path: rt_file.clone(),
                field: format!("{field} (raising an ancestor's budget)"),
                err: source,
            })?;
        }
    }
    Ok(())
}

fn siblings<'a>(parent: &'a Path, child: &'a Path) -> impl Iterator<Item = PathBuf> + 'a {
    fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(move |p| p != child)
}

fn read_i64(p: &Path) -> Result<i64> {
    let text = fs::read_to_string(p).map_err(|source| Error::Io {
        op: "read",
        path: p.to_path_buf(),
        err: source,
    })?;
    text.trim().parse::<i64>().map_err(|_| Error::Io {
        op: "parse",
        path: p.to_path_buf(),
        err: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })
}
