//! Faults on purpose: berth SIGKILLed at every named step of `run`, `stop`,
//! `rm` and `pull` (src/fault.rs; each command's steps are learnt from a
//! BERTH_FAULT_TRACE first, so a new step is covered without editing this
//! file), the shim and the container's init SIGKILLed, the engine's disk
//! filled during `pull`, `load` and log writes, a mount and a cgroup.procs
//! write that fail. After each: `ps -a` tells the truth, the next command
//! recovers, nothing leaks (the leak checker) and nothing is lost: logs
//! written before the fault, named volumes and images, re-verified.

// The registry helper lives with the image tests' fixtures, which carry
// their own copy of the leak checker.
#![allow(clippy::duplicate_mod)]

mod common;
#[path = "common/images.rs"]
mod images;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::engine::{Berth, IMAGE};
use common::*;
use sha2::Digest;

/// `berth ARGS` with extra environment (BERTH_FAULT, BERTH_FAULT_TRACE).
fn berth_env(b: &Berth, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = b.cmd();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = output(c);
    b.saw(&out.stdout);
    out
}

/// The distinct fault points in a trace file from line `from` on, in the
/// order first reached.
fn points(trace: &Path, from: usize) -> Vec<String> {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for l in text.lines().skip(from) {
        if !out.iter().any(|o| o == l) {
            out.push(l.to_string());
        }
    }
    out
}

fn trace_len(trace: &Path) -> usize {
    std::fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .count()
}

/// Name and status of every container `ps -a` lists (each inspected).
fn listed(b: &Berth) -> Vec<(String, String)> {
    let ps = b.run(&["ps", "-a", "-q", "--no-trunc"]);
    assert!(ps.status.success(), "ps -a after a fault: {}", stderr(&ps));
    stdout(&ps)
        .lines()
        .map(|id| {
            let v = b.inspect(id);
            (
                v["Name"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string(),
                v["State"]["Status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The status of `name` as ps lists it, if it is listed; at most once.
fn listed_status(b: &Berth, name: &str, point: &str) -> Option<String> {
    let all = listed(b);
    let mine: Vec<&(String, String)> = all.iter().filter(|(n, _)| n == name).collect();
    assert!(
        mine.len() <= 1,
        "after {point}: {name} listed twice: {all:?}"
    );
    for (n, st) in &all {
        assert!(
            [
                "created",
                "running",
                "exited",
                "dead",
                "restarting",
                "paused"
            ]
            .contains(&st.as_str()),
            "after {point}: {n} has status {st:?}"
        );
    }
    mine.first().map(|(_, s)| s.clone())
}

#[track_caller]
fn assert_no_leaks_now(b: &Berth, when: &str) {
    let leaks = b.leaks();
    assert!(
        leaks.is_empty(),
        "after {when}: {} leak(s):\n  {}",
        leaks.len(),
        leaks.join("\n  ")
    );
}

/// A named volume holding a file the test checks after every fault.
fn make_precious_volume(b: &Berth) {
    ok(&b.run(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        IMAGE,
        "sh",
        "-c",
        "echo precious > /data/f",
    ]));
    // The volume is the test's data: it may stay, it must not change.
    b.allow("root/volumes/keep/**");
}

#[track_caller]
fn assert_volume_intact(b: &Berth, when: &str) {
    let data = b.root().join("volumes/keep/_data/f");
    let found = std::fs::read_to_string(&data)
        .or_else(|_| {
            // Wherever the volume keeps its data, a container sees it.
            let out = b.run(&["run", "--rm", "-v", "keep:/data", IMAGE, "cat", "/data/f"]);
            if out.status.success() {
                Ok(stdout(&out))
            } else {
                Err(std::io::Error::other(stderr(&out)))
            }
        })
        .unwrap_or_else(|e| panic!("after {when}: volume keep unreadable: {e}"));
    assert_eq!(found, "precious\n", "after {when}: volume keep changed");
}

/// Whether a point is reached in the shim (or the runtime it runs), not
/// in the command.
fn in_shim(point: &str) -> bool {
    point.starts_with("shim.") || point.starts_with("runtime.")
}

/// The command's exit after a fault: killed by SIGKILL (a point in the
/// CLI: the fault must have fired), or success or a failure that says why
/// in one line (a point in the shim).
#[track_caller]
fn assert_killed_or_failed_cleanly(out: &Output, point: &str) {
    use std::os::unix::process::ExitStatusExt;
    if !in_shim(point) {
        assert_eq!(out.status.signal(), Some(9), "{point}: not killed there");
        return;
    }
    if out.status.success() {
        return;
    }
    let err = stderr(out);
    assert!(
        err.trim().lines().count() == 1 && err.starts_with("berth: "),
        "after {point}: not one clear line: {err:?}"
    );
}

fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

const RUN_WEB: &[&str] = &[
    "run",
    "-d",
    "--name",
    "web",
    "-v",
    "keep:/data",
    "-v",
    "/scratch",
    IMAGE,
    "sh",
    "-c",
    "echo line 1; echo line 2; echo line 3; exec sleep 1000",
];

fn run_web(b: &Berth, env: &[(&str, &str)]) -> Output {
    berth_env(b, env, RUN_WEB)
}

/// `web` is listed as running and its volume is mounted.
#[track_caller]
fn assert_web_works(b: &Berth, when: &str) {
    wait_until("web to run", 20, || b.status("web") == "running");
    let out = b.run(&["exec", "web", "cat", "/data/f"]);
    assert_eq!(ok(&out), "precious\n", "after {when}: volume not in web");
}

/// The log lines of `web`, each checked to be whole.
fn log_lines(b: &Berth, name: &str) -> Vec<String> {
    let out = b.run(&["logs", name]);
    assert!(out.status.success(), "logs {name}: {}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn berth_killed_at_each_step_of_run_recovers() {
    let b = Berth::new();
    make_precious_volume(&b);
    let trace = b.dir.path().join("run.trace");
    b.allow("*.trace");
    ok(&run_web(
        &b,
        &[("BERTH_FAULT_TRACE", trace.to_str().unwrap())],
    ));
    let steps = points(&trace, 0);
    ok(&b.run(&["rm", "-f", "-v", "web"]));
    for want in [
        "create.dir-made",
        "create.recorded",
        "start.prepared",
        "shim.running",
    ] {
        assert!(steps.iter().any(|s| s == want), "{want} not in {steps:?}");
    }
    let mut survived = 0;
    for point in &steps {
        let out = run_web(&b, &[("BERTH_FAULT", point)]);
        assert_killed_or_failed_cleanly(&out, point);
        match listed_status(&b, "web", point).as_deref() {
            // Cut short before the record: the name is free again.
            None => ok(&run_web(&b, &[])),
            Some("running") => String::new(),
            Some(_) => ok(&b.run(&["start", "web"])),
        };
        assert_web_works(&b, point);
        ok(&b.run(&["rm", "-f", "-v", "web"]));
        assert_eq!(listed(&b), vec![], "after {point}: rm left a container");
        assert_volume_intact(&b, point);
        assert_no_leaks_now(&b, &format!("run killed at {point}"));
        survived += 1;
    }
    eprintln!("run: {survived} fault points survived: {steps:?}");
}

#[test]
fn berth_or_shim_killed_at_each_step_of_stop_recovers() {
    let b = Berth::new();
    make_precious_volume(&b);
    let trace = b.dir.path().join("stop.trace");
    b.allow("*.trace");
    let t = trace.to_str().unwrap();
    // The shim inherits the trace from `run`: its stop steps show too.
    ok(&run_web(&b, &[("BERTH_FAULT_TRACE", t)]));
    wait_until("three lines", 20, || log_lines(&b, "web").len() == 3);
    let from = trace_len(&trace);
    ok(&berth_env(
        &b,
        &[("BERTH_FAULT_TRACE", t)],
        &["stop", "-t", "1", "web"],
    ));
    let steps = points(&trace, from);
    ok(&b.run(&["rm", "-f", "-v", "web"]));
    assert!(steps.iter().any(|s| s == "stop.requested"), "{steps:?}");
    assert!(steps.iter().any(|s| s.starts_with("shim.")), "{steps:?}");
    for point in &steps {
        // A shim step's fault rides in the shim's environment, from `run`.
        let in_shim = in_shim(point);
        let shim_env: &[(&str, &str)] = if in_shim {
            &[("BERTH_FAULT", point)]
        } else {
            &[]
        };
        ok(&run_web(&b, shim_env));
        wait_until("three lines", 20, || log_lines(&b, "web").len() == 3);
        let cli_env: &[(&str, &str)] = if in_shim {
            &[]
        } else {
            &[("BERTH_FAULT", point)]
        };
        let out = berth_env(&b, cli_env, &["stop", "-t", "1", "web"]);
        assert_killed_or_failed_cleanly(&out, point);
        // Whatever was cut, the container ends up stopped, and says so.
        wait_until(&format!("web to stop after {point}"), 20, || {
            listed_status(&b, "web", point).as_deref() == Some("exited")
        });
        assert_eq!(
            log_lines(&b, "web"),
            ["line 1", "line 2", "line 3"],
            "after {point}: logs"
        );
        ok(&b.run(&["start", "web"]));
        assert_web_works(&b, point);
        wait_until("the second run's lines", 20, || {
            log_lines(&b, "web").len() == 6
        });
        ok(&b.run(&["rm", "-f", "-v", "web"]));
        assert_volume_intact(&b, point);
        assert_no_leaks_now(&b, &format!("stop killed at {point}"));
    }
    eprintln!("stop: {} fault points survived: {steps:?}", steps.len());
}

#[test]
fn berth_or_shim_killed_at_each_step_of_rm_recovers() {
    let b = Berth::new();
    make_precious_volume(&b);
    let trace = b.dir.path().join("rm.trace");
    b.allow("*.trace");
    let t = trace.to_str().unwrap();
    ok(&run_web(&b, &[("BERTH_FAULT_TRACE", t)]));
    let from = trace_len(&trace);
    ok(&berth_env(
        &b,
        &[("BERTH_FAULT_TRACE", t)],
        &["rm", "-f", "-v", "web"],
    ));
    let steps = points(&trace, from);
    for want in ["rm.runtime-deleted", "rm.dir-retired", "rm.name-released"] {
        assert!(steps.iter().any(|s| s == want), "{want} not in {steps:?}");
    }
    for point in &steps {
        let in_shim = in_shim(point);
        let shim_env: &[(&str, &str)] = if in_shim {
            &[("BERTH_FAULT", point)]
        } else {
            &[]
        };
        ok(&run_web(&b, shim_env));
        let cli_env: &[(&str, &str)] = if in_shim {
            &[]
        } else {
            &[("BERTH_FAULT", point)]
        };
        let out = berth_env(&b, cli_env, &["rm", "-f", "-v", "web"]);
        assert_killed_or_failed_cleanly(&out, point);
        // Removed, or still there and removable; never half there.
        if listed_status(&b, "web", point).is_some() {
            ok(&b.run(&["rm", "-f", "-v", "web"]));
        }
        assert_eq!(listed(&b), vec![], "after {point}");
        // The name is free, the volume whole.
        ok(&run_web(&b, &[]));
        assert_web_works(&b, point);
        ok(&b.run(&["rm", "-f", "-v", "web"]));
        assert_volume_intact(&b, point);
        assert_no_leaks_now(&b, &format!("rm killed at {point}"));
    }
    eprintln!("rm: {} fault points survived: {steps:?}", steps.len());
}

/// Every blob in the store hashes to its name, and every image resolves
/// with all its layers unpacked.
#[track_caller]
fn assert_store_verified(b: &Berth, when: &str) {
    let blobs = b.root().join("blobs/sha256");
    for e in std::fs::read_dir(&blobs).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(e.path()).unwrap();
        let hex: String = sha2::Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, name, "after {when}: blob {name} is corrupt");
    }
    let store = berth::image::Store::open(&b.root()).unwrap();
    for img in store.list().unwrap() {
        let image = store
            .image(&img.id)
            .unwrap_or_else(|e| panic!("after {when}: image {}: {e}", img.id));
        for l in &image.layer_dirs {
            assert!(l.is_dir(), "after {when}: layer {} missing", l.display());
        }
    }
}

fn image_names(b: &Berth) -> String {
    ok(&b.run(&["images"]))
}

#[test]
fn berth_killed_at_each_step_of_pull_recovers() {
    let reg = images::Registry::start(images::Auth::None);
    let src = format!(
        "oci-archive:{}",
        fixtures().join("layers-oci.tar").display()
    );
    reg.push(&src, "test/layers:1", "oci");
    let reference = format!("{}/test/layers:1", reg.host());
    let b = Berth::new();
    let trace = b.dir.path().join("pull.trace");
    b.allow("*.trace");
    let t = trace.to_str().unwrap();
    let pull = ["pull", "--insecure", "-q", reference.as_str()];
    ok(&berth_env(&b, &[("BERTH_FAULT_TRACE", t)], &pull));
    let steps = points(&trace, 0);
    ok(&b.run(&["rmi", &reference]));
    assert!(
        steps.iter().any(|s| s == "image.layer-unpacking"),
        "{steps:?}"
    );
    // Layer steps are reached once per layer: the second layer's too.
    let mut faults: Vec<String> = steps.clone();
    for s in ["image.layer-unpacking", "image.layer-stored"] {
        faults.push(format!("{s}@2"));
    }
    for point in &faults {
        let out = berth_env(&b, &[("BERTH_FAULT", point)], &pull);
        assert_killed_or_failed_cleanly(&out, point);
        // The image is there whole, or not at all.
        let listed = image_names(&b);
        assert!(
            listed.contains("localhost/busybox"),
            "after {point}: {listed}"
        );
        assert_store_verified(&b, point);
        // The next pull finishes the job and sweeps what the kill left.
        ok(&berth_env(&b, &[], &pull));
        assert_store_verified(&b, point);
        ok(&b.run(&["rmi", &reference]));
        assert_no_leaks_now(&b, &format!("pull killed at {point}"));
    }
    eprintln!("pull: {} fault points survived: {faults:?}", faults.len());
}

/// The shim's pid, from the container's state file.
fn shim_pid(b: &Berth, name: &str) -> i32 {
    let id = b.inspect(name)["Id"].as_str().unwrap().to_string();
    let st: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.root().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    st["shim_pid"].as_i64().unwrap() as i32
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z'))
    })
}

fn sigkill(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

#[test]
fn killed_shim_and_killed_init_are_seen_and_recovered() {
    let b = Berth::new();
    make_precious_volume(&b);

    // The shim: the container is reported gone, and the next command puts
    // down what the shim left (the init, its cgroup, mounts, veth).
    ok(&run_web(&b, &[]));
    wait_until("three lines", 20, || log_lines(&b, "web").len() == 3);
    let init = b.inspect("web")["State"]["Pid"].as_i64().unwrap() as i32;
    sigkill(shim_pid(&b, "web"));
    wait_until("ps to see the shim gone", 20, || {
        listed_status(&b, "web", "shim kill").as_deref() == Some("exited")
    });
    assert_eq!(log_lines(&b, "web"), ["line 1", "line 2", "line 3"]);
    ok(&b.run(&["start", "web"]));
    assert!(
        !alive(init),
        "the old init {init} outlived its shim's recovery"
    );
    assert_web_works(&b, "shim kill");
    ok(&b.run(&["rm", "-f", "-v", "web"]));
    assert_no_leaks_now(&b, "shim kill");

    // The init: an exit like any other (137), logs kept, start works.
    ok(&run_web(&b, &[]));
    wait_until("three lines", 20, || log_lines(&b, "web").len() == 3);
    let init = b.inspect("web")["State"]["Pid"].as_i64().unwrap() as i32;
    sigkill(init);
    wait_until("web to exit", 20, || b.status("web") == "exited");
    assert_eq!(b.inspect("web")["State"]["ExitCode"], 137);
    assert_eq!(log_lines(&b, "web"), ["line 1", "line 2", "line 3"]);
    ok(&b.run(&["start", "web"]));
    assert_web_works(&b, "init kill");
    ok(&b.run(&["rm", "-f", "-v", "web"]));
    assert_volume_intact(&b, "init kill");
    assert_no_leaks_now(&b, "init kill");
}

/// Fills the filesystem under `dir` but for about `leave` bytes, with a
/// file the caller deletes to make room again.
fn fill_disk(dir: &Path, leave: u64) -> PathBuf {
    let st = nix::sys::statvfs::statvfs(dir).unwrap();
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    let filler = dir.join("filler");
    let f = std::fs::File::create(&filler).unwrap();
    // fallocate, not set_len: tmpfs charges only written or allocated pages.
    // A running container writes meanwhile: ask for less until it fits,
    // then top up page by page.
    let alloc = |off: u64, len: u64| {
        nix::fcntl::fallocate(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            nix::fcntl::FallocateFlags::empty(),
            off as i64,
            len as i64,
        )
    };
    let mut size = free.saturating_sub(leave);
    while size > 0 && alloc(0, size).is_err() {
        size = size.saturating_sub(256 << 10);
    }
    if leave == 0 {
        while alloc(size, 4096).is_ok() {
            size += 4096;
        }
    }
    filler
}

#[track_caller]
fn assert_one_line_enospc(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what} succeeded on a full disk");
    let err = stderr(out);
    assert!(
        err.trim().lines().count() == 1 && err.starts_with("berth: "),
        "{what}: not one clear line: {err:?}"
    );
    assert!(err.contains("No space left on device"), "{what}: {err}");
}

#[test]
fn a_full_disk_during_pull_and_load_loses_nothing() {
    // random-oci.tar is 4 MB of incompressible layers; the engine root is
    // 12 MB with the busybox fixture in it (about 3 MB), filled to 1 MB
    // free: the import runs out of space in the middle of a layer.
    let reg = images::Registry::start(images::Auth::None);
    let archive = fixtures().join("random-oci.tar");
    reg.push(
        &format!("oci-archive:{}", archive.display()),
        "test/random:1",
        "oci",
    );
    let reference = format!("{}/test/random:1", reg.host());
    let b = Berth::on_tmpfs("12m");
    b.allow("filler");
    let before = image_names(&b);
    let filler = fill_disk(b.dir.path(), 1 << 20);

    let out = b.run(&["pull", "--insecure", "-q", &reference]);
    assert_one_line_enospc(&out, "pull");
    assert_eq!(image_names(&b), before, "a failed pull changed the images");
    assert_store_verified(&b, "pull on a full disk");
    assert_no_leaks_now(&b, "pull on a full disk");

    let out = b.run(&["load", "-q", "-i", archive.to_str().unwrap()]);
    assert_one_line_enospc(&out, "load");
    assert_eq!(image_names(&b), before, "a failed load changed the images");
    assert_store_verified(&b, "load on a full disk");
    assert_no_leaks_now(&b, "load on a full disk");

    // Room again: both work, and the old image still runs.
    std::fs::remove_file(&filler).unwrap();
    ok(&b.run(&["pull", "--insecure", "-q", &reference]));
    ok(&b.run(&["rmi", &reference]));
    ok(&b.run(&["load", "-i", archive.to_str().unwrap()]));
    assert_store_verified(&b, "after room was made");
    assert_eq!(ok(&b.run(&["run", "--rm", IMAGE, "echo", "hi"])), "hi\n");
}

#[test]
fn a_full_disk_during_log_writes_keeps_the_lines_written_before() {
    let b = Berth::on_tmpfs("16m");
    b.allow("filler");
    // Numbered lines, about 1000 a second: some land while the disk is full.
    ok(&b.run(&[
        "run",
        "-d",
        "--name",
        "chatty",
        IMAGE,
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo \"line $i of a log that fills disks\"; usleep 1000; done",
    ]));
    wait_until("some lines", 20, || log_lines(&b, "chatty").len() > 100);
    let filler = fill_disk(b.dir.path(), 0);
    let during = log_lines(&b, "chatty");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_file(&filler).unwrap();
    let n_before = during.len();
    // Writes resume once there is room.
    wait_until("lines after the disk had room", 20, || {
        log_lines(&b, "chatty").len() > n_before + 100
    });
    ok(&b.run(&["stop", "-t", "1", "chatty"]));
    let after = log_lines(&b, "chatty");
    // Every line whole, in order; those read before the fault unchanged.
    assert_eq!(
        &after[..n_before],
        &during[..],
        "lines written before the fault changed"
    );
    let mut last = 0u64;
    let mut gaps = 0;
    for l in &after {
        let n: u64 = l
            .strip_prefix("line ")
            .and_then(|r| r.strip_suffix(" of a log that fills disks"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a broken log line: {l:?}"));
        assert!(n > last, "lines out of order: {n} after {last}");
        gaps += usize::from(n != last + 1);
        last = n;
    }
    eprintln!(
        "log: {} lines kept, {gaps} gap(s) where the disk was full",
        after.len()
    );
    // The rotation cap keeps a chatty container within the root's room;
    // the engine still works.
    ok(&b.run(&["rm", "chatty"]));
    assert_eq!(ok(&b.run(&["run", "--rm", IMAGE, "echo", "hi"])), "hi\n");
}

#[test]
fn a_failing_mount_and_a_failing_cgroup_procs_write_leave_a_removable_container() {
    let b = Berth::new();
    make_precious_volume(&b);
    // A directory bound over a file: the runtime's mount fails (EINVAL).
    let dir = b.dir.path().join("a-dir");
    std::fs::create_dir(&dir).unwrap();
    b.allow("a-dir");
    let bind = format!("{}:/bin/busybox", dir.display());
    let out = b.run(&[
        "run", "-d", "--name", "badmount", "-v", &bind, IMAGE, "true",
    ]);
    let err = fails(&out);
    assert!(err.contains("mount") && err.lines().count() == 1, "{err}");

    // A cpuset parent with no CPUs: the kernel refuses the init's
    // cgroup.procs write (ENOSPC).
    let parent = format!("{}/nocpus", b.cgroup_parent);
    let cpuset = Path::new("/sys/fs/cgroup/cpuset").join(parent.trim_start_matches('/'));
    std::fs::create_dir_all(&cpuset).unwrap();
    let out = b.run(&[
        "run",
        "-d",
        "--name",
        "badcg",
        "--cgroup-parent",
        &parent,
        IMAGE,
        "true",
    ]);
    let err = fails(&out);
    assert!(
        err.contains("cgroup.procs") && err.lines().count() == 1,
        "{err}"
    );

    for name in ["badmount", "badcg"] {
        let st = listed_status(&b, name, name);
        assert!(
            matches!(st.as_deref(), Some("created" | "exited")),
            "{name}: {st:?}"
        );
        ok(&b.run(&["rm", name]));
    }
    // Ours, made above (the engine may have taken the leaf already).
    let _ = std::fs::remove_dir(&cpuset);
    let _ = std::fs::remove_dir(cpuset.parent().unwrap());
    assert_eq!(listed(&b), vec![]);
    assert_volume_intact(&b, "failed mount and cgroup");
    assert_no_leaks_now(&b, "failed mount and cgroup");
}
