//! The `berth` engine under test: a private engine root and state dir, the
//! busybox fixture image loaded, and cleanup that leaves nothing behind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{mounts_under, output, require_root};

pub const IMAGE: &str = "localhost/busybox:latest";

pub struct Berth {
    pub dir: tempfile::TempDir,
    /// This engine's default bridge: a name of its own, so tests running
    /// at once (each with its own engine root) do not share one.
    pub bridge: String,
}

impl Berth {
    /// A fresh engine with the fixture image loaded.
    pub fn new() -> Berth {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-test-engine.")
            .tempdir()
            .expect("temp dir");
        let mut rnd = [0u8; 5];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut rnd))
            .expect("random bytes");
        let tag: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let b = Berth {
            dir,
            bridge: format!("bt{tag}"),
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
            .env("BERTH_STATE", self.state());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        output(c)
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
        assert_eq!(
            mounts_under(self.dir.path()),
            Vec::<String>::new(),
            "mounts left behind"
        );
        for id in ids {
            assert_eq!(
                super::cgroup_dirs(id),
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
        if !std::thread::panicking() {
            self.assert_clean(&ids);
        }
        // Anything still mounted (a failed test) must not block removal.
        for m in mounts_under(self.dir.path()).iter().rev() {
            let _ = nix::mount::umount2(Path::new(m), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
