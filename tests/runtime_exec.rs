//! `berth-runtime exec`: a process in a running container gets its
//! namespaces, cgroups and security, observed from inside and on the host.

mod common;

use common::*;
use serde_json::json;

fn running(rt: &Runtime, name: &str, edit: impl FnOnce(&mut Bundle)) -> (Bundle, String) {
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    b.sh("echo from-init > /tmp/marker; exec sleep 1000");
    b.config["hostname"] = "exec-box".into();
    edit(&mut b);
    let cid = id(name);
    ok(&rt.run_bundle("run", &b, &cid, &["-d"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !b.rootfs().join("tmp/marker").exists() {
        assert!(std::time::Instant::now() < deadline, "init never ran");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    (b, cid)
}

fn status_caps(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs"))
        .map(str::to_string)
        .collect()
}

#[test]
fn exec_joins_namespaces_cgroups_and_security() {
    let rt = Runtime::new();
    let (_b, cid) = running(&rt, "exec-join", |_| {});
    let init_pid = rt.state(&cid)["pid"].as_i64().unwrap();
    let out = ok(&rt.run(&["exec", &cid, "sh", "-c", "hostname; cat /tmp/marker; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$; cat /proc/self/status"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "exec-box");
    assert_eq!(lines[1], "from-init");
    assert_eq!(
        lines[2].trim(),
        "sleep 1000",
        "pid 1 is the container's init"
    );
    assert_ne!(lines[3], "1");
    // Same capabilities and no_new_privs as the init.
    let init_status = std::fs::read_to_string(format!("/proc/{init_pid}/status")).unwrap();
    assert_eq!(status_caps(&out), status_caps(&init_status));
    // Same namespaces as the init, seen from the host.
    let pidfile = rt.root.path().join("exec.pid");
    ok(&rt.run(&[
        "exec",
        "--detach",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &cid,
        "sleep",
        "1000",
    ]));
    let pid: i64 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    for ns in ["pid", "mnt", "net", "ipc", "uts", "cgroup"] {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap(),
            std::fs::read_link(format!("/proc/{init_pid}/ns/{ns}")).unwrap(),
            "{ns} namespace"
        );
    }
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        std::fs::read_to_string(format!("/proc/{init_pid}/cgroup")).unwrap()
    );
    let pids: Vec<i64> = serde_json::from_str(&ok(&rt.run(&["ps", "-f", "json", &cid]))).unwrap();
    assert!(pids.contains(&pid) && pids.contains(&init_pid), "{pids:?}");
    // delete --force takes the exec'd process with it.
    ok(&rt.run(&["delete", "--force", &cid]));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "{stat}");
}

#[test]
fn exec_overrides_and_exit_codes() {
    let rt = Runtime::new();
    let (_b, cid) = running(&rt, "exec-args", |_| {});
    let out = ok(&rt.run(&[
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:100",
        &cid,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g",
    ]));
    assert_eq!(out, "bar\n/tmp\n1000\n100\n");
    let o = rt.run(&["exec", &cid, "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let e = fails(&rt.run(&["exec", &cid, "no-such-program"]));
    assert!(e.contains("executable file not found"), "{e}");
    // No signal blocked or ignored, in an exec'd process and in the init
    // (started detached: create + start).
    let clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    for status in ["/proc/self/status", "/proc/1/status"] {
        let out = ok(&rt.run(&["exec", &cid, "grep", "-E", "^Sig(Blk|Ign)", status]));
        assert_eq!(out, clean, "{status}");
    }
}

#[test]
fn exec_with_a_process_json() {
    let rt = Runtime::new();
    let (b, cid) = running(&rt, "exec-json", |_| {});
    let proc = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "id -u; echo $X; grep -E '^CapBnd' /proc/self/status"],
        "env": ["PATH=/bin:/usr/bin", "X=from-json"],
        "cwd": "/",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": [], "permitted": []}
    });
    let f = b.path().join("process.json");
    std::fs::write(&f, proc.to_string()).unwrap();
    let out = ok(&rt.run(&["exec", "--process", f.to_str().unwrap(), &cid]));
    assert_eq!(out, "1000\nfrom-json\nCapBnd:\t0000000000000020\n");
}

#[test]
fn exec_in_a_stopped_container_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["true"]);
    let cid = id("exec-stopped");
    ok(&rt.run_bundle("run", &b, &cid, &["--keep"]));
    let e = fails(&rt.run(&["exec", &cid, "true"]));
    assert!(e.contains("stopped"), "{e}");
    let e = fails(&rt.run(&["exec", "ghost", "true"]));
    assert!(e.contains("does not exist"), "{e}");
}
