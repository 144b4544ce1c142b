//! The `berth` engine under test: a private engine root and state dir, the
//! busybox fixture image loaded, and cleanup that leaves nothing behind.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::leaks::{Checker, Files, Scope, TAG_VAR};
use super::{mounts_under, output, require_root};

pub const IMAGE: &str = "localhost/busybox:latest";

/// What an engine keeps on purpose once its containers are gone, relative
/// to the test dir: store content, lock files, network definitions and the
/// (empty) directories of containers, names, volumes and the state dir.
pub const ENGINE_FURNITURE: &[&str] = &[
    "root",
    "root/containers",
    "root/names",
    "root/volumes",
    "root/image-users",
    "root/tmp",
    "root/bin/**",
    "root/locks/**",
    "root/networks/**",
    "root/blobs/**",
    "root/layers/**",
    "root/images/**",
    "root/repositories.json",
    // Where the engine made each --cgroup-parent, kept for the next start.
    "root/cgroup-parents/**",
    "state",
    "state/shims",
    "state/netns",
    "state/runtime",
    // Compiled seccomp programs, kept for the next container.
    "state/runtime/.seccomp-cache/**",
];

/// Never furniture: what a killed pull or load leaves.
pub const ENGINE_DENY: &[&str] = &["root/layers/.tmp-*/**", "root/tmp/*"];

pub struct Berth {
    pub dir: tempfile::TempDir,
    /// This engine's default bridge: a name of its own, so tests running
    /// at once (each with its own engine root) do not share one.
    pub bridge: String,
    /// Every container's cgroup is made under this (`--cgroup-parent`), so
    /// the leak checker finds this engine's cgroups and no one else's.
    pub cgroup_parent: String,
    /// Container IDs this engine printed or listed: their veths and rules
    /// must be gone at the end.
    pub seen: Mutex<BTreeSet<String>>,
    pub leaks: Mutex<Checker>,
}

impl Berth {
    /// A fresh engine with the fixture image loaded.
    pub fn new() -> Berth {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-test-engine.")
            .tempdir()
            .expect("temp dir");
        Berth::in_dir(dir)
    }

    /// A fresh engine whose root and state are on a tmpfs of `size` (as
    /// mount(8) reads it: `16m`), for tests that fill the disk. The tmpfs
    /// goes with the engine.
    pub fn on_tmpfs(size: &str) -> Berth {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-test-engine-full.")
            .tempdir()
            .expect("temp dir");
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size},mode=0755").as_str()),
        )
        .expect("mount a tmpfs for the engine");
        Berth::in_dir(dir)
    }

    fn in_dir(dir: tempfile::TempDir) -> Berth {
        let mut rnd = [0u8; 5];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut rnd))
            .expect("random bytes");
        let tag: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let cgroup_parent = format!("/berth-t-{tag}");
        let scope = Scope {
            dirs: vec![dir.path().to_path_buf()],
            files: vec![Files {
                dir: dir.path().to_path_buf(),
                allow: ENGINE_FURNITURE.iter().map(|s| s.to_string()).collect(),
                deny: ENGINE_DENY.iter().map(|s| s.to_string()).collect(),
            }],
            cgroups: vec![cgroup_parent.clone()],
            links: vec![format!("bt{tag}")],
            nft_tables: vec![format!("berth_bt{tag}")],
            nft_mentions: vec![],
            tag: format!("engine-{tag}"),
        };
        let b = Berth {
            dir,
            bridge: format!("bt{tag}"),
            cgroup_parent,
            seen: Mutex::new(BTreeSet::new()),
            leaks: Mutex::new(Checker::new(scope)),
        };
        let archive = super::fixtures().join("busybox-oci.tar");
        super::ok(&b.run(&["load", "-i", archive.to_str().unwrap()]));
        // The default network's definition (the engine makes the same with
        // bridge berth0 when there is none); its subnet is chosen free.
        let defs = b.root().join("networks/defs");
        std::fs::create_dir_all(&defs).expect("networks dir");
        std::fs::write(
            defs.join("bridge.json"),
            serde_json::json!({"name": "bridge", "id": format!("{tag}{}", "0".repeat(54)), "bridge": b.bridge})
                .to_string(),
        )
        .expect("write the default network");
        // The fixture image is the test's starting point, not its doing.
        b.checker().rebase();
        b
    }

    /// The bridges of this engine's networks (the default and any made by
    /// `network create`), whether or not they exist now.
    pub fn bridges(&self) -> Vec<String> {
        let mut out = vec![self.bridge.clone()];
        for e in std::fs::read_dir(self.root().join("networks/defs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path()).unwrap_or_default())
                    .unwrap_or_default();
            if let Some(b) = v["bridge"].as_str()
                && !out.iter().any(|o| o == b)
            {
                out.push(b.to_string());
            }
        }
        out
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.env("BERTH_ROOT", self.root())
            .env("BERTH_STATE", self.state())
            .env("BERTH_CGROUP_PARENT", &self.cgroup_parent)
            .env(TAG_VAR, self.checker().scope.tag.clone())
            .env_remove("BERTH_FAULT")
            .env_remove("BERTH_FAULT_TRACE");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        let out = output(c);
        self.saw(&out.stdout);
        out
    }

    /// Allows the test's own files beside the engine (`pattern` relative
    /// to the test dir, as [`Files`] reads it).
    pub fn allow(&self, pattern: &str) {
        if let Some(f) = self.checker().scope.files.first_mut() {
            f.allow.push(pattern.to_string());
        }
    }

    pub fn checker(&self) -> std::sync::MutexGuard<'_, Checker> {
        self.leaks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers the container IDs in a command's output.
    pub fn saw(&self, stdout: &[u8]) {
        let text = String::from_utf8_lossy(stdout);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for l in text.lines().map(str::trim) {
            if l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()) {
                seen.insert(l.to_string());
            }
        }
    }

    /// Every container this engine has or had that the test can know of:
    /// listed, printed, or still on a network.
    pub fn known_ids(&self) -> BTreeSet<String> {
        let mut ids = self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        ids.extend(self.ids());
        for e in std::fs::read_dir(self.state().join("netns"))
            .into_iter()
            .flatten()
            .flatten()
        {
            ids.insert(e.file_name().to_string_lossy().into_owned());
        }
        let st: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.root().join("networks/state.json")).unwrap_or_default(),
        )
        .unwrap_or_default();
        if let Some(m) = st["attachments"].as_object() {
            ids.extend(m.keys().cloned());
        }
        ids.retain(|i| i.len() == 64);
        ids
    }

    /// Every difference from the engine as the test found it (see
    /// [`Checker`]), once its containers are removed. Named volumes the
    /// test made are its data, not leaks: they go first.
    pub fn leaks(&self) -> Vec<String> {
        let ids = self.known_ids();
        {
            let mut l = self.checker();
            l.scope.links = self.bridges();
            l.scope
                .links
                .extend(ids.iter().map(|id| super::network::veth_of(id)));
            l.scope.nft_tables = self
                .bridges()
                .iter()
                .map(|b| format!("berth_{}", b.replace('-', "_")))
                .collect();
            l.scope.nft_mentions = ids.iter().cloned().collect();
        }
        let mut out = self.checker().leaks();
        let st: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.root().join("networks/state.json")).unwrap_or_default(),
        )
        .unwrap_or_default();
        if let Some(m) = st["attachments"].as_object()
            && !m.is_empty()
        {
            out.push(format!(
                "network attachments left in state.json: {:?}",
                m.keys().collect::<Vec<_>>()
            ));
        }
        out
    }

    /// Removes every container (`rm -f -v`) and named volume, then fails
    /// the test on any leak.
    #[track_caller]
    pub fn assert_no_leaks(&self) {
        for id in self.ids() {
            let out = self.run(&["rm", "-f", "-v", &id]);
            assert!(
                out.status.success(),
                "rm -f -v {id}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.remove_named_volumes();
        let leaks = self.leaks();
        assert!(
            leaks.is_empty(),
            "engine {}: {} leak(s):\n  {}",
            self.dir.path().display(),
            leaks.len(),
            leaks.join("\n  ")
        );
    }

    fn remove_named_volumes(&self) {
        let out = self.run(&["volume", "ls", "-q"]);
        for v in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
            // Anonymous volumes (IDs) are the engine's to remove.
            let anonymous = v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit());
            if !v.is_empty() && !anonymous {
                let _ = self.run(&["volume", "rm", v]);
            }
        }
    }

    /// `berth inspect NAME` as JSON (the first object).
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = super::ok(&self.run(&["inspect", name]));
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect prints JSON");
        v[0].clone()
    }

    pub fn status(&self, name: &str) -> String {
        self.inspect(name)["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn ids(&self) -> Vec<String> {
        let out = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Nothing of the engine's containers is left on the host: mounts under
    /// the root, cgroups, shims and container processes.
    pub fn assert_clean(&self, ids: &[String]) {
        let dir = self.dir.path().display().to_string();
        let mounts: Vec<String> = mounts_under(self.dir.path())
            .into_iter()
            .filter(|m| *m != dir)
            .collect();
        assert_eq!(mounts, Vec::<String>::new(), "mounts left behind");
        for id in ids {
            assert_eq!(
                super::cgroup_dirs_at(&format!("{}/{id}", self.cgroup_parent)),
                Vec::<PathBuf>::new(),
                "cgroups of {id} left behind"
            );
        }
        let links = super::network::links();
        let ruleset = super::network::ruleset();
        for br in self.bridges() {
            assert!(!links.contains(&br), "bridge {br} left behind: {links:?}");
            let table = format!("berth_{}", br.replace('-', "_"));
            assert!(
                !ruleset.contains(&table),
                "nft table {table} left behind:\n{ruleset}"
            );
        }
        for id in ids {
            super::network::assert_no_trace(id);
        }
        let root = self.root().display().to_string();
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let environ = std::fs::read(p.path().join("environ")).unwrap_or_default();
            let env = String::from_utf8_lossy(&environ);
            let is_shim = env.contains(&format!("BERTH_ROOT={root}")) && !cmdline.is_empty();
            assert!(
                !is_shim || p.file_name() == std::process::id().to_string().as_str(),
                "a process of this engine is still running: {:?}",
                String::from_utf8_lossy(&cmdline)
            );
        }
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let ids = self.ids();
        for id in &ids {
            let _ = self.run(&["rm", "-f", "-v", id]);
        }
        self.remove_named_volumes();
        // Checked before the cleanup below, reported after it: a failed
        // check must not leave the mounts and cgroups it found.
        let verdict = (!std::thread::panicking()).then(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.assert_clean(&ids);
                self.leaks()
            }))
        });
        // Anything still mounted (a failed test) must not block removal;
        // the engine's own tmpfs (`on_tmpfs`) goes last.
        for m in mounts_under(self.dir.path()).iter().rev() {
            let _ = nix::mount::umount2(Path::new(m), nix::mount::MntFlags::MNT_DETACH);
        }
        super::remove_cgroup_tree(&self.cgroup_parent);
        match verdict {
            None => {}
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            Some(Ok(leaks)) => assert!(
                leaks.is_empty(),
                "engine {}: {} leak(s):\n  {}",
                self.dir.path().display(),
                leaks.len(),
                leaks.join("\n  ")
            ),
        }
    }
}
