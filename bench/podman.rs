//! A podman with everything private under a temp dir: storage, run root,
//! libpod tmp dir, events log, networks. Configured as the brief says:
//! cgroupfs, events to a file, no network namespace setup (netns none),
//! nofile and nproc within what the container may get here (nofile 20000).
//! Its runtime is runc: crun 1.8 refuses this host's hybrid cgroups.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::Ctx;
use crate::cleanup;
use crate::measure::Cmd;

pub struct Podman {
    dir: PathBuf,
    /// runroot and libpod's tmp_dir, on the state tmpfs (as /run is).
    run: PathBuf,
}

impl Podman {
    pub fn new(ctx: &Ctx, tag: &str, insecure_registry: Option<&str>) -> Result<Podman> {
        if !crate::which("podman") {
            anyhow::bail!("podman is not installed (make bench installs it)");
        }
        let dir = ctx.dir(&format!("{tag}-podman"))?;
        // The runroot must be at most 50 characters: conmon's exit command
        // (`podman container cleanup --rm`, given `--runroot`) refuses a
        // longer one and exits 125, and `podman run --rm` then waits out
        // its 20 s conmon timeout on every run. Hence a short name, used
        // as the runroot itself.
        let run = ctx.state_dir(&format!("pm{tag}"))?;
        if run.as_os_str().len() > 50 {
            anyhow::bail!(
                "podman's runroot {} is longer than podman's limit of 50 characters: use a shorter --work",
                run.display()
            );
        }
        let p = |s: &str| dir.join(s).display().to_string();
        let r = |s: &str| run.join(s).display().to_string();
        // Podman's defaults are above what the container may get here: this
        // host's hard nofile is 20000, CAP_SYS_RESOURCE is not in our
        // bounding set (no raising hard limits), and podman caps its own
        // nproc at kernel.pid_max, which conmon and runc inherit.
        let hard = |r| {
            nix::sys::resource::getrlimit(r)
                .map(|(_, h)| h)
                .unwrap_or(1024)
        };
        let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(32768);
        let nofile = hard(nix::sys::resource::Resource::RLIMIT_NOFILE).min(20000);
        let nproc = hard(nix::sys::resource::Resource::RLIMIT_NPROC).min(pid_max);
        let conf = format!(
            r#"[containers]
netns = "none"
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
runtime = "runc"
tmp_dir = "{tmp}"

[network]
network_config_dir = "{networks}"
"#,
            events = p("events.log"),
            tmp = r("tmp"),
            networks = p("networks"),
        );
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
            run.display(),
            p("graphroot")
        );
        let mut registries = "unqualified-search-registries = []\n".to_string();
        if let Some(r) = insecure_registry {
            registries.push_str(&format!(
                "\n[[registry]]\nlocation = \"{r}\"\ninsecure = true\n"
            ));
        }
        // No static_dir: podman's exit command (`--root` given, no
        // `--static-dir`) would use graphroot/libpod, another database, and
        // every `run --rm` would wait 20 s for conmon (podman 4.3).
        std::fs::create_dir_all(dir.join("networks"))?;
        std::fs::create_dir_all(run.join("tmp"))?;
        std::fs::write(dir.join("containers.conf"), conf)?;
        std::fs::write(dir.join("storage.conf"), storage)?;
        std::fs::write(dir.join("registries.conf"), registries)?;
        std::fs::write(
            dir.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )?;
        Ok(Podman { dir, run })
    }

    pub fn cmd(&self) -> Cmd {
        Cmd::new("podman")
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
    }

    pub fn policy(&self) -> PathBuf {
        self.dir.join("policy.json")
    }

    pub fn load(&self, archive: &Path) -> Result<()> {
        self.cmd()
            .args(["load", "-q", "--signature-policy"])
            .arg(self.policy())
            .arg("-i")
            .arg(archive)
            .output()
            .context("podman load")?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.dir
    }

    /// Removes every container and image, off the clock.
    pub fn clear(&self) {
        self.cmd().args(["rm", "-af", "-t", "0"]).quiet();
        self.cmd().args(["rmi", "-af"]).quiet();
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.clear();
        self.cmd().args(["system", "reset", "-f"]).quiet();
        for d in [&self.dir, &self.run] {
            cleanup::unmount_under(d);
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
