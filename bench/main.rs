//! `make bench`: berth and berth-runtime side by side with runc, crun,
//! conmon, podman, GNU tar, pigz and umoci, on this machine, in one run.
//!
//! Contenders are interleaved run by run (the order rotating each round),
//! so load from anything else on the machine falls on all of them alike.
//! Millisecond things report the median and p95 of `--iters` runs (100 by
//! default); second-long things (unpack, pull, 200 containers) the median
//! of a few. Every peer row carries the ratio berth/peer of the medians.
//!
//! Sections (`--only`): lifecycle, exec, engine, scale, unpack, pull. Everything
//! the bench makes (containers of every runtime, mounts, cgroups, temp
//! dirs) is removed at the end, on failure and on ^C too.

mod cleanup;
mod crun_ns;
mod engine;
mod exec;
mod images;
mod lifecycle;
mod measure;
mod podman;
mod proc_mem;
mod pull;
mod report;
mod runtimes;
mod scale;
mod unpack;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;

use measure::Cmd;
use report::Section;

const SECTIONS: [&str; 6] = ["lifecycle", "exec", "engine", "scale", "unpack", "pull"];

#[derive(Parser, Debug)]
#[command(
    name = "berth-bench",
    about = "berth against runc, crun, conmon, podman, tar, pigz and umoci"
)]
struct Opts {
    /// A short run: 20 iterations, 50 containers, 2 unpack runs
    #[arg(long, env = "BENCH_QUICK")]
    quick: bool,
    /// Iterations of each millisecond measurement (default 100, quick 20)
    #[arg(long, env = "BENCH_ITERS")]
    iters: Option<usize>,
    /// Sections to run, comma-separated: lifecycle,exec,engine,scale,unpack,pull
    #[arg(long, env = "BENCH_ONLY", value_delimiter = ',')]
    only: Vec<String>,
    /// Containers per contender in the scale section (default 200, quick 50)
    #[arg(long, env = "BENCH_SCALE")]
    scale: Option<usize>,
    /// Rounds of the scale section (default 3, quick 1)
    #[arg(long, env = "BENCH_SCALE_ROUNDS")]
    scale_rounds: Option<usize>,
    /// Also start 1000 containers with the berth engine
    #[arg(long, env = "BENCH_1000")]
    thousand: bool,
    /// Runs of each unpack and pull (default 5, quick 2)
    #[arg(long, env = "BENCH_UNPACK_RUNS")]
    unpack_runs: Option<usize>,
    /// Where the built image layers are kept between runs
    #[arg(long, env = "BENCH_CACHE", default_value = "/var/cache/berth-bench")]
    cache: PathBuf,
    /// Parent of the bench's temporary directory (the disk the unpack
    /// writes to)
    #[arg(long, env = "BENCH_WORK", default_value = "/var/tmp")]
    work: PathBuf,
    /// The JSON results
    #[arg(long, env = "BENCH_OUT")]
    out: Option<PathBuf>,
    /// Directory holding berth and berth-runtime (default: this binary's)
    #[arg(long, env = "BENCH_BIN")]
    bin: Option<PathBuf>,
    /// The repository (fixtures under rootfs-fixtures/build)
    #[arg(long, env = "BENCH_REPO", default_value = env!("CARGO_MANIFEST_DIR"))]
    repo: PathBuf,
}

/// What every section needs.
pub struct Ctx {
    pub iters: usize,
    pub quick: bool,
    pub scale: usize,
    pub scale_rounds: usize,
    pub thousand: bool,
    pub unpack_runs: usize,
    pub berth: PathBuf,
    pub runtime: PathBuf,
    pub fixtures: PathBuf,
    pub cache: PathBuf,
    /// The temporary directory; everything the bench makes is under it.
    pub work: PathBuf,
    /// The tmpfs for runtime state, under `work`.
    pub run: PathBuf,
    /// Stderr of the command being timed, read when it fails.
    pub log: PathBuf,
    /// Container ids and names start with this, so leftovers are found.
    pub prefix: String,
    /// crun's private mount namespace, when the host is hybrid.
    pub crun_ns: Option<Rc<OwnedFd>>,
    runc_spec: serde_json::Value,
}

impl Ctx {
    /// A bundle running `args` over the fixture rootfs, with runc's
    /// default spec (`runc spec`) and the terminal off.
    pub fn bundle(&self, name: &str, args: &[&str]) -> Result<PathBuf> {
        let dir = self.work.join("bundles").join(name);
        std::fs::create_dir_all(&dir)?;
        let mut spec = self.runc_spec.clone();
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(args);
        spec["root"]["path"] = json!(self.fixtures.join("bundle/rootfs"));
        std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;
        Ok(dir)
    }

    /// A new directory under the work dir (on disk).
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        measure::fresh_dir(&self.work, name)
    }

    /// A new directory for runtime state (runtimes' `--root`, BERTH_STATE,
    /// podman's runroot): on a tmpfs, as /run is on most hosts (here /run
    /// is on the ext4 root, where every unlink of a file with data waits for
    /// a discard).
    pub fn state_dir(&self, name: &str) -> Result<PathBuf> {
        measure::fresh_dir(&self.run, name)
    }

    /// The bridge of the bench engines' default network (at most 15
    /// characters: `bb` and a pid, then `br`).
    pub fn bridge(&self) -> String {
        cleanup::bridge_name(&self.prefix)
    }

    pub fn id(&self, tag: &str, i: usize) -> String {
        format!("{}-{tag}-{i}", self.prefix)
    }
}

fn version(prog: &str, arg: &str) -> String {
    Cmd::new(prog)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| {
            o.lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "not installed".into())
}

fn machine() -> serde_json::Value {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": kernel.trim(),
        "loadavg": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "mem_total_kib": proc_mem::meminfo("MemTotal").unwrap_or(0),
        "versions": {
            "runc": version("runc", "--version"),
            "crun": version("crun", "--version"),
            "podman": version("podman", "--version"),
            "conmon": version("conmon", "--version"),
            "tar": version("tar", "--version"),
            "pigz": version("pigz", "--version"),
            "umoci": version("umoci", "--version"),
            "skopeo": version("skopeo", "--version"),
        },
    })
}

fn run() -> Result<bool> {
    let o = Opts::parse();
    if !nix::unistd::geteuid().is_root() {
        bail!("run as root (containers, mounts, cgroups)");
    }
    let only: Vec<&str> = if o.only.is_empty() {
        SECTIONS.to_vec()
    } else {
        for s in &o.only {
            if !SECTIONS.contains(&s.as_str()) {
                bail!("unknown section {s:?}; sections: {}", SECTIONS.join(","));
            }
        }
        SECTIONS
            .iter()
            .copied()
            .filter(|s| o.only.iter().any(|x| x == s))
            .collect()
    };
    let bin = match o.bin {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("this binary's directory")?
            .to_path_buf(),
    };
    let (berth, runtime) = (bin.join("berth"), bin.join("berth-runtime"));
    for b in [&berth, &runtime] {
        if !b.is_file() {
            bail!("{} is missing; run `make build`", b.display());
        }
    }
    let fixtures = o.repo.join("rootfs-fixtures/build");
    if !fixtures.join("bundle/rootfs").is_dir() {
        bail!("{} is missing; run `make fixtures`", fixtures.display());
    }
    std::fs::create_dir_all(&o.work)?;
    std::fs::create_dir_all(&o.cache)?;
    let work = tempdir(&o.work)?;
    let prefix = format!("bb{}", std::process::id());
    // Removes whatever the sections left, whatever happened.
    let _sweep = cleanup::Sweep::new(work.clone(), prefix.clone());

    // Before crun's namespace is made, so that it has this mount too.
    let run = work.join("run");
    std::fs::create_dir(&run)?;
    nix::mount::mount(
        Some("tmpfs"),
        &run,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0700,size=1g"),
    )
    .with_context(|| format!("mount a tmpfs on {}", run.display()))?;

    let spec_dir = work.join("runc-spec");
    std::fs::create_dir_all(&spec_dir)?;
    Cmd::new("runc")
        .arg("spec")
        .arg("--bundle")
        .arg(&spec_dir)
        .output()?;
    let runc_spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spec_dir.join("config.json"))?)?;
    let crun_ns = if crun_ns::host_is_hybrid() && which("crun") {
        Some(Rc::new(crun_ns::v1_only_namespace()?))
    } else {
        None
    };

    let q = o.quick;
    let ctx = Ctx {
        iters: o.iters.unwrap_or(if q { 20 } else { 100 }),
        quick: q,
        scale: o.scale.unwrap_or(if q { 50 } else { 200 }),
        scale_rounds: o.scale_rounds.unwrap_or(if q { 1 } else { 3 }),
        thousand: o.thousand,
        unpack_runs: o.unpack_runs.unwrap_or(if q { 2 } else { 5 }),
        berth,
        runtime,
        fixtures,
        cache: o.cache.clone(),
        log: work.join("stderr.log"),
        run,
        work: work.clone(),
        prefix,
        crun_ns,
        runc_spec,
    };
    let start = machine();
    println!(
        "berth bench: {} cores, load average {} at start{}",
        start["cores"],
        start["loadavg"].as_str().unwrap_or("?"),
        if q {
            ", --quick (short run: not the real table)"
        } else {
            ""
        }
    );
    println!("ratios are berth/peer of the medians: below 1.00x berth is faster or smaller");
    println!(
        "runtime state (--root of the runtimes, BERTH_STATE, podman's runroot) on a private tmpfs, as /run is on most hosts; images and container layers on {}",
        o.work.display()
    );
    if ctx.crun_ns.is_some() {
        println!(
            "crun: run in a private mount namespace whose /sys/fs/cgroup is a tmpfs with bind mounts of the v1 hierarchies only (crun 1.8 refuses this host's hybrid layout); host cgroups untouched"
        );
    }

    let mut sections: Vec<Section> = Vec::new();
    let mut failed = false;
    for name in only {
        eprintln!("bench: {name}...");
        let result = match name {
            "lifecycle" => lifecycle::run(&ctx),
            "exec" => exec::run(&ctx),
            "engine" => engine::run(&ctx),
            "scale" => scale::run(&ctx),
            "unpack" => unpack::run(&ctx),
            "pull" => pull::run(&ctx),
            _ => unreachable!("checked above"),
        };
        match result {
            Ok(s) => {
                print!("{}", s.render());
                sections.push(s);
            }
            Err(e) => {
                failed = true;
                eprintln!("bench: {name} failed: {e:#}");
                let mut s = Section::new(
                    SECTIONS
                        .iter()
                        .find(|s| **s == name)
                        .copied()
                        .unwrap_or("?"),
                    name,
                );
                s.note(format!("failed: {e:#}"));
                sections.push(s);
            }
        }
        measure::interrupted()?;
    }

    let end = machine();
    println!("\n== targets");
    for s in &sections {
        for t in &s.targets {
            println!("   {}", t.render());
        }
    }
    println!(
        "load average {} at start, {} at end, {} cores",
        start["loadavg"].as_str().unwrap_or("?"),
        end["loadavg"].as_str().unwrap_or("?"),
        end["cores"]
    );
    let out = o
        .out
        .unwrap_or_else(|| o.repo.join("bench/results/latest.json"));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let doc = json!({
        "date": chrono::Utc::now().to_rfc3339(),
        "quick": q,
        "iters": ctx.iters,
        "scale": ctx.scale,
        "machine_at_start": start,
        "loadavg_at_end": end["loadavg"],
        "sections": sections.iter().map(Section::json).collect::<Vec<_>>(),
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)
        .with_context(|| format!("write {}", out.display()))?;
    println!("results: {}", out.display());
    Ok(!failed)
}

pub fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

fn tempdir(parent: &Path) -> Result<PathBuf> {
    let base = parent.join(format!("berth-bench.{}", std::process::id()));
    measure::fresh_dir(
        parent,
        &base.file_name().unwrap_or_default().to_string_lossy(),
    )
}

fn main() -> ExitCode {
    measure::catch_signals();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
