//! `berth stats [--no-stream] [CONTAINER…]`: CPU %, memory usage/limit and
//! pids, read from each container's cgroup.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use berth::cgroups::{Cgroup, HierarchyKind};
use berth::engine::record::Status;
use berth::engine::{Engine, units};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print once and exit
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    pub containers: Vec<String>,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn stat_field(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// (cpu nanoseconds, memory bytes, memory limit, pids)
fn sample(cg: &Cgroup) -> (u64, u64, Option<u64>, u64) {
    let (mut cpu, mut mem, mut limit, mut pids) = (0, 0, None, 0);
    for d in &cg.dirs {
        match &d.kind {
            HierarchyKind::V2 => {
                if let Some(u) = stat_field(&d.dir.join("cpu.stat"), "usage_usec ") {
                    cpu = cpu.max(u * 1000);
                }
                mem = mem.max(read_u64(&d.dir.join("memory.current")).unwrap_or(0));
                limit = limit.or(read_u64(&d.dir.join("memory.max")));
                pids = pids.max(read_u64(&d.dir.join("pids.current")).unwrap_or(0));
            }
            HierarchyKind::V1(cs) => {
                if cs.iter().any(|c| c == "cpuacct") {
                    cpu = cpu.max(read_u64(&d.dir.join("cpuacct.usage")).unwrap_or(0));
                }
                if cs.iter().any(|c| c == "memory") {
                    mem = read_u64(&d.dir.join("memory.usage_in_bytes")).unwrap_or(0);
                    limit =
                        read_u64(&d.dir.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
                }
                if cs.iter().any(|c| c == "pids") {
                    pids = read_u64(&d.dir.join("pids.current")).unwrap_or(0);
                }
            }
        }
    }
    (cpu, mem, limit, pids)
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let ids: Vec<String> = if args.containers.is_empty() {
        engine
            .containers
            .ids()?
            .into_iter()
            .filter(|id| engine.live_state(id).status == Status::Running)
            .collect()
    } else {
        args.containers
            .iter()
            .map(|c| engine.containers.resolve(c))
            .collect::<Result<_, _>>()?
    };
    let host_mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .unwrap_or(0)
        * 1024;
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    loop {
        let cgs: Vec<(String, Option<Cgroup>)> = ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    engine.runtime().root.read(id).ok().and_then(|r| r.cgroup),
                )
            })
            .collect();
        let first: Vec<_> = cgs.iter().map(|(_, c)| c.as_ref().map(sample)).collect();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        let dt = t0.elapsed().as_nanos() as f64;
        let mut rows = Vec::new();
        for ((id, cg), a) in cgs.iter().zip(first) {
            let name = engine
                .containers
                .read(id)
                .map(|r| r.name)
                .unwrap_or_default();
            let (cpu, mem, limit, pids) = match (cg.as_ref().map(sample), a) {
                (Some(b), Some(a)) => (
                    ((b.0.saturating_sub(a.0)) as f64 / dt * 100.0).min(100.0 * ncpu),
                    b.1,
                    b.2,
                    b.3,
                ),
                _ => (0.0, 0, None, 0),
            };
            let limit = limit.unwrap_or(host_mem);
            let pct = if limit > 0 {
                mem as f64 / limit as f64 * 100.0
            } else {
                0.0
            };
            rows.push([
                id[..12].to_string(),
                name,
                format!("{cpu:.2}%"),
                format!("{} / {}", units::human_size(mem), units::human_size(limit)),
                format!("{pct:.2}%"),
                pids.to_string(),
            ]);
        }
        super::ps::print_table(
            &[
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "PIDS",
            ],
            &rows,
        );
        if args.no_stream {
            return Ok(0);
        }
    }
}
