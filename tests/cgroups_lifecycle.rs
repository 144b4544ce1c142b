//! The cgroup through a container's life: update, events --stats, pause
//! and resume, cgroupsPath forms, and nothing left in any hierarchy after
//! delete.

mod common;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const MIB: i64 = 1 << 20;

fn stats(c: &Detached) -> Value {
    let out = ok(&c.cmd(&["events", "--stats"]));
    let v: Value = serde_json::from_str(&out).expect("events --stats prints one JSON object");
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], c.id.as_str());
    v["data"].clone()
}

#[test]
fn update_flags_change_the_files() {
    let cg = Cgroups::host();
    let c = Detached::start("update", "sleep 1000", |b| {
        b.config["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB, "swap": 128 * MIB});
        b.config["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    let p = c.cgroup_path();
    ok(&c.cmd(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "256m",
        "--pids-limit",
        "50",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "100000",
        "--cpuset-cpus",
        "0",
    ]));
    assert_eq!(cg.read("pids", &p, "pids.max"), "50");
    assert_eq!(cg.read("cpuset", &p, "cpuset.cpus"), "0");
    if cg.is_v2("memory") {
        assert_eq!(cg.read("memory", &p, "memory.max"), (96 * MIB).to_string());
        assert_eq!(
            cg.read("memory", &p, "memory.swap.max"),
            (160 * MIB).to_string()
        );
    } else {
        assert_eq!(
            cg.read("memory", &p, "memory.limit_in_bytes"),
            (96 * MIB).to_string()
        );
        assert_eq!(
            cg.read("memory", &p, "memory.memsw.limit_in_bytes"),
            (256 * MIB).to_string()
        );
    }
    if cg.is_v2("cpu") {
        assert_eq!(cg.read("cpu", &p, "cpu.max"), "30000 100000");
        // runc's shares→weight: 256 → 35.
        assert_eq!(cg.read("cpu", &p, "cpu.weight"), "35");
    } else {
        assert_eq!(cg.read("cpu", &p, "cpu.cfs_quota_us"), "30000");
        assert_eq!(cg.read("cpu", &p, "cpu.shares"), "256");
    }

    // Lowering the memory only: v2's swap.max is re-derived from the
    // memory+swap kept from before (256M - 48M).
    ok(&c.cmd(&["update", "--memory", "48m"]));
    if cg.is_v2("memory") {
        assert_eq!(cg.read("memory", &p, "memory.max"), (48 * MIB).to_string());
        assert_eq!(
            cg.read("memory", &p, "memory.swap.max"),
            (208 * MIB).to_string()
        );
    } else {
        assert_eq!(
            cg.read("memory", &p, "memory.limit_in_bytes"),
            (48 * MIB).to_string()
        );
        assert_eq!(
            cg.read("memory", &p, "memory.memsw.limit_in_bytes"),
            (256 * MIB).to_string()
        );
    }

    // A value the kernel's invariants refuse: a clear error, nothing changed.
    let e = fails(&c.cmd(&["update", "--memory-swap", "16m"]));
    assert!(
        e.contains("linux.resources.memory.swap") && e.contains("below"),
        "{e}"
    );
    assert_eq!(stats(&c)["pids"]["limit"], 50);
    c.finish();
}

/// memory.checkBeforeUpdate: a new limit below what the container uses is
/// refused instead of reclaiming or killing.
#[test]
fn check_before_update_refuses_a_limit_below_usage() {
    let cg = Cgroups::host();
    let c = Detached::start("check-update", "sleep 1000", |b| {
        b.config["linux"]["resources"]["memory"] =
            json!({"limit": 64 * MIB, "checkBeforeUpdate": true});
    });
    let p = c.cgroup_path();
    let file = if cg.is_v2("memory") {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let e = fails(&c.cmd(&["update", "--memory", "8192"]));
    assert!(e.contains("below the current usage"), "{e}");
    assert_eq!(cg.read("memory", &p, file), (64 * MIB).to_string());
    ok(&c.cmd(&["update", "--memory", "32m"]));
    assert_eq!(cg.read("memory", &p, file), (32 * MIB).to_string());
    c.finish();
}

/// `update -r -` with LinuxResources JSON on stdin, as containerd sends it
/// (empty cpus/mems strings meaning "not given").
#[test]
fn update_resources_json_from_stdin() {
    let cg = Cgroups::host();
    let c = Detached::start("update-json", "sleep 1000", |b| {
        b.config["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    let p = c.cgroup_path();
    let body = json!({
        "memory": {"limit": 100 * MIB, "swap": 100 * MIB},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "", "mems": ""},
        "pids": {"limit": 60},
        "blockIO": {},
    });
    let mut child =
        c.rt.cmd()
            .args(["update", "-r", "-", &c.id])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cg.read("pids", &p, "pids.max"), "60");
    if cg.is_v2("memory") {
        assert_eq!(cg.read("memory", &p, "memory.max"), (100 * MIB).to_string());
        assert_eq!(
            cg.read("memory", &p, "memory.swap.max"),
            "0",
            "swap == limit: no swap"
        );
    } else {
        assert_eq!(
            cg.read("memory", &p, "memory.limit_in_bytes"),
            (100 * MIB).to_string()
        );
    }
    if cg.is_v2("cpu") {
        assert_eq!(cg.read("cpu", &p, "cpu.weight"), "100");
    } else {
        assert_eq!(cg.read("cpu", &p, "cpu.shares"), "1024");
    }
    // Malformed JSON and unknown containers: one clear line.
    let file = c.b.path().join("bad.json");
    fs::write(&file, "{\"pids\": {\"limit\": \"many\"}}").unwrap();
    let e = fails(&c.cmd(&["update", "-r", file.to_str().unwrap()]));
    assert!(
        e.contains("not LinuxResources JSON") && e.contains("bad.json"),
        "{e}"
    );
    let e = fails(
        &c.rt
            .run(&["update", "--pids-limit", "5", "no-such-container"]),
    );
    assert!(e.contains("no-such-container"), "{e}");
    assert_eq!(cg.read("pids", &p, "pids.max"), "60");
    c.finish();
}

#[test]
fn events_stats_shows_usage() {
    let c = Detached::start(
        "stats",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done > /out; sleep 1000",
        |b| b.config["linux"]["resources"]["pids"] = json!({"limit": 30}),
    );
    c.out();
    let d = stats(&c);
    assert!(
        d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "{}",
        d["cpu"]
    );
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{}",
        d["memory"]
    );
    assert!(
        d["memory"]["usage"]["limit"].as_u64().unwrap_or(0) > 0,
        "{}",
        d["memory"]
    );
    assert!(
        d["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "{}",
        d["pids"]
    );
    assert_eq!(d["pids"]["limit"], 30);
    assert!(
        d["hugetlb"]
            .as_object()
            .is_some_and(|h| h.contains_key("2MB")),
        "{}",
        d["hugetlb"]
    );
    // A stream: stats events at the interval, ending when the container does.
    let out = c.rt.run(&["kill", &c.id, "KILL"]);
    ok(&out);
    c.rt.wait_status(&c.id, "stopped");
    let e = fails(&c.cmd(&["events", "--stats"]));
    assert!(e.contains("stopped"), "{e}");
    c.finish();
}

#[test]
fn events_stream_until_the_container_stops() {
    let c = Detached::start("stream", "sleep 1000", |_| {});
    let mut events = c.rt.cmd();
    events.args(["events", "--interval", "200ms", &c.id]);
    let child = events
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    ok(&c.rt.run(&["kill", &c.id, "KILL"]));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|e| e["type"] == "stats" && e["id"] == c.id.as_str())
    );
    c.finish();
}

/// The state letters of a container's processes, from /proc.
fn states(c: &Detached) -> Vec<char> {
    let pids: Vec<i64> = serde_json::from_str(&ok(&c.cmd(&["ps", "-f", "json"]))).unwrap();
    assert!(!pids.is_empty());
    pids.iter()
        .filter_map(|p| fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()))
        .collect()
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let cg = Cgroups::host();
    let c = Detached::start(
        "freeze",
        "(while :; do :; done) & i=0; while :; do i=$((i+1)); echo $i > /count; done",
        |_| {},
    );
    let count = c.b.rootfs().join("count");
    let read = || fs::read_to_string(&count).unwrap_or_default();
    wait_for("the counter to run", || !read().is_empty());
    ok(&c.cmd(&["pause"]));
    assert_eq!(c.rt.status(&c.id), "paused");
    let p = c.cgroup_path();
    if cg.is_v2("freezer") {
        assert_eq!(cg.read("freezer", &p, "cgroup.freeze"), "1");
        assert!(cg.read("freezer", &p, "cgroup.events").contains("frozen 1"));
    } else {
        assert_eq!(cg.read("freezer", &p, "freezer.state"), "FROZEN");
    }
    let st = states(&c);
    assert!(st.len() >= 2, "{st:?}");
    assert!(!st.contains(&'R'), "frozen processes do not run: {st:?}");
    let a = read();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read(), a, "no progress while paused");
    let before = stats(&c)["cpu"]["usage"]["total"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after = stats(&c)["cpu"]["usage"]["total"].as_u64().unwrap();
    assert!(
        after - before < 10_000_000,
        "a frozen busy loop uses no CPU: {before} → {after}"
    );

    ok(&c.cmd(&["resume"]));
    assert_eq!(c.rt.status(&c.id), "running");
    wait_for("the counter to go on", || read() != a);
    c.finish();
}

/// After delete, even of a killed container with a sub-cgroup the
/// container made, no directory is left in any hierarchy.
#[test]
fn delete_leaves_no_cgroup_anywhere() {
    let cg = Cgroups::host();
    let c = Detached::start("gone", "sleep 1000", |_| {});
    let p = c.cgroup_path();
    let dirs = cg.existing(&p);
    assert_eq!(
        dirs.len(),
        cg.hierarchies(),
        "a directory in every hierarchy: {dirs:?}"
    );
    // A nested cgroup, as a container managing its own would make.
    let nested = cg.dir("pids", &p).join("nested");
    fs::create_dir(&nested).unwrap();
    ok(&c.rt.run(&["kill", &c.id, "KILL"]));
    c.rt.wait_status(&c.id, "stopped");
    ok(&c.rt.run(&["delete", &c.id]));
    assert_eq!(cg.existing(&p), Vec::<PathBuf>::new());
    assert!(!nested.exists());
    c.finish();
}

/// Our own cgroup in each hierarchy, as (mount point, path) pairs.
fn own_cgroups(cg: &Cgroups) -> Vec<(PathBuf, String)> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut out = Vec::new();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let controller = if ctrls.is_empty() {
            match cg.v2_mount() {
                Some(m) => {
                    out.push((m, path.to_string()));
                    continue;
                }
                None => continue,
            }
        } else {
            ctrls.split(',').next().unwrap().to_string()
        };
        if controller.starts_with("name=") {
            continue;
        }
        if let Some((m, false)) = cg.mount(&controller) {
            out.push((m, path.to_string()));
        }
    }
    out
}

#[test]
fn absolute_and_relative_cgroups_paths() {
    let cg = Cgroups::host();
    let pid = std::process::id();

    // Absolute: from each hierarchy's root.
    let abs = format!("/berth-test-abs-{pid}/inner");
    let c = Detached::start("abs-path", "sleep 1000", |b| {
        b.config["linux"]["cgroupsPath"] = abs.clone().into();
    });
    let procs = fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    let made = cg.existing(&abs);
    assert_eq!(made.len(), cg.hierarchies(), "{made:?}");
    for d in &made {
        let listed = fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            listed.contains(&c.pid().to_string()),
            "{}: {listed}",
            d.display()
        );
    }
    assert!(procs.contains(&format!(":{abs}\n")), "{procs}");
    ok(&c.rt.run(&["delete", "--force", &c.id]));
    assert_eq!(
        cg.existing(&format!("/berth-test-abs-{pid}")),
        Vec::<PathBuf>::new(),
        "parents we made go too"
    );

    // Relative: under our own cgroup in each hierarchy.
    let rel = format!("berth-test-rel-{pid}");
    let c = Detached::start("rel-path", "sleep 1000", |b| {
        b.config["linux"]["cgroupsPath"] = rel.clone().into();
    });
    let own = own_cgroups(&cg);
    assert!(!own.is_empty());
    for (mount, path) in &own {
        let d = mount.join(path.trim_start_matches('/')).join(&rel);
        let listed = fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        assert!(
            listed.contains(&c.pid().to_string()),
            "{}: {listed}",
            d.display()
        );
    }
    ok(&c.rt.run(&["delete", "--force", &c.id]));
    for (mount, path) in &own {
        let d = mount.join(path.trim_start_matches('/')).join(&rel);
        assert!(!d.exists(), "{} left behind", d.display());
    }
}
