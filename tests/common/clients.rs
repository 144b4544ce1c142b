//! What the tests of berth-runtime under other engines' clients (containerd,
//! podman) share: a terminal for `-t` through script(1), cgroup and process
//! lookups for the leak checks, and waiting for asynchronous cleanup.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Polls `f` until it returns Some, for up to `secs` seconds; None then.
pub fn poll_until<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Quotes `s` for sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `cmd` (program and arguments) with a terminal as its stdio, through
/// script(1): `-t` clients want one. The exit status is the command's
/// (`-e`); the output is what the terminal showed, `\r\n` and all.
pub fn in_pty(cmd: &Command) -> Output {
    let mut line = sh_quote(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&sh_quote(&a.to_string_lossy()));
    }
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", &line, "/dev/null"]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    super::output(c)
}

/// The mount points of every cgroup hierarchy (v1 and v2).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            if !(post.starts_with("cgroup ") || post.starts_with("cgroup2 ")) {
                return None;
            }
            pre.split(' ').nth(4).map(PathBuf::from)
        })
        .collect()
}

/// `rel` (a cgroup path such as `/ns/id`) in every hierarchy that has it.
pub fn cgroups_at(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    cgroup_mounts()
        .into_iter()
        .map(|m| m.join(rel))
        .filter(|d| d.is_dir())
        .collect()
}

/// Cgroups named `name` anywhere under `parent` (a cgroup path), in every
/// hierarchy.
pub fn find_cgroups(parent: &str, name: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, name: &str, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(d).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name() == name {
                out.push(e.path());
            }
            walk(&e.path(), name, out);
        }
    }
    let mut out = Vec::new();
    for d in cgroups_at(parent) {
        walk(&d, name, &mut out);
    }
    out
}

/// Removes the cgroup `rel` (and its sub-cgroups) in every hierarchy, deepest
/// first. rmdir fails on a cgroup with processes, so a leftover process
/// shows as an error here. Returns what could not be removed.
pub fn remove_cgroups(rel: &str) -> Vec<String> {
    let mut left = Vec::new();
    for d in cgroups_at(rel) {
        remove_cgroup_tree(&d, &mut left);
    }
    left
}

fn remove_cgroup_tree(d: &Path, left: &mut Vec<String>) {
    if let Ok(entries) = fs::read_dir(d) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path(), left);
            }
        }
    }
    if let Err(e) = fs::remove_dir(d) {
        let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        left.push(format!("{}: {e} (processes: {procs:?})", d.display()));
    }
}

/// Pids of the processes whose command line contains `needle`.
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let me = std::process::id() as i32;
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Sends SIGKILL to `pid` and reaps it if it is our child.
pub fn kill_pid(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Fails the test, naming what to install, unless every tool is on PATH.
#[track_caller]
pub fn require_tools(tools: &[&str], package: &str) {
    for tool in tools {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "{tool} is missing: run `make deps` ({package})"
        );
    }
}

/// The trimmed content of the first of `names` found in `dirs` (a
/// container's cgroups: the file is where its controller lives, v1 or v2).
#[track_caller]
pub fn cgroup_value(dirs: &[PathBuf], names: &[&str]) -> String {
    let f = dirs
        .iter()
        .find_map(|d| names.iter().map(|n| d.join(n)).find(|f| f.exists()))
        .unwrap_or_else(|| panic!("none of {names:?} in {dirs:?}"));
    fs::read_to_string(f).unwrap().trim().to_string()
}
