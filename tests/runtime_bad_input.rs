//! Bad input gets a clear error, a non-zero exit, and leaves nothing behind:
//! no state dir, no cgroup, no mount, no process, nothing on the host.

mod common;

use std::os::unix::fs::symlink;

use common::*;
use serde_json::json;

#[track_caller]
fn refused(rt: &Runtime, b: &Bundle, cid: &str, want: &str) {
    let e = fails(&rt.run_bundle("create", b, cid, &[]));
    assert!(e.contains(want), "error should mention {want:?}: {e}");
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    assert_gone(rt, cid, b, None);
    assert!(rt.ids().is_empty(), "no container listed");
}

#[test]
fn missing_bundle() {
    let rt = Runtime::new();
    let cid = id("nobundle");
    let e = fails(&rt.run(&["create", "--bundle", "/nonexistent/bundle", &cid]));
    assert!(e.contains("/nonexistent/bundle/config.json"), "{e}");
    assert!(!rt.root.path().join(&cid).exists());
}

#[test]
fn malformed_config() {
    let rt = Runtime::new();
    let b = Bundle::new();
    b.write();
    std::fs::write(
        b.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": [}",
    )
    .unwrap();
    let cid = id("badjson");
    let e = fails(&rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &cid]));
    assert!(e.contains("config.json"), "{e}");
    assert_gone(&rt, &cid, &b, None);
}

#[test]
fn wrong_types_and_values() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["args"] = json!("echo");
    refused(&rt, &b, &id("types"), "config.json");
    let mut b = Bundle::new();
    b.config["process"]["cwd"] = "relative".into();
    refused(&rt, &b, &id("cwd"), "cwd");
    let mut b = Bundle::new();
    b.config["process"]["args"] = json!([]);
    refused(&rt, &b, &id("noargs"), "process.args");
    let mut b = Bundle::new();
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]);
    refused(&rt, &b, &id("rlimit"), "RLIMIT_BOGUS");
    let mut b = Bundle::new();
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_TEST"]);
    refused(&rt, &b, &id("cap"), "CAP_TEST");
    let mut b = Bundle::new();
    b.config["linux"]["sysctl"] = json!({"vm.swappiness": "10"});
    refused(&rt, &b, &id("sysctl"), "vm.swappiness");
}

#[test]
fn unknown_namespace_type() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    refused(&rt, &b, &id("ns"), "bogus");
}

#[test]
fn program_not_found() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["no-such-program"]);
    refused(&rt, &b, &id("noprog"), "executable file not found in $PATH");
}

#[test]
fn mount_destination_escaping_through_a_symlink() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // A planted symlink that climbs out of the rootfs.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("escaped");
    symlink(
        format!("../../../../../../../../..{}", target.display()),
        b.rootfs().join("evil"),
    )
    .unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"}));
    refused(&rt, &b, &id("escape"), "escapes the container root");
    assert!(!target.exists(), "nothing may be created on the host");
    assert_eq!(mounts_under(outside.path()), Vec::<String>::new());
}

#[test]
fn absolute_symlink_resolves_inside_the_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), b.rootfs().join("abs")).unwrap();
    b.config["root"]["readonly"] = false.into();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/abs/m", "type": "tmpfs", "source": "tmpfs"}));
    b.args(&["true"]);
    ok(&rt.run_bundle("run", &b, &id("abslink"), &[]));
    // The link's target was taken inside the rootfs, never on the host.
    assert!(
        b.rootfs()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("m")
            .is_dir()
    );
    assert!(!outside.path().join("m").exists());
}

#[test]
fn proc_as_a_symlink_is_refused() {
    // CVE-2019-19921: a rootfs whose /proc is a symlink.
    let rt = Runtime::new();
    let b = Bundle::new();
    std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
    symlink("/tmp", b.rootfs().join("proc")).unwrap();
    refused(&rt, &b, &id("proclink"), "symlink");
}

#[test]
fn bind_source_missing() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": "/nonexistent/src", "options": ["rbind"]}));
    refused(&rt, &b, &id("nosrc"), "/nonexistent/src");
}

#[test]
fn invalid_ids() {
    let rt = Runtime::new();
    let b = Bundle::new();
    b.write();
    for bad in ["../escape", "a/b", ".hidden"] {
        let e = fails(&rt.run(&["create", "--bundle", b.path().to_str().unwrap(), bad]));
        assert!(e.contains("invalid"), "{e}");
    }
    assert!(
        std::fs::read_dir(rt.root.path())
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
}

#[test]
fn wrong_state_commands() {
    let rt = Runtime::new();
    let e = fails(&rt.run(&["start", "ghost"]));
    assert!(e.contains("does not exist"), "{e}");
    let e = fails(&rt.run(&["kill", "ghost"]));
    assert!(e.contains("does not exist"), "{e}");
    let e = fails(&rt.run(&["pause", "ghost"]));
    assert!(e.contains("does not exist"), "{e}");
}
