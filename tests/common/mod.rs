//! Shared helpers for the integration tests: fixture paths, test bundles
//! with their own rootfs copy, a runtime with its own temporary state root,
//! and leak checks. Every test runs as root (as CI does) and fails loudly
//! if it is not.
#![allow(dead_code)]

pub mod engine;
pub mod leaks;
pub mod network;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create real containers and must run as root"
    );
}

pub fn fixtures() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-fixtures/build");
    assert!(
        p.join("bundle/config.json").exists(),
        "fixtures missing: run `make fixtures` first ({})",
        p.display()
    );
    p
}

/// A bundle in a temp dir: a copy of the fixture rootfs and a config.json
/// the test can edit.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    pub fn new() -> Bundle {
        require_root();
        let src = fixtures().join("bundle");
        let dir = tempfile::Builder::new()
            .prefix("berth-test-bundle.")
            .tempdir()
            .expect("temp dir");
        let st = Command::new("cp")
            .arg("-a")
            .arg(src.join("rootfs"))
            .arg(dir.path())
            .status()
            .expect("cp");
        assert!(st.success(), "copy the fixture rootfs");
        let config: Value =
            serde_json::from_slice(&fs::read(src.join("config.json")).expect("read config"))
                .expect("parse config");
        Bundle { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Sets process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        self
    }

    /// Runs a shell command line as the container's process.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn write(&self) {
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .expect("write config");
    }
}

/// berth-runtime with a private state root.
pub struct Runtime {
    pub root: tempfile::TempDir,
    pub leaks: std::cell::RefCell<leaks::Checker>,
}

impl Runtime {
    pub fn new() -> Runtime {
        require_root();
        let root = tempfile::Builder::new()
            .prefix("berth-test-root.")
            .tempdir()
            .expect("temp dir");
        let tag = root
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let scope = leaks::Scope {
            dirs: vec![root.path().to_path_buf()],
            files: vec![leaks::Files {
                dir: root.path().to_path_buf(),
                // Process files, pid files and logs the tests write there;
                // a container's state is a directory named by its ID.
                allow: vec!["*.json".into(), "*.pid".into()],
                deny: vec![],
            }],
            tag,
            ..Default::default()
        };
        Runtime {
            root,
            leaks: std::cell::RefCell::new(leaks::Checker::new(scope)),
        }
    }

    /// Every difference from the state root as it was made: files in it,
    /// mounts and fds naming it, its processes, and the cgroups of the
    /// containers this thread named with [`id`].
    pub fn leaks(&self) -> Vec<String> {
        let mut l = self.leaks.borrow_mut();
        l.scope.cgroups = ids_made_here()
            .iter()
            .map(|id| format!("{}/{id}", "berth"))
            .collect();
        l.leaks()
    }

    /// Deletes every container (`delete --force`), then fails the test on
    /// any leak.
    #[track_caller]
    pub fn assert_no_leaks(&self) {
        for id in self.ids() {
            let _ = self.run(&["delete", "--force", &id]);
        }
        let leaks = self.leaks();
        assert!(
            leaks.is_empty(),
            "runtime root {}: {} leak(s):\n  {}",
            self.root.path().display(),
            leaks.len(),
            leaks.join("\n  ")
        );
    }

    pub fn bin() -> &'static str {
        env!("CARGO_BIN_EXE_berth-runtime")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(Self::bin());
        c.arg("--root")
            .arg(self.root.path())
            .env(leaks::TAG_VAR, &self.leaks.borrow().scope.tag)
            .env_remove("BERTH_FAULT")
            .env_remove("BERTH_FAULT_TRACE");
        c
    }

    /// Runs a command to completion with stdin closed.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        output(c)
    }

    /// Runs a command with the bundle given by --bundle.
    pub fn run_bundle(&self, cmd: &str, bundle: &Bundle, id: &str, extra: &[&str]) -> Output {
        bundle.write();
        let mut c = self.cmd();
        c.arg(cmd)
            .arg("--bundle")
            .arg(bundle.path())
            .args(extra)
            .arg(id);
        output(c)
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]);
        assert!(
            out.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("state is JSON")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the container's status is `want`.
    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id} stayed {s}, wanted {want}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    pub fn ids(&self) -> Vec<String> {
        let out = self.run(&["list", "-q"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.run(&["delete", "--force", &id]);
        }
        if !std::thread::panicking() {
            let leaks = self.leaks();
            assert!(
                leaks.is_empty(),
                "runtime root {}: {} leak(s):\n  {}",
                self.root.path().display(),
                leaks.len(),
                leaks.join("\n  ")
            );
        }
    }
}

/// Runs `c` with stdout and stderr in files, not pipes: `create` hands its
/// stdio to the container, which would hold a pipe open as long as it runs.
pub fn output(mut c: Command) -> Output {
    use std::io::{Read, Seek};
    let mut out = tempfile::tempfile().expect("temp file");
    let mut err = tempfile::tempfile().expect("temp file");
    let status = c
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"))
        .status()
        .expect("spawn berth-runtime");
    let mut o = Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    out.rewind().expect("rewind");
    err.rewind().expect("rewind");
    out.read_to_end(&mut o.stdout).expect("read stdout");
    err.read_to_end(&mut o.stderr).expect("read stderr");
    o
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed ({}): {}{}",
        o.status,
        stderr(o),
        stdout(o)
    );
    stdout(o)
}

#[track_caller]
pub fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "command should have failed: {}",
        stdout(o)
    );
    let e = stderr(o);
    assert!(!e.trim().is_empty(), "a failure must say why on stderr");
    e
}

/// Every cgroup directory named `id` in any hierarchy (the default
/// cgroupsPath is /berth/<id>).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    cgroup_dirs_at(&format!("berth/{id}"))
}

/// The cgroup `rel` (from each hierarchy's root), where it exists.
pub fn cgroup_dirs_at(rel: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if !(post.starts_with("cgroup ") || post.starts_with("cgroup2 ")) {
            continue;
        }
        if let Some(mp) = pre.split(' ').nth(4) {
            let d = Path::new(mp).join(rel.trim_start_matches('/'));
            if d.exists() {
                out.push(d);
            }
        }
    }
    out
}

/// Mount points in our mount namespace under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.to_string_lossy().to_string();
    mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| mp.starts_with(&d))
        .map(str::to_string)
        .collect()
}

/// Asserts that nothing of container `id` is left: no state dir, no cgroup,
/// no mount under the bundle, no process with the pid it had.
#[track_caller]
pub fn assert_gone(rt: &Runtime, id: &str, bundle: &Bundle, pid: Option<i64>) {
    assert!(
        !rt.root.path().join(id).exists(),
        "state dir of {id} left behind"
    );
    assert_eq!(
        cgroup_dirs(id),
        Vec::<PathBuf>::new(),
        "cgroups of {id} left behind"
    );
    assert_eq!(
        mounts_under(bundle.path()),
        Vec::<String>::new(),
        "mounts of {id} left behind"
    );
    if let Some(pid) = pid {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "process {pid} of {id} still running: {stat}"
        );
    }
}

thread_local! {
    /// The IDs [`id`] made on this thread (each test runs on its own):
    /// the leak checker looks for their cgroups.
    static IDS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A container id unique to this test process and call: ids share one
/// cgroup namespace (/berth/<id>) across state roots, as with runc.
pub fn id(name: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("{name}-{}-{n}", std::process::id());
    IDS.with(|ids| ids.borrow_mut().push(id.clone()));
    id
}

pub fn ids_made_here() -> Vec<String> {
    IDS.with(|ids| ids.borrow().clone())
}

/// Removes a cgroup (relative to each hierarchy's root) and everything
/// under it, deepest first, in every hierarchy: cleanup after a failed
/// test, so the next run starts clean. Best effort.
pub fn remove_cgroup_tree(rel: &str) {
    fn rm(dir: &Path) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rm(&e.path());
            }
        }
        let _ = fs::remove_dir(dir);
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if (post.starts_with("cgroup ") || post.starts_with("cgroup2 "))
            && let Some(mp) = pre.split(' ').nth(4)
        {
            {
                let d = Path::new(mp).join(rel.trim_start_matches('/'));
                if d.is_dir() {
                    rm(&d);
                }
            }
        }
    }
}
