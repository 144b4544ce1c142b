//! berth-runtime's lifecycle, runc-compatible: run, create/start/state/kill/
//! delete, list, statuses, exit codes, concurrency on one id.

mod common;

use common::*;

#[test]
fn run_prints_what_the_args_say() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let cid = id("hello");
    let out = rt.run_bundle("run", &b, &cid, &[]);
    assert_eq!(ok(&out), "hello from the berth fixture bundle\n");
    assert_gone(&rt, &cid, &b, None);
}

#[test]
fn run_returns_the_exit_code() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("exit 42");
    let out = rt.run_bundle("run", &b, &id("exit42"), &[]);
    assert_eq!(out.status.code(), Some(42));
    // Without its own pid namespace the program is not an init, so it can
    // be killed by a signal (an init ignores SIGKILL from inside).
    b.sh("kill -9 $$");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    let out = rt.run_bundle("run", &b, &id("killed"), &[]);
    assert_eq!(out.status.code(), Some(137), "128 + SIGKILL");
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let cid = id("keep");
    ok(&rt.run_bundle("run", &b, &cid, &["--keep"]));
    assert_eq!(rt.status(&cid), "stopped");
    assert_eq!(rt.state(&cid)["pid"], 0);
    ok(&rt.run(&["delete", &cid]));
    assert_gone(&rt, &cid, &b, None);
}

#[test]
fn create_start_kill_delete() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo started > /tmp/started; exec sleep 1000");
    b.config["root"]["readonly"] = false.into();
    let cid = id("lifecycle");
    let pidfile = b.path().join("init.pid");
    ok(&rt.run_bundle(
        "create",
        &b,
        &cid,
        &["--pid-file", pidfile.to_str().unwrap()],
    ));

    let st = rt.state(&cid);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], cid.as_str());
    assert_eq!(st["ociVersion"], "1.0.2");
    assert_eq!(st["bundle"], b.path().to_str().unwrap());
    assert_eq!(st["rootfs"], b.rootfs().to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    assert!(st.get("owner").is_some());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // Created: the program has not run yet.
    assert!(!b.rootfs().join("tmp/started").exists());
    assert!(!cgroup_dirs(&cid).is_empty(), "the container has a cgroup");

    // start of a created container only; delete refuses a running one.
    ok(&rt.run(&["start", &cid]));
    assert_eq!(rt.status(&cid), "running");
    let e = fails(&rt.run(&["start", &cid]));
    assert!(e.contains("running"), "{e}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !b.rootfs().join("tmp/started").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the program never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let e = fails(&rt.run(&["delete", &cid]));
    assert!(e.contains("running") && e.contains("--force"), "{e}");
    assert_eq!(
        rt.status(&cid),
        "running",
        "a refused delete changes nothing"
    );

    ok(&rt.run(&["kill", &cid, "KILL"]));
    rt.wait_status(&cid, "stopped");
    let e = fails(&rt.run(&["kill", &cid, "KILL"]));
    assert!(e.contains("not running"), "{e}");
    ok(&rt.run(&["delete", &cid]));
    assert_gone(&rt, &cid, &b, Some(pid));
    let e = fails(&rt.run(&["state", &cid]));
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn kill_takes_names_and_numbers() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // pid 1 ignores signals it has no handler for: install one.
    b.sh("trap 'exit 7' USR1; while true; do sleep 0.05; done");
    let cid = id("killsig");
    ok(&rt.run_bundle("run", &b, &cid, &["--detach"]));
    assert_eq!(rt.status(&cid), "running");
    ok(&rt.run(&["kill", &cid, "SIGUSR1"]));
    rt.wait_status(&cid, "stopped");
    ok(&rt.run(&["delete", &cid]));

    ok(&rt.run_bundle("run", &b, &cid, &["--detach"]));
    ok(&rt.run(&["kill", &cid, "10"]));
    rt.wait_status(&cid, "stopped");
    let e = fails(&rt.run(&["kill", &cid, "SIGNOPE"]));
    assert!(e.contains("unknown signal"), "{e}");
    ok(&rt.run(&["delete", &cid]));
}

#[test]
fn kill_all_reaches_every_process() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000 & sleep 1000 & wait");
    let cid = id("killall");
    ok(&rt.run_bundle("run", &b, &cid, &["--detach"]));
    let pids: Vec<i64> =
        serde_json::from_str(&ok(&rt.run(&["ps", "--format", "json", &cid]))).unwrap();
    // Sleeps may still be forking: wait until all three are there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut n = pids.len();
    while n < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "expected 3 processes, saw {n}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        n = serde_json::from_str::<Vec<i64>>(&ok(&rt.run(&["ps", "-f", "json", &cid])))
            .unwrap()
            .len();
    }
    ok(&rt.run(&["kill", "--all", &cid, "KILL"]));
    rt.wait_status(&cid, "stopped");
    ok(&rt.run(&["delete", &cid]));
    assert_gone(&rt, &cid, &b, None);
}

#[test]
fn delete_force_kills_a_running_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let cid = id("force");
    ok(&rt.run_bundle("run", &b, &cid, &["-d"]));
    let pid = rt.state(&cid)["pid"].as_i64().unwrap();
    ok(&rt.run(&["delete", "--force", &cid]));
    assert_gone(&rt, &cid, &b, Some(pid));
    // --force of a container that does not exist is not an error (containerd relies on it).
    ok(&rt.run(&["delete", "--force", &cid]));
    let e = fails(&rt.run(&["delete", &cid]));
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn delete_of_a_created_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let cid = id("created-del");
    ok(&rt.run_bundle("create", &b, &cid, &[]));
    let pid = rt.state(&cid)["pid"].as_i64().unwrap();
    ok(&rt.run(&["delete", &cid]));
    assert_gone(&rt, &cid, &b, Some(pid));
}

#[test]
fn duplicate_id_is_refused_and_harmless() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let cid = id("dup");
    ok(&rt.run_bundle("create", &b, &cid, &[]));
    let pid = rt.state(&cid)["pid"].clone();
    let e = fails(&rt.run_bundle("create", &b, &cid, &[]));
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(
        rt.state(&cid)["pid"],
        pid,
        "the first container is untouched"
    );
    assert_eq!(rt.status(&cid), "created");
}

#[test]
fn concurrent_creates_of_one_id_one_wins() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b.write();
    let cid = id("race");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut c = rt.cmd();
            c.args(["create", "--bundle", b.path().to_str().unwrap(), &cid]);
            std::thread::spawn(move || output(c))
        })
        .collect();
    let outs: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let wins = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(wins, 1, "exactly one create wins");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(stderr(o).contains("already exists"), "{}", stderr(o));
    }
    assert_eq!(rt.status(&cid), "created");
    ok(&rt.run(&["delete", &cid]));
    assert_gone(&rt, &cid, &b, None);
}

#[test]
fn list_formats() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let (a, c) = (id("list-a"), id("list-b"));
    ok(&rt.run_bundle("create", &b, &a, &[]));
    ok(&rt.run_bundle("run", &b, &c, &["-d"]));
    let q = ok(&rt.run(&["list", "-q"]));
    assert_eq!(q.lines().collect::<Vec<_>>(), vec![a.as_str(), c.as_str()]);
    let table = ok(&rt.run(&["list"]));
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][0], a);
    assert_eq!(rows[0][2], "created");
    assert_eq!(rows[1][2], "running");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&rt.run(&["list", "-f", "json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[1]["status"], "running");
}

#[test]
fn pause_and_resume() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    b.sh("i=0; while true; do i=$((i+1)); echo $i > /tmp/c.tmp; mv /tmp/c.tmp /tmp/count; sleep 0.01; done");
    let cid = id("pause");
    ok(&rt.run_bundle("run", &b, &cid, &["-d"]));
    let count = b.rootfs().join("tmp/count");
    let read = || std::fs::read_to_string(&count).unwrap_or_default();
    std::thread::sleep(std::time::Duration::from_millis(100));
    ok(&rt.run(&["pause", &cid]));
    assert_eq!(rt.status(&cid), "paused");
    let a = read();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(read(), a, "a paused container makes no progress");
    let e = fails(&rt.run(&["pause", &cid]));
    assert!(e.contains("paused"), "{e}");
    ok(&rt.run(&["resume", &cid]));
    assert_eq!(rt.status(&cid), "running");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_ne!(read(), a, "a resumed container goes on");
    // Deleting a paused container with --force works too.
    ok(&rt.run(&["pause", &cid]));
    ok(&rt.run(&["delete", "--force", &cid]));
    assert_gone(&rt, &cid, &b, None);
}

#[test]
fn version_and_spec() {
    let rt = Runtime::new();
    let v = ok(&rt.run(&["--version"]));
    assert!(v.starts_with("berth-runtime version "), "{v}");
    assert!(v.contains("\nspec: 1."), "{v}");
    let dir = tempfile::tempdir().unwrap();
    ok(&rt.run(&["spec", "--bundle", dir.path().to_str().unwrap()]));
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["process"]["terminal"], true);
    let e = fails(&rt.run(&["spec", "--bundle", dir.path().to_str().unwrap()]));
    assert!(e.contains("exists"), "{e}");
    let rl = tempfile::tempdir().unwrap();
    ok(&rt.run(&[
        "spec",
        "--rootless",
        "--bundle",
        rl.path().to_str().unwrap(),
    ]));
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rl.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], 0);
}

#[test]
fn json_log_lines_for_containerd() {
    let rt = Runtime::new();
    let log = rt.root.path().join("log.json");
    let out = rt
        .cmd()
        .args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "nope",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("does not exist"),
        "{last}"
    );
    assert!(last["time"].as_str().is_some());
}

/// `features` promises only what create does: every namespace it lists can
/// be made, and every mount option it lists is taken on a real mount.
#[test]
fn features_are_what_create_accepts() {
    let rt = Runtime::new();
    let f: serde_json::Value =
        serde_json::from_str(&ok(&rt.run(&["features"]))).expect("features is JSON");
    let version = ok(&rt.run(&["--version"]));
    assert!(
        version.contains(&format!(
            "\nspec: {}\n",
            f["ociVersionMax"].as_str().unwrap()
        )),
        "{version}"
    );
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert_eq!(f["linux"]["cgroup"]["systemd"], false, "not implemented");
    let supported = f["linux"]["seccomp"]["supportedFlags"].as_array().unwrap();
    assert!(supported.contains(&"SECCOMP_FILTER_FLAG_SPEC_ALLOW".into()));

    let mut b = Bundle::new();
    b.config["linux"]["namespaces"] = f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| serde_json::json!({ "type": n }))
        .collect();
    b.config["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    b.config["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    // A user namespace cannot mount sysfs or cgroups without a network
    // namespace of its own mapping root: keep what the fixture needs least.
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup" && m["type"] != "sysfs");
    let mut n = 0;
    for opt in f["mountOptions"].as_array().unwrap() {
        let opt = opt.as_str().unwrap();
        let dest = format!("/mnt/o{n}");
        n += 1;
        // Made here: the user namespace's root may not write the rootfs.
        std::fs::create_dir_all(b.rootfs().join(dest.trim_start_matches('/'))).unwrap();
        let m = match opt {
            // A bind needs a source; remount needs a mount to change.
            "bind" | "rbind" => serde_json::json!({
                "destination": dest, "type": "bind", "source": "/bin", "options": [opt]
            }),
            "remount" => continue,
            _ => serde_json::json!({
                "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": [opt]
            }),
        };
        b.config["mounts"].as_array_mut().unwrap().push(m);
    }
    let mounts = n - 1; // all but remount
    b.sh("grep -c ' /mnt/o' /proc/self/mountinfo; readlink /proc/self/ns/time; readlink /proc/self/ns/user");
    let out = ok(&rt.run_bundle("run", &b, &id("features"), &[]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], mounts.to_string(), "{out}");
    for (line, ns) in lines[1..].iter().zip(["time", "user"]) {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(*line, host.to_str().unwrap(), "a new {ns} namespace");
    }
}
