//! Shared helpers for the integration tests: fixture paths, test bundles
//! with their own rootfs copy, a runtime with its own temporary state root,
//! and leak checks. Every test runs as root (as CI does) and fails loudly
//! if it is not.
#![allow(dead_code)]

pub mod clients;
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

/// The host's cgroup hierarchies as the cgroup tests look things up: each
/// controller is v1 (its own mount) or v2 (the cgroup2 mount), per
/// controller, so one test checks the right file on a v1, v2 or hybrid host.
pub struct Cgroups {
    v1: Vec<(Vec<String>, PathBuf)>,
    v2: Option<PathBuf>,
    v2_controllers: Vec<String>,
}

impl Cgroups {
    pub fn host() -> Cgroups {
        let mounts = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
        let mut c = Cgroups {
            v1: Vec::new(),
            v2: None,
            v2_controllers: Vec::new(),
        };
        for line in mounts.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mp) = pre.split(' ').nth(4) else {
                continue;
            };
            let post: Vec<&str> = post.split(' ').collect();
            match post[0] {
                "cgroup2" if c.v2.is_none() => c.v2 = Some(PathBuf::from(mp)),
                "cgroup" => {
                    let cs = post[2]
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                        .map(str::to_string)
                        .collect();
                    c.v1.push((cs, PathBuf::from(mp)));
                }
                _ => {}
            }
        }
        if let Some(v2) = &c.v2 {
            c.v2_controllers = fs::read_to_string(v2.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
        }
        c
    }

    /// The cgroup2 mount, if any (on a hybrid host, next to the v1 ones).
    pub fn v2_mount(&self) -> Option<PathBuf> {
        self.v2.clone()
    }

    /// How many hierarchies a container gets a directory in.
    pub fn hierarchies(&self) -> usize {
        self.v1.len() + usize::from(self.v2.is_some())
    }

    /// Whether the host is pure cgroup v2.
    pub fn unified(&self) -> bool {
        self.v1.is_empty() && self.v2.is_some()
    }

    /// The mount holding `controller` for containers, and whether it is v2
    /// (devices and freezer are built into v2).
    pub fn mount(&self, controller: &str) -> Option<(PathBuf, bool)> {
        if let Some((_, mp)) = self
            .v1
            .iter()
            .find(|(cs, _)| cs.iter().any(|c| c == controller))
        {
            return Some((mp.clone(), false));
        }
        let v2 = self.v2.clone()?;
        let v2_name = match controller {
            "blkio" => "io",
            "cpuacct" => "cpu",
            other => other,
        };
        if matches!(controller, "devices" | "freezer")
            || self.v2_controllers.iter().any(|c| c == v2_name)
        {
            return Some((v2, true));
        }
        None
    }

    /// Whether `controller` is v2 here (panics if it is nowhere).
    pub fn is_v2(&self, controller: &str) -> bool {
        self.mount(controller)
            .unwrap_or_else(|| panic!("no {controller} controller on this host"))
            .1
    }

    /// The host directory of the cgroup at `path` ("/berth/ID") for `controller`.
    pub fn dir(&self, controller: &str, path: &str) -> PathBuf {
        let (mp, _) = self
            .mount(controller)
            .unwrap_or_else(|| panic!("no {controller} controller on this host"));
        mp.join(path.trim_start_matches('/'))
    }

    /// A file of the cgroup at `path`, trimmed.
    #[track_caller]
    pub fn read(&self, controller: &str, path: &str, file: &str) -> String {
        let p = self.dir(controller, path).join(file);
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// The same file as a container with its own cgroup namespace sees it
    /// under the fixture's /sys/fs/cgroup mount.
    pub fn inside(&self, controller: &str, file: &str) -> String {
        if self.unified() {
            return format!("/sys/fs/cgroup/{file}");
        }
        let (mp, _) = self
            .mount(controller)
            .unwrap_or_else(|| panic!("no {controller} controller on this host"));
        let name = mp
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("/sys/fs/cgroup/{name}/{file}")
    }

    /// Directories of the cgroup at `path` that exist, in any hierarchy.
    pub fn existing(&self, path: &str) -> Vec<PathBuf> {
        let rel = path.trim_start_matches('/');
        self.v1
            .iter()
            .map(|(_, mp)| mp.join(rel))
            .chain(self.v2.iter().map(|mp| mp.join(rel)))
            .filter(|d| d.exists())
            .collect()
    }
}

/// Waits until `f` holds, up to 10 s; panics with `what` otherwise.
#[track_caller]
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A detached container whose script reports to /out in its (writable)
/// rootfs; deleted (and checked gone from every hierarchy) by `finish`,
/// or deleted by the Runtime's Drop if the test fails first.
pub struct Detached {
    pub rt: Runtime,
    pub b: Bundle,
    pub id: String,
}

impl Detached {
    /// Runs `script` with `edit` applied to the config; the cgroup path is
    /// the default /berth/ID unless `edit` sets one.
    #[track_caller]
    pub fn start(name: &str, script: &str, edit: impl FnOnce(&mut Bundle)) -> Detached {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        b.config["root"]["readonly"] = false.into();
        b.sh(script);
        edit(&mut b);
        let id = id(name);
        ok(&rt.run_bundle("run", &b, &id, &["--detach"]));
        Detached { rt, b, id }
    }

    pub fn cgroup_path(&self) -> String {
        format!("/berth/{}", self.id)
    }

    pub fn pid(&self) -> i64 {
        self.rt.state(&self.id)["pid"].as_i64().unwrap_or(0)
    }

    /// What the script wrote to /out, once it has written something.
    #[track_caller]
    pub fn out(&self) -> String {
        let p = self.b.rootfs().join("out");
        wait_for("the container to write /out", || {
            fs::read_to_string(&p).is_ok_and(|s| s.ends_with('\n'))
        });
        fs::read_to_string(&p).unwrap_or_default()
    }

    /// Creates /go in the rootfs (scripts wait for it).
    pub fn go(&self) {
        fs::write(self.b.rootfs().join("go"), "").expect("write /go");
    }

    /// `berth-runtime ARGS… ID`.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.push(&self.id);
        self.rt.run(&all)
    }

    /// Deletes the container and checks nothing of it is left.
    #[track_caller]
    pub fn finish(self) {
        ok(&self.rt.run(&["delete", "--force", &self.id]));
        assert_gone(&self.rt, &self.id, &self.b, None);
        assert_eq!(
            Cgroups::host().existing(&format!("/berth/{}", self.id)),
            Vec::<PathBuf>::new(),
            "cgroups of {} left behind",
            self.id
        );
    }
}
