//! Each controller's limits, read back from the cgroup files on the host
//! and from inside the container; memory and pids shown to bite. The same
//! tests run on a v1/hybrid host (v1 files, hugetlb on cgroup2) and on a
//! pure v2 host (v2 files, values converted as runc does).

mod common;

use std::fs;
use std::process::Stdio;

use common::*;
use serde_json::{Value, json};

const MIB: i64 = 1 << 20;

fn set(b: &mut Bundle, key: &str, v: Value) {
    b.config["linux"]["resources"][key] = v;
}

#[test]
fn memory_limits_in_the_files() {
    let cg = Cgroups::host();
    let v2 = cg.is_v2("memory");
    let limit_file = if v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let script = format!(
        "cat {} > /tmp/o; mv /tmp/o /out; sleep 1000",
        cg.inside("memory", limit_file)
    );
    let c = Detached::start("mem-files", &script, |b| {
        set(
            b,
            "memory",
            json!({"limit": 64 * MIB, "swap": 128 * MIB, "reservation": 32 * MIB}),
        );
    });
    let p = c.cgroup_path();
    assert_eq!(c.out().trim(), (64 * MIB).to_string(), "seen from inside");
    assert_eq!(cg.read("memory", &p, limit_file), (64 * MIB).to_string());
    if v2 {
        // memsw 128M = memory 64M + swap 64M.
        assert_eq!(
            cg.read("memory", &p, "memory.swap.max"),
            (64 * MIB).to_string()
        );
        assert_eq!(cg.read("memory", &p, "memory.low"), (32 * MIB).to_string());
    } else {
        assert_eq!(
            cg.read("memory", &p, "memory.memsw.limit_in_bytes"),
            (128 * MIB).to_string()
        );
        assert_eq!(
            cg.read("memory", &p, "memory.soft_limit_in_bytes"),
            (32 * MIB).to_string()
        );
    }
    c.finish();
}

#[test]
fn memory_v1_knobs_or_clear_errors() {
    let cg = Cgroups::host();
    let mem = json!({"limit": 64 * MIB, "swappiness": 10, "disableOOMKiller": true});
    if cg.is_v2("memory") {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        set(&mut b, "memory", mem);
        let cid = id("mem-v1-knobs");
        let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
        assert!(
            e.contains("linux.resources.memory.swappiness") && e.contains("cgroup v2"),
            "{e}"
        );
        assert_gone(&rt, &cid, &b, None);
        return;
    }
    let c = Detached::start("mem-v1-knobs", "sleep 1000", |b| set(b, "memory", mem));
    let p = c.cgroup_path();
    assert_eq!(cg.read("memory", &p, "memory.swappiness"), "10");
    assert!(
        cg.read("memory", &p, "memory.oom_control")
            .contains("oom_kill_disable 1")
    );
    c.finish();
}

/// An allocation past the limit is OOM-killed, and `events` reports it.
#[test]
fn memory_limit_bites_and_events_reports_the_oom() {
    let cg = Cgroups::host();
    // Swap = limit: no swap to escape to. dd's 96M block buffer is
    // allocated and filled in one go.
    let c = Detached::start(
        "mem-oom",
        "while [ ! -e /go ]; do sleep 0.05; done; \
         dd if=/dev/zero of=/dev/null bs=100663296 count=1 2>/dev/null; \
         echo \"dd $?\" > /tmp/o; mv /tmp/o /out; sleep 1000",
        |b| set(b, "memory", json!({"limit": 32 * MIB, "swap": 32 * MIB})),
    );
    let events_out = tempfile::NamedTempFile::new().unwrap();
    let mut events =
        c.rt.cmd()
            .args(["events", "--interval", "100ms", &c.id])
            .stdout(events_out.reopen().unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let read_events = || fs::read_to_string(events_out.path()).unwrap_or_default();
    // A stats line means the OOM watch is in place.
    wait_for("a stats event", || {
        read_events().contains("\"type\":\"stats\"")
    });
    c.go();
    assert_eq!(
        c.out().trim(),
        "dd 137",
        "dd is SIGKILLed by the OOM killer"
    );
    wait_for("an oom event", || {
        read_events().lines().any(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["type"] == "oom" && v["id"] == c.id.as_str())
        })
    });
    let _ = events.kill();
    let _ = events.wait();
    let p = c.cgroup_path();
    let kills = if cg.is_v2("memory") {
        cg.read("memory", &p, "memory.events")
    } else {
        cg.read("memory", &p, "memory.oom_control")
    };
    let n: u64 = kills
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n >= 1, "the kernel counted the kill: {kills}");
    c.finish();
}

/// A fork bomb stops at pids.max.
#[test]
fn pids_limit_stops_a_fork_bomb() {
    let cg = Cgroups::host();
    let current = cg.inside("pids", "pids.current");
    // A failed fork ends the (sub)shell that tried it, so the bomb runs in
    // a subshell counting its successes with builtins, and the report and
    // the wait use builtins and exec.
    let script = format!(
        "(i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); echo $i > /spawned; done) 2>/dev/null; \
         read n < {current}; read s < /spawned; echo \"$n $s\" > /out; exec sleep 1000"
    );
    let c = Detached::start("pids-bomb", &script, |b| {
        set(b, "pids", json!({"limit": 10}))
    });
    let p = c.cgroup_path();
    assert_eq!(cg.read("pids", &p, "pids.max"), "10");
    let out = c.out();
    let (n, spawned) = out.trim().split_once(' ').expect("two numbers");
    let (n, spawned): (u32, u32) = (n.parse().unwrap(), spawned.parse().unwrap());
    assert!(n <= 10, "pids.current inside: {n}");
    assert!(
        (5..=9).contains(&spawned),
        "the bomb stopped at the limit after {spawned} of 40"
    );
    let host: u32 = cg.read("pids", &p, "pids.current").parse().unwrap();
    assert!(
        host <= 10 && host > spawned / 2,
        "pids.current on the host: {host}"
    );
    let events = cg.read("pids", &p, "pids.events");
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(refused > 0, "the kernel counted refused forks: {events}");
    c.finish();
}

#[test]
fn cpu_limits_in_the_files_and_quota_bites() {
    let cg = Cgroups::host();
    let c = Detached::start(
        "cpu",
        "grep Cpus_allowed_list /proc/self/status > /tmp/o; mv /tmp/o /out; while :; do :; done",
        |b| {
            set(
                b,
                "cpu",
                json!({"shares": 512, "quota": 10000, "period": 100000, "cpus": "0", "mems": "0"}),
            )
        },
    );
    let p = c.cgroup_path();
    assert_eq!(
        c.out().split_whitespace().last(),
        Some("0"),
        "pinned to CPU 0"
    );
    assert_eq!(cg.read("cpuset", &p, "cpuset.cpus"), "0");
    assert_eq!(cg.read("cpuset", &p, "cpuset.mems"), "0");
    if cg.is_v2("cpu") {
        // runc's shares→weight: 512 → 59.
        assert_eq!(cg.read("cpu", &p, "cpu.weight"), "59");
        assert_eq!(cg.read("cpu", &p, "cpu.max"), "10000 100000");
    } else {
        assert_eq!(cg.read("cpu", &p, "cpu.shares"), "512");
        assert_eq!(cg.read("cpu", &p, "cpu.cfs_quota_us"), "10000");
        assert_eq!(cg.read("cpu", &p, "cpu.cfs_period_us"), "100000");
    }
    // A busy loop held to 10%: throttled, and its CPU time is about 10 ms
    // per 100 ms period it ran (counted in periods, not wall time: under
    // an emulated VM the container's start takes seconds).
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let stats: Value = serde_json::from_str(&ok(&c.cmd(&["events", "--stats"]))).unwrap();
    let cpu = &stats["data"]["cpu"];
    let periods = cpu["throttling"]["periods"].as_u64().unwrap_or(0);
    let throttled = cpu["throttling"]["throttledPeriods"].as_u64().unwrap_or(0);
    assert!(
        periods >= 5 && throttled * 2 > periods,
        "mostly throttled: {cpu}"
    );
    let used = cpu["usage"]["total"].as_u64().unwrap_or(0);
    let allowed = (periods + 2) * 10_000_000;
    assert!(
        used > 0 && used * 10 < allowed * 13,
        "{used} ns used, {allowed} allowed by the quota: {cpu}"
    );
    c.finish();
}

#[test]
fn cpu_realtime_or_clear_error() {
    let cg = Cgroups::host();
    let rt_cpu = json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000});
    if cg.is_v2("cpu") {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        set(&mut b, "cpu", rt_cpu);
        let cid = id("cpu-rt");
        let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
        assert!(
            e.contains("realtimeRuntime") && e.contains("cgroup v2"),
            "{e}"
        );
        assert_gone(&rt, &cid, &b, None);
        return;
    }
    let c = Detached::start("cpu-rt", "sleep 1000", |b| set(b, "cpu", rt_cpu));
    let p = c.cgroup_path();
    assert_eq!(cg.read("cpu", &p, "cpu.rt_runtime_us"), "10000");
    assert_eq!(cg.read("cpu", &p, "cpu.rt_period_us"), "1000000");
    c.finish();
}

/// A block device of this host as MAJ:MIN, if it has one.
fn block_device() -> Option<String> {
    let mut devs: Vec<_> = fs::read_dir("/sys/block").ok()?.flatten().collect();
    devs.sort_by_key(|d| d.file_name().to_string_lossy().starts_with("loop"));
    devs.iter()
        .find_map(|d| fs::read_to_string(d.path().join("dev")).ok())
        .map(|s| s.trim().to_string())
}

/// The file a fresh blkio/io cgroup of this host offers for a proportional
/// weight, if any: it needs a weight-aware I/O scheduler (bfq, or iocost on
/// v2), which a host may lack (a Firecracker guest kernel has neither).
fn weight_file(cg: &Cgroups) -> Option<&'static str> {
    let probe = cg.dir(
        "blkio",
        &format!("berth-weight-probe-{}", std::process::id()),
    );
    if cg.is_v2("blkio") {
        let parent = cg.dir("blkio", "");
        let control = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        if !control.split_whitespace().any(|c| c == "io") {
            return None;
        }
    }
    fs::create_dir(&probe).unwrap_or_else(|e| panic!("mkdir {}: {e}", probe.display()));
    let names: &[&'static str] = if cg.is_v2("blkio") {
        &["io.bfq.weight", "io.weight"]
    } else {
        &["blkio.weight", "blkio.bfq.weight"]
    };
    let found = names.iter().copied().find(|f| probe.join(f).exists());
    fs::remove_dir(&probe).unwrap_or_else(|e| panic!("rmdir {}: {e}", probe.display()));
    found
}

#[test]
fn blkio_weight_and_throttles() {
    let cg = Cgroups::host();
    let dev = block_device();
    let weight = weight_file(&cg);
    if weight.is_none() {
        // The runtime must refuse the weight it cannot set, naming the
        // controller, and leave nothing behind.
        let rt = Runtime::new();
        let mut b = Bundle::new();
        set(&mut b, "blockIO", json!({"weight": 300}));
        let cid = id("blkio-noweight");
        let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
        assert!(
            e.contains("blockIO.weight") && e.contains("no proportional-weight I/O"),
            "{e}"
        );
        assert_gone(&rt, &cid, &b, None);
    }
    let c = Detached::start("blkio", "sleep 1000", |b| {
        let mut io = json!({});
        if weight.is_some() {
            io["weight"] = json!(300);
        }
        if let Some((maj, min)) = dev.as_deref().and_then(|d| d.split_once(':')) {
            let (maj, min): (i64, i64) = (maj.parse().unwrap(), min.parse().unwrap());
            io["throttleReadBpsDevice"] = json!([{"major": maj, "minor": min, "rate": 1048576}]);
            io["throttleWriteIOPSDevice"] = json!([{"major": maj, "minor": min, "rate": 100}]);
        }
        set(b, "blockIO", io);
    });
    let p = c.cgroup_path();
    if cg.is_v2("blkio") {
        match weight {
            Some("io.bfq.weight") => {
                assert_eq!(cg.read("blkio", &p, "io.bfq.weight"), "default 300")
            }
            // 300 scaled from [10, 1000] to [1, 10000].
            Some(_) => assert_eq!(cg.read("blkio", &p, "io.weight"), "default 2930"),
            None => {}
        }
        if let Some(d) = &dev {
            let max = cg.read("blkio", &p, "io.max");
            assert!(
                max.contains(&format!("{d} rbps=1048576 wbps=max riops=max wiops=100")),
                "{max}"
            );
        }
    } else {
        if let Some(file) = weight {
            assert_eq!(cg.read("blkio", &p, file), "300");
        }
        if let Some(d) = &dev {
            assert_eq!(
                cg.read("blkio", &p, "blkio.throttle.read_bps_device"),
                format!("{d} 1048576")
            );
            assert_eq!(
                cg.read("blkio", &p, "blkio.throttle.write_iops_device"),
                format!("{d} 100")
            );
        }
    }
    c.finish();
    // A device that does not exist: the kernel's refusal, named.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    set(
        &mut b,
        "blockIO",
        json!({"throttleReadBpsDevice": [{"major": 4095, "minor": 77, "rate": 1}]}),
    );
    let cid = id("blkio-nodev");
    let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
    assert!(
        e.contains("throttleReadBpsDevice[0]") && e.contains("4095:77"),
        "{e}"
    );
    assert_gone(&rt, &cid, &b, None);
}

#[test]
fn hugetlb_limit_where_hugetlb_lives() {
    let cg = Cgroups::host();
    let file = if cg.is_v2("hugetlb") {
        "hugetlb.2MB.max"
    } else {
        "hugetlb.2MB.limit_in_bytes"
    };
    let script = format!(
        "cat {} > /tmp/o; mv /tmp/o /out; sleep 1000",
        cg.inside("hugetlb", file)
    );
    let c = Detached::start("hugetlb", &script, |b| {
        set(
            b,
            "hugepageLimits",
            json!([{"pageSize": "2MB", "limit": 4 * MIB}]),
        );
    });
    assert_eq!(
        cg.read("hugetlb", &c.cgroup_path(), file),
        (4 * MIB).to_string()
    );
    assert_eq!(c.out().trim(), (4 * MIB).to_string(), "seen from inside");
    c.finish();

    let rt = Runtime::new();
    let mut b = Bundle::new();
    set(
        &mut b,
        "hugepageLimits",
        json!([{"pageSize": "3MB", "limit": 4 * MIB}]),
    );
    let cid = id("hugetlb-3mb");
    let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
    assert!(
        e.contains("hugetlb.3MB") && e.contains("no 3MB huge pages"),
        "{e}"
    );
    assert_gone(&rt, &cid, &b, None);
}

#[test]
fn network_classid_needs_net_cls() {
    let cg = Cgroups::host();
    let net = json!({"classID": 1048577, "priorities": [{"name": "lo", "priority": 5}]});
    if cg.mount("net_cls").is_some() && cg.mount("net_prio").is_some() {
        let c = Detached::start("netcls", "sleep 1000", |b| set(b, "network", net));
        assert_eq!(
            cg.read("net_cls", &c.cgroup_path(), "net_cls.classid"),
            "1048577"
        );
        assert!(
            cg.read("net_prio", &c.cgroup_path(), "net_prio.ifpriomap")
                .contains("lo 5")
        );
        c.finish();
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    set(&mut b, "network", net);
    let cid = id("netcls");
    let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
    assert!(
        e.contains("linux.resources.network.classID")
            && e.contains("net_cls controller is not mounted"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    assert_gone(&rt, &cid, &b, None);
}

#[test]
fn unified_keys_on_the_v2_hierarchy() {
    let cg = Cgroups::host();
    // hugetlb is on cgroup v2 on both hosts we test (hybrid and unified).
    assert!(cg.is_v2("hugetlb"), "expected hugetlb on cgroup v2 here");
    let c = Detached::start("unified", "sleep 1000", |b| {
        set(b, "unified", json!({"hugetlb.2MB.max": "2097152"}));
    });
    assert_eq!(
        cg.read("hugetlb", &c.cgroup_path(), "hugetlb.2MB.max"),
        "2097152"
    );
    c.finish();

    let high = json!({"memory.high": (48 * MIB).to_string()});
    if cg.is_v2("memory") {
        let c = Detached::start("unified-mem", "sleep 1000", |b| set(b, "unified", high));
        assert_eq!(
            cg.read("memory", &c.cgroup_path(), "memory.high"),
            (48 * MIB).to_string()
        );
        c.finish();
    } else {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        set(&mut b, "unified", high);
        let cid = id("unified-mem");
        let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
        assert!(
            e.contains("unified.memory.high") && e.contains("offers: hugetlb"),
            "{e}"
        );
        assert_gone(&rt, &cid, &b, None);
    }
}

#[test]
fn bad_values_are_refused_and_leave_nothing() {
    let cg = Cgroups::host();
    let mut cases = vec![
        (
            json!({"memory": {"limit": 128 * MIB, "swap": 64 * MIB}}),
            "below the memory limit",
        ),
        (
            json!({"memory": {"limit": -5}}),
            "linux.resources.memory.limit",
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}),
            "not a size",
        ),
        (json!({"unified": {"../../x.y": "1"}}), "cgroup file name"),
        (
            json!({"devices": [{"allow": true, "type": "c", "access": "rwx"}]}),
            "devices[0]",
        ),
        (json!({"blockIO": {"leafWeight": 500}}), "leaf"),
    ];
    if !cg.is_v2("memory") {
        cases.push((json!({"memory": {"swappiness": 101}}), "above 100"));
    }
    let rt = Runtime::new();
    for (i, (res, want)) in cases.into_iter().enumerate() {
        let mut b = Bundle::new();
        let obj = res.as_object().unwrap();
        for (k, v) in obj {
            set(&mut b, k, v.clone());
        }
        let cid = id(&format!("bad{i}"));
        let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
        assert!(e.contains(want), "{res}: {e}");
        assert!(e.starts_with("berth-runtime: "), "{e}");
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
        assert_gone(&rt, &cid, &b, None);
        assert_eq!(
            cg.existing(&format!("/berth/{cid}")),
            Vec::<std::path::PathBuf>::new()
        );
    }
}
