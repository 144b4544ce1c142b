//! The leak checker (tests/common/leaks.rs) catches what it claims to: each
//! kind of leak is made on purpose inside a test's scope and must be
//! reported, and once undone the report is empty again. A checker that
//! never fails would make every other suite's "no leak" meaningless.

mod common;

use std::process::Command;

use common::engine::Berth;
use common::leaks::TAG_VAR;
use common::*;

fn has(leaks: &[String], what: &str) -> bool {
    leaks.iter().any(|l| l.contains(what))
}

#[test]
fn every_kind_of_engine_leak_is_reported() {
    let b = Berth::new();
    assert_eq!(b.leaks(), Vec::<String>::new(), "a fresh engine is clean");

    // A mount under the engine root.
    let mnt = b.root().join("containers/leaked-mount");
    std::fs::create_dir_all(&mnt).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &mnt,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    // A cgroup under the engine's parent, in every hierarchy.
    let mut cgroups = Vec::new();
    for line in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        let (pre, post) = line.split_once(" - ").unwrap();
        if post.starts_with("cgroup ") || post.starts_with("cgroup2 ") {
            let mp = pre.split(' ').nth(4).unwrap();
            let d = std::path::Path::new(mp)
                .join(b.cgroup_parent.trim_start_matches('/'))
                .join("leaked");
            std::fs::create_dir_all(&d).unwrap();
            cgroups.push(d);
        }
    }
    // A process carrying the engine's tag, and its child.
    let mut proc_ = Command::new("sh")
        .args(["-c", "sleep 1000 & wait"])
        .env(TAG_VAR, b.checker().scope.tag.clone())
        .spawn()
        .unwrap();
    // An fd of ours on a file in the engine root.
    let fd = std::fs::File::open(b.root().join("repositories.json")).unwrap();
    // A file where none should be, and a store file gone.
    std::fs::write(b.root().join("containers/leaked-file"), "x").unwrap();
    std::fs::write(b.root().join("tmp/write-1-1"), "x").unwrap();
    // The engine's bridge and nft table.
    let st = Command::new("ip")
        .args(["link", "add", &b.bridge, "type", "bridge"])
        .status()
        .unwrap();
    assert!(st.success());
    let table = format!("berth_{}", b.bridge);
    let st = Command::new("nft")
        .args(["add", "table", "inet", &table])
        .status()
        .unwrap();
    assert!(st.success());

    // Processes take a moment to show their environment.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let leaks = b.leaks();
    for what in [
        "mount left behind: ",
        "leaked-mount",
        "cgroup left behind: ",
        "/leaked",
        "process left behind: ",
        "sleep 1000",
        "fd left behind: ",
        "repositories.json",
        "file left behind: ",
        "containers/leaked-file",
        "tmp/write-1-1",
        &format!("link left behind: {}", b.bridge),
        &format!("nft left behind: table {table}"),
    ] {
        assert!(has(&leaks, what), "not reported: {what:?} in {leaks:#?}");
    }

    // Undone, nothing is reported.
    nix::mount::umount(&mnt).unwrap();
    std::fs::remove_dir(&mnt).unwrap();
    for d in cgroups.iter().rev() {
        std::fs::remove_dir(d).unwrap();
        let _ = std::fs::remove_dir(d.parent().unwrap());
    }
    let _ = Command::new("pkill")
        .args(["-KILL", "-P", &proc_.id().to_string()])
        .status();
    proc_.kill().unwrap();
    proc_.wait().unwrap();
    drop(fd);
    std::fs::remove_file(b.root().join("containers/leaked-file")).unwrap();
    std::fs::remove_file(b.root().join("tmp/write-1-1")).unwrap();
    Command::new("ip")
        .args(["link", "del", &b.bridge])
        .status()
        .unwrap();
    Command::new("nft")
        .args(["delete", "table", "inet", &table])
        .status()
        .unwrap();
    b.wait_for("the leaked sleep to go", || {
        !has(&b.leaks(), "process left behind")
    });
    assert_eq!(b.leaks(), Vec::<String>::new());
}

#[test]
fn runtime_state_and_cgroups_are_checked() {
    let rt = Runtime::new();
    let cid = id("leaky");
    std::fs::create_dir(rt.root.path().join(&cid)).unwrap();
    // The cgroup /berth/ID in one hierarchy; /berth is shared with other
    // tests, whose deletes may remove it between our mkdirs.
    let mp = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.starts_with("cgroup ") || post.starts_with("cgroup2 "))
                .then(|| pre.split(' ').nth(4).map(str::to_string))
                .flatten()
        })
        .expect("a cgroup hierarchy");
    let cg = std::path::Path::new(&mp).join("berth").join(&cid);
    for _ in 0..20 {
        if std::fs::create_dir_all(&cg).is_ok() {
            break;
        }
    }
    assert!(cg.is_dir());
    let leaks = rt.leaks();
    let state = rt.root.path().join(&cid);
    assert!(
        has(
            &leaks,
            &format!("file left behind: {} (dir", state.display())
        ),
        "{leaks:#?}"
    );
    assert!(
        has(&leaks, &format!("cgroup left behind: {}", cg.display())),
        "{leaks:#?}"
    );
    std::fs::remove_dir(&state).unwrap();
    std::fs::remove_dir(&cg).unwrap();
    let _ = std::fs::remove_dir(cg.parent().unwrap());
    assert_eq!(rt.leaks(), Vec::<String>::new());
}
