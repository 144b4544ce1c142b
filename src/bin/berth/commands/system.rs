//! `berth system prune` and `berth info`.

use anyhow::Result;
use berth::engine::Engine;
use berth::engine::record::Status;
use clap::Subcommand;

use crate::Cli;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Remove stopped containers (and unused volumes with --volumes)
    Prune {
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(long)]
        volumes: bool,
    },
    /// What this host supports
    Info,
}

pub fn run(cli: &Cli, cmd: &Command) -> Result<i32> {
    match cmd {
        Command::Prune { force: _, volumes } => prune(cli, *volumes),
        Command::Info => info(cli),
    }
}

fn prune(cli: &Cli, volumes: bool) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    for id in engine.containers.ids()? {
        let st = engine.live_state(&id);
        if matches!(st.status, Status::Exited | Status::Created | Status::Dead) {
            match engine.remove(&id, false, true) {
                Ok(()) => println!("Deleted Container: {id}"),
                Err(e) => eprintln!("berth: {}", berth::logging::error_chain(&e)),
            }
        }
    }
    // Network leftovers of containers that are gone or whose shim died.
    for id in engine.reclaim_networks()? {
        println!("Reclaimed network of: {id}");
    }
    // Leftovers of a crash: runtime state without an engine record.
    let rt = engine.runtime();
    for st in rt.list().unwrap_or_default() {
        if engine.containers.read(&st.id).is_err() {
            let _ = rt.delete(&st.id, true);
        }
    }
    if volumes {
        let vols = engine.volumes();
        for v in vols.list()? {
            if engine.volume_users(&v.name)?.is_empty() {
                vols.remove(&v.name, &[])?;
                println!("Deleted Volume: {}", v.name);
            }
        }
    }
    Ok(0)
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub fn info(cli: &Cli) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let ids = engine.containers.ids()?;
    let states: Vec<Status> = ids.iter().map(|id| engine.live_state(id).status).collect();
    println!("Containers: {}", ids.len());
    println!(
        " Running: {}",
        states.iter().filter(|s| **s == Status::Running).count()
    );
    println!(
        " Paused: {}",
        states.iter().filter(|s| **s == Status::Paused).count()
    );
    println!(
        " Stopped: {}",
        states
            .iter()
            .filter(|s| matches!(s, Status::Exited | Status::Created))
            .count()
    );
    println!(
        "Images: {}",
        engine
            .images()
            .and_then(|s| Ok(s.list()?.len()))
            .unwrap_or(0)
    );
    println!("Engine root: {}", cli.root.display());
    println!("State dir: {}", cli.state.display());
    let uname = nix::sys::utsname::uname()?;
    println!(
        "Kernel: {} {}",
        uname.release().to_string_lossy(),
        uname.machine().to_string_lossy()
    );
    match berth::cgroups::Hierarchies::detect() {
        Ok(h) => {
            let layout = match h.layout() {
                berth::cgroups::Layout::Unified => "v2 (unified)",
                berth::cgroups::Layout::Legacy => "v1 (legacy)",
                berth::cgroups::Layout::Hybrid => "hybrid (v1 controllers plus a cgroup2 mount)",
            };
            println!("Cgroups: {layout}");
            for hier in h.all() {
                let what = match &hier.kind {
                    berth::cgroups::HierarchyKind::V1(cs) => cs.join(","),
                    berth::cgroups::HierarchyKind::V2 => format!(
                        "cgroup2: {}",
                        berth::cgroups::v2_controllers(&hier.mount_point).join(" ")
                    ),
                };
                println!("  {} {}", hier.mount_point.display(), what);
            }
        }
        Err(e) => println!("Cgroups: none usable ({e})"),
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    println!("Overlay filesystem: {}", yes(fs.contains("overlay")));
    let seccomp = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Seccomp:"));
    println!("Seccomp: {} (kernel)", yes(seccomp));
    let userns = std::path::Path::new("/proc/self/ns/user").exists();
    println!("User namespaces: {}", yes(userns));
    println!(
        "AppArmor: {}",
        yes(std::path::Path::new("/sys/kernel/security/apparmor").exists())
    );
    println!(
        "SELinux: {}",
        yes(std::path::Path::new("/sys/fs/selinux/enforce").exists())
    );
    println!(
        "Networking: bridge (default), none, host, container:NAME, user-defined bridges; nftables"
    );
    Ok(0)
}
