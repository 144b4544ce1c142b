//! Rootless containers: berth-runtime run by an unprivileged user (created
//! here if missing), its state under $XDG_RUNTIME_DIR, the caller mapped to
//! root with setgroups denied, newuidmap/newgidmap for ranges from
//! /etc/subuid, no cgroup unless limits need one, and files in the rootfs
//! seen with their mapped owners.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{Value, json};

const USER: &str = "berth-rootless";

/// The unprivileged user the tests run the runtime as, with its subordinate
/// id range: (uid, gid, first subuid, first subgid).
fn user() -> (u32, u32, u32, u32) {
    static USER_IDS: std::sync::OnceLock<(u32, u32, u32, u32)> = std::sync::OnceLock::new();
    *USER_IDS.get_or_init(|| {
        require_root();
        let exists = Command::new("id")
            .arg(USER)
            .output()
            .unwrap()
            .status
            .success();
        if !exists {
            // A regular user: useradd gives it /etc/subuid and /etc/subgid
            // ranges (SUB_UID_* in login.defs).
            let st = Command::new("useradd")
                .args(["--no-create-home", "--shell", "/usr/sbin/nologin", USER])
                .status()
                .expect("useradd");
            assert!(st.success(), "useradd {USER}");
        }
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, USER]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let sub = |file: &str| -> u32 {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            text.lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() == 3 && (f[0] == USER || f[0] == uid.to_string()))
                        .then(|| f[1].parse().ok())
                        .flatten()
                })
                .unwrap_or_else(|| panic!("{USER} has no range in {file}"))
        };
        assert!(
            namespaces_helpers_installed(),
            "newuidmap/newgidmap missing: run `make deps` (Debian package uidmap)"
        );
        (uid, gid, sub("/etc/subuid"), sub("/etc/subgid"))
    })
}

fn namespaces_helpers_installed() -> bool {
    Path::new("/usr/bin/newuidmap").exists() && Path::new("/usr/bin/newgidmap").exists()
}

fn chown_r(path: &Path, uid: u32, gid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A bundle owned by the user, with runc's rootless config (as
/// `berth-runtime spec --rootless` writes it, run as the user) and our
/// fixture rootfs; and an XDG_RUNTIME_DIR of the user's.
struct RootlessBundle {
    b: Bundle,
    xdg: tempfile::TempDir,
}

impl RootlessBundle {
    fn new() -> RootlessBundle {
        let (uid, gid, _, _) = user();
        let b = Bundle::new();
        let xdg = tempfile::Builder::new()
            .prefix("berth-xdg.")
            .tempdir()
            .unwrap();
        chown_r(b.path(), uid, gid);
        chown_r(xdg.path(), uid, gid);
        let mut rb = RootlessBundle { b, xdg };
        let out = output({
            let mut c = rb.cmd();
            c.arg("spec").arg("--rootless").current_dir(rb.b.path());
            c
        });
        ok(&out);
        rb.b.config =
            serde_json::from_slice(&std::fs::read(rb.b.path().join("config.json")).unwrap())
                .unwrap();
        rb.b.config["process"]["terminal"] = false.into();
        rb.b.config["root"]["readonly"] = false.into();
        rb
    }

    /// berth-runtime as the user, with no --root: the state goes under
    /// $XDG_RUNTIME_DIR.
    fn cmd(&self) -> Command {
        let (uid, gid, _, _) = user();
        let mut c = Command::new(Runtime::bin());
        c.uid(uid)
            .gid(gid)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("XDG_RUNTIME_DIR", self.xdg.path());
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut c = self.cmd();
        c.args(args);
        output(c)
    }

    fn run_bundle(&mut self, cmd: &str, id: &str, extra: &[&str]) -> std::process::Output {
        self.b.write();
        let (uid, gid, _, _) = user();
        std::os::unix::fs::chown(self.b.path().join("config.json"), Some(uid), Some(gid)).unwrap();
        let mut c = self.cmd();
        c.arg(cmd)
            .arg("--bundle")
            .arg(self.b.path())
            .args(extra)
            .arg(id);
        output(c)
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.xdg.path().join("berth-runtime").join(id)
    }

    fn wait_up(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.b.rootfs().join("tmp/.up").exists() {
            assert!(std::time::Instant::now() < deadline, "init never ran");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn map_lines(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn rootless_maps_the_caller_to_root_and_denies_setgroups() {
    let (uid, gid, _, _) = user();
    let mut rb = RootlessBundle::new();
    // A file of host root's: unmapped, so nobody's inside, and not the
    // container root's to write.
    let host_root_file = rb.b.rootfs().join("etc/host-root-file");
    std::fs::write(&host_root_file, "root only\n").unwrap();
    std::fs::set_permissions(
        &host_root_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::os::unix::fs::chown(&host_root_file, Some(0), Some(0)).unwrap();
    rb.b.sh(
        "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -g; \
         stat -c '%u:%g' /bin/busybox /etc/host-root-file; \
         echo x >> /etc/host-root-file 2>/dev/null && echo wrote-root-file || echo root-file-refused; \
         touch /tmp/.up; exec sleep 1000",
    );
    let cid = id("rootless");
    ok(&rb.run_bundle("run", &cid, &["-d"]));
    rb.wait_up();
    // The state is under $XDG_RUNTIME_DIR/berth-runtime.
    assert!(rb.state_dir(&cid).join("state.json").exists());
    let st: Value = serde_json::from_str(&ok(&rb.run(&["state", &cid]))).unwrap();
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap();
    // On the host the init is the caller, not root.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains(&format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}")),
        "{status}"
    );
    // No cgroup could be made: none is recorded, none exists.
    assert_eq!(cgroup_dirs(&cid), Vec::<PathBuf>::new());

    // Inside: what the init printed (the first command of its script).
    let check = "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -g; \
                 stat -c '%u:%g' /bin/busybox /etc/host-root-file; \
                 echo x >> /etc/host-root-file 2>/dev/null && echo wrote-root-file || echo root-file-refused";
    let s = ok(&rb.run(&["exec", &cid, "sh", "-c", check]));
    let uid_s = uid.to_string();
    let gid_s = gid.to_string();
    assert_eq!(
        map_lines(&s),
        vec![
            vec!["0", uid_s.as_str(), "1"],
            vec!["0", gid_s.as_str(), "1"],
            vec!["deny"],
            vec!["0"],
            vec!["0"],
            vec!["0:0"],
            vec!["65534:65534"],
            vec!["root-file-refused"],
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&host_root_file).unwrap(),
        "root only\n"
    );
    // What the container creates belongs to the caller on the host.
    ok(&rb.run(&["exec", &cid, "touch", "/tmp/made"]));
    let m = std::fs::metadata(rb.b.rootfs().join("tmp/made")).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid, gid));
    // Supplementary groups cannot be set with setgroups denied: refused
    // clearly rather than ignored.
    let e = fails(&rb.run(&["exec", "--additional-gids", "0", &cid, "true"]));
    assert!(e.contains("setgroups"), "{e}");

    ok(&rb.run(&["delete", "--force", &cid]));
    assert!(!rb.state_dir(&cid).exists());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "{stat}");
}

#[test]
fn rootless_ranges_go_through_newuidmap() {
    let (uid, gid, subuid, subgid) = user();
    let mut rb = RootlessBundle::new();
    rb.b.config["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": uid, "size": 1},
        {"containerID": 1, "hostID": subuid, "size": 65536}
    ]);
    rb.b.config["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": gid, "size": 1},
        {"containerID": 1, "hostID": subgid, "size": 65536}
    ]);
    rb.b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE", "CAP_FOWNER"],
        "effective": ["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE", "CAP_FOWNER"],
        "permitted": ["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE", "CAP_FOWNER"]
    });
    // A file of the container's uid 1000 as the host stores it.
    let f = rb.b.rootfs().join("etc/user-file");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(subuid + 999), Some(subgid + 999)).unwrap();
    rb.b.sh("touch /tmp/.up; exec sleep 1000");
    let cid = id("rootless-range");
    ok(&rb.run_bundle("run", &cid, &["-d"]));
    rb.wait_up();
    let s = ok(&rb.run(&[
        "exec",
        &cid,
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; stat -c '%u:%g' /etc/user-file; \
         touch /tmp/given; chown 1000:1000 /tmp/given && echo chowned",
    ]));
    let (uid_s, gid_s, su, sg) = (
        uid.to_string(),
        gid.to_string(),
        subuid.to_string(),
        subgid.to_string(),
    );
    assert_eq!(
        map_lines(&s),
        vec![
            vec!["0", uid_s.as_str(), "1"],
            vec!["1", su.as_str(), "65536"],
            vec!["0", gid_s.as_str(), "1"],
            vec!["1", sg.as_str(), "65536"],
            vec!["1000:1000"],
            vec!["chowned"],
        ]
    );
    let m = std::fs::metadata(rb.b.rootfs().join("tmp/given")).unwrap();
    assert_eq!((m.uid(), m.gid()), (subuid + 999, subgid + 999));
    // With newgidmap, setgroups stays allowed: supplementary groups work.
    let s = ok(&rb.run(&[
        "exec",
        "--user",
        "1000:1000",
        "--additional-gids",
        "5",
        &cid,
        "sh",
        "-c",
        "id -u; id -G; cat /proc/self/setgroups",
    ]));
    assert_eq!(s, "1000\n1000 5\nallow\n");
    ok(&rb.run(&["delete", "--force", &cid]));
    assert!(!rb.state_dir(&cid).exists());
}

#[test]
fn rootless_refusals_are_clear_and_leave_nothing() {
    let (uid, gid, _, _) = user();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, String)> = vec![
        (
            Box::new(|c: &mut Value| {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "user");
                c["linux"].as_object_mut().unwrap().remove("uidMappings");
                c["linux"].as_object_mut().unwrap().remove("gidMappings");
            }),
            format!("running as uid {uid} (rootless), the config needs a user namespace"),
        ),
        (
            // Ids outside the caller's /etc/subuid range.
            Box::new(move |c: &mut Value| {
                c["linux"]["uidMappings"] = json!([
                    {"containerID": 0, "hostID": uid, "size": 1},
                    {"containerID": 1, "hostID": 900_000_000u32, "size": 10}
                ]);
            }),
            "newuidmap".to_string(),
        ),
        (
            Box::new(|c: &mut Value| {
                c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
            }),
            "rootless: linux.resources sets memory, which needs a cgroup we may write".into(),
        ),
    ];
    for (edit, want) in cases {
        let mut rb = RootlessBundle::new();
        edit(&mut rb.b.config);
        let cid = id("rootless-bad");
        let e = fails(&rb.run_bundle("run", &cid, &[]));
        assert!(e.contains(&want), "want {want:?} in: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(!rb.state_dir(&cid).exists(), "state left behind: {e}");
        assert_eq!(mounts_under(rb.b.path()), Vec::<String>::new());
        assert!(ok(&rb.run(&["list", "-q"])).trim().is_empty());
    }

    // Without --root and without XDG_RUNTIME_DIR there is no state root.
    let rb = RootlessBundle::new();
    let mut c = rb.cmd();
    c.env_remove("XDG_RUNTIME_DIR").args(["list"]);
    let e = fails(&output(c));
    assert!(e.contains("set XDG_RUNTIME_DIR or pass --root"), "{e}");

    // `--rootless false`: cgroup permission errors are errors again.
    let rb = RootlessBundle::new();
    rb.b.write();
    std::os::unix::fs::chown(rb.b.path().join("config.json"), Some(uid), Some(gid)).unwrap();
    let mut c = rb.cmd();
    let cid = id("rootless-nocg");
    c.args(["--rootless", "false", "run", "--bundle"])
        .arg(rb.b.path())
        .arg(&cid);
    let e = fails(&output(c));
    assert!(
        e.contains("cgroup") && e.contains("Permission denied"),
        "{e}"
    );
    assert!(!rb.state_dir(&cid).exists());
}
