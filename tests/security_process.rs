//! The container process holds exactly what its config gives, observed from
//! inside (/proc/self/status, what it can and cannot do) for the init and
//! for `exec`'d processes: the five capability sets, no_new_privs, masked
//! and read-only paths, user namespace maps, and LSM requests on a host
//! without the LSM.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};

fn mask(names: &[&str]) -> u64 {
    names.iter().fold(0, |m, n| {
        let c: caps::Capability = n.parse().expect("capability name");
        m | (1u64 << c.index())
    })
}

/// The Cap* and NoNewPrivs lines of /proc/PID/status, parsed.
fn status_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(":\t"))
        .filter(|(k, _)| k.starts_with("Cap") || *k == "NoNewPrivs" || *k == "Seccomp")
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn hex(m: u64) -> String {
    format!("{m:016x}")
}

#[track_caller]
fn assert_caps(status: &str, bnd: u64, prm: u64, eff: u64, inh: u64, amb: u64) {
    let f = status_fields(status);
    let got = [
        ("CapBnd", &f["CapBnd"]),
        ("CapPrm", &f["CapPrm"]),
        ("CapEff", &f["CapEff"]),
        ("CapInh", &f["CapInh"]),
        ("CapAmb", &f["CapAmb"]),
    ];
    let want = [bnd, prm, eff, inh, amb].map(hex);
    for ((name, g), w) in got.iter().zip(want.iter()) {
        assert_eq!(*g, w, "{name} in:\n{status}");
    }
}

/// Starts a container that stays up, and waits until its init runs.
fn running(rt: &Runtime, b: &mut Bundle, name: &str) -> String {
    b.config["root"]["readonly"] = false.into();
    let script = b.config["process"]["args"][2]
        .as_str()
        .map(str::to_string)
        .unwrap_or_default();
    b.sh(&format!("{script}; touch /tmp/.up; exec sleep 1000"));
    let cid = id(name);
    ok(&rt.run_bundle("run", b, &cid, &["-d"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b.rootfs().join("tmp/.up").exists() {
        assert!(std::time::Instant::now() < deadline, "init never ran");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    cid
}

/// Runs `exec` with a process.json.
fn exec_json(rt: &Runtime, cid: &str, process: Value) -> std::process::Output {
    let path = rt.root.path().join(format!("process-{}.json", id("p")));
    std::fs::write(&path, serde_json::to_vec(&process).unwrap()).unwrap();
    rt.run(&["exec", "--process", path.to_str().unwrap(), cid])
}

const STATUS: &str = "cat /proc/self/status";

#[test]
fn root_capabilities_follow_the_config_and_the_exec_rules() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let caps = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"],
        "effective": ["CAP_CHOWN"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "ambient": []
    });
    b.config["process"]["capabilities"] = caps.clone();
    b.sh(STATUS);
    let out = rt.run_bundle("run", &b, &id("caps-root"), &[]);
    let s = ok(&out);
    let bnd = mask(&[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
    ]);
    let prm = mask(&["CAP_CHOWN", "CAP_KILL"]);
    // At exec a root program's effective set becomes its permitted set
    // (the "root is all-capable" rule); with no_new_privs the permitted set
    // cannot grow past what was configured. The inheritable set stays
    // empty as configured (CVE-2022-29162).
    assert_caps(&s, bnd, prm, prm, 0, 0);
    assert_eq!(status_fields(&s)["NoNewPrivs"], "1");

    // exec'd processes: the container's process by default, or a
    // process.json's own sets.
    let mut b = Bundle::new();
    b.config["process"]["capabilities"] = caps.clone();
    b.sh("true");
    let cid = running(&rt, &mut b, "caps-root-exec");
    let s = ok(&rt.run(&["exec", &cid, "cat", "/proc/self/status"]));
    assert_caps(&s, bnd, prm, prm, 0, 0);
    // Without no_new_privs, the root rule fills permitted from the
    // bounding set: exactly what runc's containers get.
    let s = ok(&exec_json(
        &rt,
        &cid,
        json!({"args": ["cat", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0},
               "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"]},
               "noNewPrivileges": false}),
    ));
    let two = mask(&["CAP_KILL", "CAP_CHOWN"]);
    assert_caps(&s, two, two, two, 0, 0);
    assert_eq!(status_fields(&s)["NoNewPrivs"], "0");
}

#[test]
fn non_root_with_ambient_capabilities_keeps_exactly_them() {
    let caps = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]
    });
    let bnd = mask(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let amb = mask(&["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]);
    // CAP_CHOWN in use: a uid 1000 process gives its file to root.
    let script = "cat /proc/self/status; touch /tmp/mine; chown 0:0 /tmp/mine && echo chown-ok";

    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = caps.clone();
    b.sh(script);
    let s = ok(&rt.run_bundle("run", &b, &id("caps-amb"), &[]));
    assert_caps(&s, bnd, amb, amb, amb, amb);
    assert!(s.contains("chown-ok"), "{s}");

    // The same through exec.
    let mut b = Bundle::new();
    b.sh("true");
    let cid = running(&rt, &mut b, "caps-amb-exec");
    let s = ok(&exec_json(
        &rt,
        &cid,
        json!({"args": ["sh", "-c", script], "cwd": "/", "user": {"uid": 1000, "gid": 1000},
               "capabilities": caps, "noNewPrivileges": true, "env": ["PATH=/bin"]}),
    ));
    assert_caps(&s, bnd, amb, amb, amb, amb);
    assert!(s.contains("chown-ok"), "{s}");
}

#[test]
fn non_root_without_ambient_capabilities_has_none() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_CHOWN"],
        "permitted": ["CAP_CHOWN"]
    });
    b.sh("cat /proc/self/status; touch /tmp/mine; chown 0:0 /tmp/mine 2>&1 || echo chown-denied");
    let s = ok(&rt.run_bundle("run", &b, &id("caps-none"), &[]));
    assert_caps(&s, mask(&["CAP_CHOWN", "CAP_KILL"]), 0, 0, 0, 0);
    assert!(s.contains("chown-denied"), "{s}");

    let mut b = Bundle::new();
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] =
        json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
    b.sh("true");
    let cid = running(&rt, &mut b, "caps-none-exec");
    let s = ok(&rt.run(&["exec", &cid, "cat", "/proc/self/status"]));
    assert_caps(&s, mask(&["CAP_KILL"]), 0, 0, 0, 0);
}

#[test]
fn no_new_privs_and_seccomp_fields() {
    for nnp in [true, false] {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        b.config["process"]["noNewPrivileges"] = nnp.into();
        b.sh("true");
        let cid = running(&rt, &mut b, "nnp");
        let init_pid = rt.state(&cid)["pid"].as_i64().unwrap();
        let init = std::fs::read_to_string(format!("/proc/{init_pid}/status")).unwrap();
        let want = if nnp { "1" } else { "0" };
        assert_eq!(status_fields(&init)["NoNewPrivs"], want);
        assert_eq!(status_fields(&init)["Seccomp"], "0", "no filter configured");
        let s = ok(&rt.run(&["exec", &cid, "cat", "/proc/self/status"]));
        assert_eq!(status_fields(&s)["NoNewPrivs"], want);
        // runc's --no-new-privs on exec turns it on.
        let s = ok(&rt.run(&["exec", "--no-new-privs", &cid, "cat", "/proc/self/status"]));
        assert_eq!(status_fields(&s)["NoNewPrivs"], "1");
    }
}

#[test]
fn masked_and_readonly_paths_hold_for_init_and_exec() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    std::fs::write(b.rootfs().join("etc/secret"), "top secret\n").unwrap();
    std::fs::create_dir_all(b.rootfs().join("secretdir")).unwrap();
    std::fs::write(b.rootfs().join("secretdir/key"), "key\n").unwrap();
    std::fs::create_dir_all(b.rootfs().join("data")).unwrap();
    b.config["linux"]["maskedPaths"] = json!([
        "/etc/secret",
        "/secretdir",
        "/proc/timer_list",
        "/no/such/path"
    ]);
    b.config["linux"]["readonlyPaths"] = json!(["/data", "/proc/sys"]);
    let check = "wc -c < /etc/secret; ls -A /secretdir | wc -l; touch /secretdir/x 2>/dev/null && echo dir-writable || echo dir-ro; \
                 wc -c < /proc/timer_list; touch /data/x 2>&1; touch /tmp/rw && echo rw-elsewhere; \
                 echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-ro";
    b.sh(check);
    let cid = running(&rt, &mut b, "masked");
    let want_init =
        "0\n0\ndir-ro\n0\ntouch: /data/x: Read-only file system\nrw-elsewhere\nsys-ro\n";
    // The init ran `check` before sleeping; run it again through exec.
    let s = ok(&rt.run(&["exec", &cid, "sh", "-c", &format!("{check} 2>&1")]));
    assert_eq!(s, want_init);
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("etc/secret")).unwrap(),
        "top secret\n",
        "masking does not touch the file itself"
    );
}

#[test]
fn user_namespace_maps_and_mapped_owners() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup");
    // Files owned by mapped host ids show as their container ids.
    let f = b.rootfs().join("etc/owned");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(201000), Some(201005)).unwrap();
    std::os::unix::fs::chown(b.rootfs().join("tmp"), Some(200000), Some(200000)).unwrap();
    let check = "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; stat -c '%u:%g' /etc/owned /bin/busybox";
    b.sh(check);
    let cid = running(&rt, &mut b, "userns");
    let want = "0 200000 65536\n0 200000 65536\nallow\n0\n1000:1005\n65534:65534\n";
    let norm = |s: &str| -> String {
        s.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let s = ok(&rt.run(&["exec", &cid, "sh", "-c", check]));
    assert_eq!(norm(&s), want);
    // From the host: the init runs as host uid 200000.
    let init_pid = rt.state(&cid)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init_pid}/status")).unwrap();
    assert!(
        status.contains("Uid:\t200000\t200000\t200000\t200000"),
        "{status}"
    );
    // And a file the container creates is owned by a mapped host id.
    ok(&rt.run(&[
        "exec",
        "--user",
        "1000:1000",
        &cid,
        "touch",
        "/tmp/made-inside",
    ]));
    let meta = std::fs::metadata(b.rootfs().join("tmp/made-inside")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (201000, 201000));
}

#[test]
fn lsm_requests_without_the_lsm_are_refused() {
    // This host runs neither AppArmor nor SELinux (the kernel reports its
    // active LSMs); asking for either must fail, not run unconfined.
    let active = berth::runtime::lsm::active();
    assert!(
        !active.has("apparmor") && !active.has("selinux") && !active.names.is_empty(),
        "this test expects a host whose kernel reports LSMs, neither AppArmor nor SELinux: {active:?}"
    );
    for (key, value, want) in [
        (
            "apparmorProfile",
            "docker-default",
            "AppArmor is not enabled on this host",
        ),
        (
            "selinuxLabel",
            "system_u:system_r:container_t:s0:c1,c2",
            "SELinux is not enabled on this host",
        ),
    ] {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        b.config["process"][key] = value.into();
        let cid = id("lsm");
        let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
        assert!(e.contains(want) && e.contains(value), "{e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert_gone(&rt, &cid, &b, None);

        // exec with a process.json asking for it.
        let mut b = Bundle::new();
        b.sh("true");
        let cid = running(&rt, &mut b, "lsm-exec");
        let mut p = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
        p[key] = value.into();
        let e = fails(&exec_json(&rt, &cid, p));
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn unknown_capability_and_rlimit_names_are_errors() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["capabilities"] = json!({"bounding": ["CAP_TEST"]});
    let cid = id("badcap");
    let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
    assert!(e.contains("CAP_TEST"), "{e}");
    assert_gone(&rt, &cid, &b, None);
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]);
    let cid = id("badrlimit");
    let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
    assert!(e.contains("RLIMIT_BOGUS"), "{e}");
    assert_gone(&rt, &cid, &b, None);
}
