//! Usage statistics in runc's `events` shape (runc/types/events.go), read
//! from whichever hierarchy holds each controller. Parsers are pure and
//! unit-tested; [`Cgroup::stats`] does the reading.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::Cgroup;
use super::controller::{Controller, Dir, Placement};
use super::convert::parse_limit;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct IntelRdt {}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct MemoryEntry {
    /// Bytes; u64::MAX when unlimited, as runc reports it.
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Clone)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

// ---- parsers -------------------------------------------------------------

/// "key value" lines (memory.stat, cpu.stat, memory.events, cpuacct.stat).
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Space-separated numbers (cpuacct.usage_percpu).
pub fn parse_numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// A cpu or node list: "0-3,5,7-8".
pub fn parse_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(n) = part.parse() {
                    out.push(n);
                }
            }
        }
    }
    out
}

fn parse_dev(dev: &str) -> Option<(u64, u64)> {
    let (a, b) = dev.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// v1 blkio: "8:0 Read 4096" lines; the trailing "Total N" is skipped.
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (major, minor) = parse_dev(f[0])?;
            Some(BlkioEntry {
                major,
                minor,
                op: f[1].to_string(),
                value: f[2].parse().ok()?,
            })
        })
        .collect()
}

/// v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" →
/// (bytes, ios) entries with v1's op names.
pub fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((major, minor)) = f.next().and_then(parse_dev) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

// ---- reading -------------------------------------------------------------

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

fn read_u64(dir: &Path, file: &str) -> u64 {
    read(dir, file).and_then(|s| parse_limit(&s)).unwrap_or(0)
}

/// USER_HZ: what cpuacct.stat counts in.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

impl Cgroup {
    /// The container's usage now. Controllers this host lacks read as zero.
    pub fn stats(&self) -> Stats {
        let host = Placement::new(self);
        let mut s = Stats::default();
        let place = |c: Controller| {
            use super::controller::Host;
            host.place(c).and_then(|d| host.path(d).map(|p| (d, p)))
        };
        if let Some((dir, p)) = place(Controller::Cpuacct) {
            cpu_usage(&mut s.cpu, dir, p);
        }
        if let Some((dir, p)) = place(Controller::Cpu) {
            // Throttling is the cpu controller's (cpu.stat in both).
            let st = parse_flat_keyed(&read(p, "cpu.stat").unwrap_or_default());
            let g = |k: &str| st.get(k).copied().unwrap_or(0);
            s.cpu.throttling = match dir {
                Dir::V1(_) => Throttling {
                    periods: g("nr_periods"),
                    throttled_periods: g("nr_throttled"),
                    throttled_time: g("throttled_time"),
                },
                Dir::V2 => Throttling {
                    periods: g("nr_periods"),
                    throttled_periods: g("nr_throttled"),
                    throttled_time: g("throttled_usec") * 1000,
                },
            };
        }
        if let Some((_, p)) = place(Controller::Cpuset) {
            cpuset(&mut s.cpuset, p);
        }
        if let Some((dir, p)) = place(Controller::Memory) {
            s.memory = memory(dir, p);
        }
        if let Some((_, p)) = place(Controller::Pids) {
            s.pids = Pids {
                current: read_u64(p, "pids.current"),
                limit: match read_u64(p, "pids.max") {
                    u64::MAX => 0,
                    n => n,
                },
            };
        }
        if let Some((dir, p)) = place(Controller::Io) {
            s.blkio = blkio(dir, p);
        }
        if let Some((dir, p)) = place(Controller::Hugetlb) {
            s.hugetlb = hugetlb(dir, p);
        }
        s
    }
}

fn cpu_usage(cpu: &mut Cpu, dir: Dir, p: &Path) {
    match dir {
        Dir::V1(_) => {
            let hz = clock_ticks();
            cpu.usage.total = read_u64(p, "cpuacct.usage");
            cpu.usage.percpu = parse_numbers(&read(p, "cpuacct.usage_percpu").unwrap_or_default());
            cpu.usage.percpu_kernel =
                parse_numbers(&read(p, "cpuacct.usage_percpu_sys").unwrap_or_default());
            cpu.usage.percpu_user =
                parse_numbers(&read(p, "cpuacct.usage_percpu_user").unwrap_or_default());
            let st = parse_flat_keyed(&read(p, "cpuacct.stat").unwrap_or_default());
            let ns = |k: &str| st.get(k).copied().unwrap_or(0) * 1_000_000_000 / hz;
            cpu.usage.kernel = ns("system");
            cpu.usage.user = ns("user");
        }
        Dir::V2 => {
            let st = parse_flat_keyed(&read(p, "cpu.stat").unwrap_or_default());
            let ns = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
            cpu.usage.total = ns("usage_usec");
            cpu.usage.kernel = ns("system_usec");
            cpu.usage.user = ns("user_usec");
        }
    }
}

fn cpuset(c: &mut CpuSet, p: &Path) {
    let list = |f: &str, eff: &str| {
        let v = read(p, f).unwrap_or_default();
        if v.trim().is_empty() {
            parse_list(&read(p, eff).unwrap_or_default())
        } else {
            parse_list(&v)
        }
    };
    c.cpus = list("cpuset.cpus", "cpuset.cpus.effective");
    c.mems = list("cpuset.mems", "cpuset.mems.effective");
    c.cpu_exclusive = read_u64(p, "cpuset.cpu_exclusive");
    c.mem_exclusive = read_u64(p, "cpuset.mem_exclusive");
    c.mem_hardwall = read_u64(p, "cpuset.mem_hardwall");
    c.memory_migrate = read_u64(p, "cpuset.memory_migrate");
    c.memory_spread_page = read_u64(p, "cpuset.memory_spread_page");
    c.memory_spread_slab = read_u64(p, "cpuset.memory_spread_slab");
    c.memory_pressure = read_u64(p, "cpuset.memory_pressure");
    c.sched_load_balance = read_u64(p, "cpuset.sched_load_balance");
    c.sched_relax_domain_level = read(p, "cpuset.sched_relax_domain_level")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
}

fn memory(dir: Dir, p: &Path) -> Memory {
    let raw = parse_flat_keyed(&read(p, "memory.stat").unwrap_or_default());
    match dir {
        Dir::V1(_) => {
            let entry = |prefix: &str| MemoryEntry {
                limit: read_u64(p, &format!("{prefix}.limit_in_bytes")),
                usage: read_u64(p, &format!("{prefix}.usage_in_bytes")),
                max: read_u64(p, &format!("{prefix}.max_usage_in_bytes")),
                failcnt: read_u64(p, &format!("{prefix}.failcnt")),
            };
            Memory {
                cache: raw
                    .get("total_cache")
                    .or_else(|| raw.get("cache"))
                    .copied()
                    .unwrap_or(0),
                usage: entry("memory"),
                swap: entry("memory.memsw"),
                kernel: entry("memory.kmem"),
                kernel_tcp: entry("memory.kmem.tcp"),
                raw,
            }
        }
        Dir::V2 => {
            let events = parse_flat_keyed(&read(p, "memory.events").unwrap_or_default());
            let usage = MemoryEntry {
                limit: read(p, "memory.max")
                    .and_then(|s| parse_limit(&s))
                    .unwrap_or(u64::MAX),
                usage: read_u64(p, "memory.current"),
                max: read_u64(p, "memory.peak"),
                failcnt: events.get("max").copied().unwrap_or(0),
            };
            // v1 reported swap as memory+swap; runc keeps that meaning.
            let swap_limit = read(p, "memory.swap.max")
                .and_then(|s| parse_limit(&s))
                .unwrap_or(u64::MAX);
            let swap = MemoryEntry {
                limit: if swap_limit == u64::MAX || usage.limit == u64::MAX {
                    u64::MAX
                } else {
                    swap_limit + usage.limit
                },
                usage: read_u64(p, "memory.swap.current") + usage.usage,
                max: 0,
                failcnt: 0,
            };
            Memory {
                cache: raw.get("file").copied().unwrap_or(0),
                usage,
                swap,
                kernel: MemoryEntry::default(),
                kernel_tcp: MemoryEntry::default(),
                raw,
            }
        }
    }
}

fn blkio(dir: Dir, p: &Path) -> Blkio {
    match dir {
        Dir::V1(_) => {
            // CFQ's files, else BFQ's, else the throttle layer's (which
            // counts every bio), as runc.
            let pick = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| read(p, n).filter(|t| !t.trim().is_empty()))
                    .map(|t| parse_blkio_v1(&t))
                    .unwrap_or_default()
            };
            Blkio {
                io_service_bytes_recursive: pick(&[
                    "blkio.io_service_bytes_recursive",
                    "blkio.bfq.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes_recursive",
                ]),
                io_serviced_recursive: pick(&[
                    "blkio.io_serviced_recursive",
                    "blkio.bfq.io_serviced_recursive",
                    "blkio.throttle.io_serviced_recursive",
                ]),
            }
        }
        Dir::V2 => {
            let (bytes, ios) = parse_io_stat(&read(p, "io.stat").unwrap_or_default());
            Blkio {
                io_service_bytes_recursive: bytes,
                io_serviced_recursive: ios,
            }
        }
    }
}

fn hugetlb(dir: Dir, p: &Path) -> BTreeMap<String, Hugetlb> {
    let suffix = match dir {
        Dir::V1(_) => ".limit_in_bytes",
        Dir::V2 => ".max",
    };
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(p) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(suffix))
            .filter(|s| !s.contains('.'))
        else {
            continue;
        };
        let h = match dir {
            Dir::V1(_) => Hugetlb {
                usage: read_u64(p, &format!("hugetlb.{size}.usage_in_bytes")),
                max: read_u64(p, &format!("hugetlb.{size}.max_usage_in_bytes")),
                failcnt: read_u64(p, &format!("hugetlb.{size}.failcnt")),
            },
            Dir::V2 => Hugetlb {
                usage: read_u64(p, &format!("hugetlb.{size}.current")),
                max: 0,
                failcnt: parse_flat_keyed(
                    &read(p, &format!("hugetlb.{size}.events")).unwrap_or_default(),
                )
                .get("max")
                .copied()
                .unwrap_or(0),
            },
        };
        out.insert(size.to_string(), h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed() {
        let m = parse_flat_keyed("usage_usec 1500\nuser_usec 1000\nbad\nx y\n");
        assert_eq!(m.get("usage_usec"), Some(&1500));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-2,5\n"), [0, 1, 2, 5]);
        assert_eq!(parse_list(""), Vec::<u16>::new());
        assert_eq!(parse_numbers("10 20 30\n"), [10, 20, 30]);
    }

    #[test]
    fn blkio_v1_lines() {
        let e =
            parse_blkio_v1("254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n");
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[1],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
    }

    #[test]
    fn io_stat_v2() {
        let (bytes, ios) = parse_io_stat(
            "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n253:1 rbytes=1\n",
        );
        assert_eq!(bytes.len(), 4);
        assert_eq!(bytes[0].op, "Read");
        assert_eq!(bytes[0].value, 4096);
        assert_eq!(bytes[3].major, 253);
        assert_eq!(ios[0].value, 1);
    }

    #[test]
    fn runc_json_shape() {
        let mut s = Stats::default();
        s.pids.current = 3;
        s.memory.usage.limit = u64::MAX;
        s.hugetlb.insert("2MB".into(), Hugetlb::default());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["pids"]["current"], 3);
        assert!(v["pids"].get("limit").is_none(), "omitempty like runc");
        assert_eq!(v["memory"]["usage"]["limit"], u64::MAX);
        assert_eq!(v["memory"]["usage"]["failcnt"], 0);
        assert!(v["memory"].get("kernelTCP").is_some());
        assert_eq!(v["hugetlb"]["2MB"]["failcnt"], 0);
        assert!(v["cpu"]["usage"].get("kernel").is_some());
        assert!(v["blkio"].as_object().unwrap().is_empty());
        assert!(v["network_interfaces"].is_null());
        assert!(v["cpuset"].get("sched_relax_domain_level").is_some());
    }
}
