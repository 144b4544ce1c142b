//! Device access rules: enforced by the v1 devices controller or, on
//! cgroup v2, by our eBPF program — observed as open(2) succeeding or
//! failing with EPERM inside the container.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth::cgroups::devices::{Policy, Rule, attach, bpf, container_rules};
use common::*;
use serde_json::json;

/// /dev/net/tun (10:200): any process may open it, no capability needed.
fn with_tun(b: &mut Bundle) {
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 438, "uid": 0, "gid": 0}
    ]);
}

// A failed redirection ends a shell that tries it with `exec`: subshells.
const TRY_OPEN: &str = "if (exec 3<>/dev/net/tun) 2>/dev/null; then echo open-ok; else echo open-denied; fi > /tmp/o; \
     if (exec 4</dev/null) 2>/dev/null; then echo null-ok; fi >> /tmp/o; mv /tmp/o /out; sleep 1000";

#[test]
fn a_device_without_a_rule_is_refused() {
    let cg = Cgroups::host();
    let c = Detached::start("dev-deny", TRY_OPEN, with_tun);
    let out = c.out();
    assert!(
        out.contains("open-denied") && out.contains("null-ok"),
        "{out}"
    );
    assert!(!out.contains("open-ok"), "{out}");
    if !cg.is_v2("devices") {
        let list = cg.read("devices", &c.cgroup_path(), "devices.list");
        assert!(!list.contains("c 10:200"), "{list}");
        assert!(list.contains("c 1:3 rwm"), "{list}");
    } else {
        let dir = cg.dir("devices", &c.cgroup_path());
        assert_eq!(
            attach::attached(&dir).unwrap().len(),
            1,
            "one device program"
        );
    }
    c.finish();
}

#[test]
fn a_rule_allows_the_device() {
    let cg = Cgroups::host();
    let c = Detached::start("dev-allow", TRY_OPEN, |b| {
        with_tun(b);
        b.config["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}
        ]);
    });
    let out = c.out();
    assert!(out.contains("open-ok") && out.contains("null-ok"), "{out}");
    if !cg.is_v2("devices") {
        let list = cg.read("devices", &c.cgroup_path(), "devices.list");
        assert!(list.contains("c 10:200 rw"), "{list}");
    }
    c.finish();
}

/// Removes a test cgroup (and kills what is in it) even if the test fails.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..500 {
            if fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Runs `sh -c script` on the host inside the cgroup v2 directory `dir`.
fn sh_in(dir: &Path, script: &str) -> String {
    let procs = dir.join("cgroup.procs");
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    // SAFETY: the closure only writes a file, which is fine after fork.
    unsafe {
        cmd.pre_exec(move || fs::write(&procs, "0"));
    }
    let out = output(cmd);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The eBPF program itself, attached to a cgroup on this host's cgroup2
/// mount (the kernel consults it on a hybrid host too): the v2 path is
/// exercised everywhere, not only in the v2 VM.
#[test]
fn bpf_device_filter_enforces_and_replaces() {
    require_root();
    let cg = Cgroups::host();
    let v2 = cg.v2_mount().expect("a cgroup2 mount");
    let dir = v2.join(format!("berth-test-bpf-{}", std::process::id()));
    fs::create_dir(&dir).unwrap();
    let _guard = TestCgroup(dir.clone());
    let script = "if (exec 3<>/dev/net/tun) 2>/dev/null; then echo tun-ok; else echo tun-denied; fi; \
                  if (exec 4</dev/null) 2>/dev/null; then echo null-ok; else echo null-denied; fi";

    let deny = Policy::from_rules(&container_rules(&[]).unwrap());
    attach::replace(&dir, &bpf::program(&deny)).unwrap();
    assert_eq!(attach::attached(&dir).unwrap().len(), 1);
    assert_eq!(sh_in(&dir, script), "tun-denied\nnull-ok\n");

    let rule: oci_spec::runtime::LinuxDeviceCgroup = serde_json::from_value(
        json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}),
    )
    .unwrap();
    let allow = Policy::from_rules(&container_rules(&[rule]).unwrap());
    attach::replace(&dir, &bpf::program(&allow)).unwrap();
    assert_eq!(
        attach::attached(&dir).unwrap().len(),
        1,
        "the old program was detached"
    );
    assert_eq!(sh_in(&dir, script), "tun-ok\nnull-ok\n");

    // Read-only access asked for, write forbidden: open O_RDWR is refused.
    let ro = Policy::from_rules(&[
        Rule::from_oci(0, &serde_json::from_value(json!({"allow": false})).unwrap()).unwrap(),
        Rule::from_oci(
            1,
            &serde_json::from_value(
                json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}),
            )
            .unwrap(),
        )
        .unwrap(),
    ]);
    attach::replace(&dir, &bpf::program(&ro)).unwrap();
    let out = sh_in(
        &dir,
        // (2>&- rather than 2>/dev/null: writing /dev/null is refused now.)
        "if (exec 3</dev/null) 2>&-; then echo r-ok; fi; \
         if (exec 4<>/dev/null) 2>&-; then echo rw-ok; else echo rw-denied; fi",
    );
    assert_eq!(out, "r-ok\nrw-denied\n");
}
