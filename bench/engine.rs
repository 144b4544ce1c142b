//! Section 2, the engine: `berth run --rm localhost/busybox true` with the image
//! loaded (overlay, cgroup, shim, cleanup) against crun running a ready
//! bundle and `podman run --rm` of the same image.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::Ctx;
use crate::cleanup;
use crate::measure::{Cmd, Samples, order};
use crate::podman::Podman;
use crate::report::{Cmp, Section, Unit};
use crate::runtimes;

pub const IMAGE: &str = "localhost/busybox:latest";

/// A berth engine with private roots (`BERTH_ROOT`, `BERTH_STATE`), which
/// removes its containers, mounts and directories when dropped.
pub struct Engine {
    prog: PathBuf,
    pub root: PathBuf,
    pub state: PathBuf,
}

impl Engine {
    pub fn new(ctx: &Ctx, tag: &str) -> Result<Engine> {
        let root = ctx.dir(&format!("{tag}-berth-root"))?;
        // The default network on a bridge of the bench's own, not the
        // host's berth0 (as the integration tests do); the engine deletes
        // it with its last container, the sweep if anything is left.
        let defs = root.join("networks/defs");
        std::fs::create_dir_all(&defs)?;
        std::fs::write(
            defs.join("bridge.json"),
            serde_json::json!({
                "name": "bridge",
                "id": format!("{:0<64}", ctx.prefix),
                "bridge": ctx.bridge(),
            })
            .to_string(),
        )?;
        Ok(Engine {
            prog: ctx.berth.clone(),
            root,
            state: ctx.state_dir(&format!("{tag}-berth-state"))?,
        })
    }

    pub fn cmd(&self) -> Cmd {
        Cmd::new(&self.prog)
            .env("BERTH_ROOT", &self.root)
            .env("BERTH_STATE", &self.state)
    }

    pub fn load_busybox(&self, ctx: &Ctx) -> Result<()> {
        self.cmd()
            .args(["load", "-q", "-i"])
            .arg(ctx.fixtures.join("busybox-oci.tar"))
            .output()
            .context("berth load")?;
        Ok(())
    }

    pub fn ids(&self) -> Vec<String> {
        self.cmd()
            .args(["ps", "-aq", "--no-trunc"])
            .output()
            .map(|o| o.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Removes every container, off the clock.
    pub fn remove_all(&self) {
        let ids = self.ids();
        for chunk in ids.chunks(100) {
            self.cmd().args(["rm", "-f"]).args(chunk).quiet();
        }
    }

    /// The shim processes of this engine: berth processes whose
    /// environment names our state dir.
    pub fn shim_pids(&self) -> Vec<i32> {
        let want = format!("BERTH_STATE={}", self.state.display());
        let exe = std::fs::canonicalize(&self.prog).unwrap_or_else(|_| self.prog.clone());
        pids_where(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe)
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.remove_all();
        cleanup::unmount_under(&self.root);
        cleanup::unmount_under(&self.state);
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// Pids of the processes for which `f` holds.
pub fn pids_where(f: impl Fn(i32) -> bool) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| f(*pid))
        .collect()
}

pub fn run(ctx: &Ctx) -> Result<Section> {
    let mut sec = Section::new(
        "engine",
        format!(
            "2. engine: run --rm {IMAGE} true, image loaded; {} iterations interleaved",
            ctx.iters
        ),
    );
    let eng = Engine::new(ctx, "eng")?;
    eng.load_busybox(ctx)?;
    let bundle = ctx.bundle("true", &["/bin/true"])?;
    let crun = runtimes::only(ctx, "eng", "crun")?;
    let podman = match Podman::new(ctx, "eng", None)
        .and_then(|p| p.load(&ctx.fixtures.join("busybox-oci.tar")).map(|()| p))
    {
        Ok(p) => Some(p),
        Err(e) => {
            sec.note(format!("podman left out: {e:#}"));
            None
        }
    };

    // Like for like: crun's bundle (runc spec) and podman (netns none) give
    // the container a network namespace with only lo, as --network none
    // does; the default bridge network (veth, address, NAT rules) is a row
    // of its own.
    let mut names: Vec<&str> = vec!["berth", "berth, bridge network"];
    let mut cmds: Vec<Box<dyn Fn(usize) -> Cmd>> = vec![
        Box::new(|_| {
            eng.cmd()
                .args(["run", "--rm", "--network", "none", IMAGE, "true"])
        }),
        Box::new(|_| eng.cmd().args(["run", "--rm", IMAGE, "true"])),
    ];
    if let Some(c) = &crun {
        names.push("crun (bare bundle)");
        let b: &Path = &bundle;
        cmds.push(Box::new(move |i| {
            c.cmd()
                .args(["run", "--bundle"])
                .arg(b)
                .arg(ctx.id("eng", i))
        }));
    }
    if let Some(p) = &podman {
        names.push("podman");
        cmds.push(Box::new(|_| p.cmd().args(["run", "--rm", IMAGE, "true"])));
    }
    let mut samples = vec![Samples::default(); names.len()];
    let warmup = 3;
    for i in 0..warmup + ctx.iters {
        for k in order(names.len(), i) {
            let d = cmds[k](i).time(&ctx.log)?;
            if i >= warmup {
                samples[k].push(d);
            }
        }
    }
    for (k, name) in names.iter().enumerate() {
        sec.row("run --rm true", name, Unit::Ms, samples[k].clone());
    }
    sec.note("berth: `run --rm --network none`: overlay mount of the image, cgroup, shim, exit status, removal; crun: `crun run` of a ready bundle (no image, no overlay, no shim); both with a new network namespace holding only lo");
    sec.note("berth, bridge network: the default network, on a bridge of the bench's own that the engine makes for the container and deletes after it (veth pair, address, nftables table)");
    if podman.is_some() {
        sec.note("podman: private storage and config under a temp dir, runtime runc (crun refuses the hybrid cgroups), cgroupfs, events to a file, netns none, nofile 20000");
    }
    sec.target_ratio(
        "berth run --rm <= 1.0x crun bare-bundle run",
        ("run --rm true", "berth"),
        ("run --rm true", "crun (bare bundle)"),
        Cmp::AtMost,
        1.0,
    );
    sec.target_ratio(
        "berth run --rm >= 10x faster than podman (ratio <= 0.1x)",
        ("run --rm true", "berth"),
        ("run --rm true", "podman"),
        Cmp::AtMost,
        0.1,
    );
    drop(cmds);
    Ok(sec)
}
