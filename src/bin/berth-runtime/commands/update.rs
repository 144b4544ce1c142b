//! `update`: runc's flags, or `-r FILE|-` with the LinuxResources JSON
//! containerd and podman send.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::Global;

#[derive(clap::Args, Default)]
pub struct Args {
    /// File with the resources as LinuxResources JSON, or - for stdin
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (k, m, g suffixes; -1 for none)
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation (soft limit) in bytes
    #[arg(
        long = "memory-reservation",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub memory_reservation: Option<String>,
    /// Memory + swap limit in bytes (-1 for unlimited swap)
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit (obsolete; cgroup v1 before Linux 5.16 only)
    #[arg(
        long = "kernel-memory",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer limit (obsolete; cgroup v1 only)
    #[arg(
        long = "kernel-memory-tcp",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", alias = "cpu-shares", value_name = "N")]
    pub cpu_share: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1 for none)
    #[arg(long = "cpu-quota", value_name = "USECS", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period", value_name = "USECS")]
    pub cpu_period: Option<u64>,
    /// CPU CFS burst in microseconds
    #[arg(long = "cpu-burst", value_name = "USECS")]
    pub cpu_burst: Option<u64>,
    /// Realtime runtime in microseconds per realtime period
    #[arg(
        long = "cpu-rt-runtime",
        value_name = "USECS",
        allow_hyphen_values = true
    )]
    pub cpu_rt_runtime: Option<i64>,
    /// Realtime period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "USECS")]
    pub cpu_rt_period: Option<u64>,
    /// CPUs the container may run on (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1 for none)
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block I/O weight, 10 to 1000
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// The container id
    pub id: String,
}

pub fn run(g: &Global, a: Args) -> Result<u8> {
    let patch = resources(&a)?;
    g.runtime()?.update(&a.id, &patch)?;
    Ok(0)
}

fn resources(a: &Args) -> Result<LinuxResources> {
    let flags_given = a.memory.is_some()
        || a.memory_reservation.is_some()
        || a.memory_swap.is_some()
        || a.kernel_memory.is_some()
        || a.kernel_memory_tcp.is_some()
        || a.cpu_share.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpu_burst.is_some()
        || a.cpu_rt_runtime.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
        || a.pids_limit.is_some()
        || a.blkio_weight.is_some();
    if let Some(file) = &a.resources {
        // runc ignores the flags then; saying so beats dropping them.
        if flags_given {
            bail!("--resources cannot be combined with other resource flags");
        }
        let text = if file.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("read resources from stdin")?;
            s
        } else {
            std::fs::read_to_string(file)
                .with_context(|| format!("read resources from {}", file.display()))?
        };
        let where_ = if file.as_os_str() == "-" {
            "stdin".to_string()
        } else {
            file.display().to_string()
        };
        return serde_json::from_str(&text)
            .with_context(|| format!("resources in {where_} are not LinuxResources JSON"));
    }
    if !flags_given {
        bail!("nothing to update: give resource flags or --resources FILE");
    }
    let mut r = LinuxResources::default();
    let bytes = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| parse_bytes(s).with_context(|| format!("invalid value for --{flag}")))
            .transpose()
    };
    let limit = bytes("memory", &a.memory)?;
    let reservation = bytes("memory-reservation", &a.memory_reservation)?;
    let swap = bytes("memory-swap", &a.memory_swap)?;
    let kernel = bytes("kernel-memory", &a.kernel_memory)?;
    let kernel_tcp = bytes("kernel-memory-tcp", &a.kernel_memory_tcp)?;
    if limit.is_some()
        || reservation.is_some()
        || swap.is_some()
        || kernel.is_some()
        || kernel_tcp.is_some()
    {
        let mut m = LinuxMemory::default();
        m.set_limit(limit)
            .set_reservation(reservation)
            .set_swap(swap)
            .set_kernel_tcp(kernel_tcp);
        #[allow(deprecated)]
        m.set_kernel(kernel);
        r.set_memory(Some(m));
    }
    if a.cpu_share.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpu_burst.is_some()
        || a.cpu_rt_runtime.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let mut c = LinuxCpu::default();
        c.set_shares(a.cpu_share)
            .set_quota(a.cpu_quota)
            .set_period(a.cpu_period)
            .set_burst(a.cpu_burst)
            .set_realtime_runtime(a.cpu_rt_runtime)
            .set_realtime_period(a.cpu_rt_period)
            .set_cpus(a.cpuset_cpus.clone())
            .set_mems(a.cpuset_mems.clone());
        r.set_cpu(Some(c));
    }
    if let Some(n) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(n);
        r.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        if !(10..=1000).contains(&w) {
            bail!("invalid value for --blkio-weight: {w} is outside 10-1000");
        }
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// A size as runc takes it (docker's RAMInBytes): a number with an
/// optional binary unit, b k m g t p, optionally followed by b or ib, any
/// case ("512m", "1.5g", "2GiB"); -1 for unlimited.
pub fn parse_bytes(s: &str) -> Result<i64> {
    let s = s.trim();
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .with_context(|| format!("{s:?} is not a size such as 512m or 1g"))?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("{s:?} has an unknown unit (use b, k, m, g, t or p)"),
    };
    let v = n * mult;
    if v > i64::MAX as f64 {
        bail!("{s:?} is too large");
    }
    Ok(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_runc() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("64kb").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert_eq!(parse_bytes("10b").unwrap(), 10);
        for bad in ["", "m", "1x", "-2", "12 parsecs"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_become_resources() {
        let a = Args {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpu_quota: Some(-1),
            pids_limit: Some(20),
            id: "x".into(),
            ..Default::default()
        };
        let r = resources(&a).unwrap();
        let m = r.memory().unwrap();
        assert_eq!(
            (m.limit(), m.swap(), m.reservation()),
            (Some(64 << 20), Some(-1), None)
        );
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(-1));
        assert_eq!(r.pids().unwrap().limit(), 20);
        assert!(r.block_io().is_none());
        let e = resources(&Args {
            blkio_weight: Some(5),
            ..Default::default()
        });
        assert!(e.is_err());
        assert!(resources(&Args::default()).is_err(), "nothing to do");
    }
}
