//! The runc CVE classes, each performed against berth-runtime with a bundle
//! built for the attack, asserting that it fails.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A private copy of the runtime binary, so an attack that succeeded in
/// writing it would be seen here and hurt no other test.
struct BinCopy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    original: Vec<u8>,
}

impl BinCopy {
    fn new() -> BinCopy {
        let dir = tempfile::Builder::new()
            .prefix("berth-cve-bin.")
            .tempdir()
            .unwrap();
        let path = dir.path().join("berth-runtime");
        std::fs::copy(Runtime::bin(), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let original = std::fs::read(&path).unwrap();
        BinCopy {
            _dir: dir,
            path,
            original,
        }
    }

    fn cmd(&self, rt: &Runtime) -> std::process::Command {
        let mut c = std::process::Command::new(&self.path);
        c.arg("--root").arg(rt.root.path());
        c
    }

    fn run(&self, rt: &Runtime, args: &[&str]) -> std::process::Output {
        let mut c = self.cmd(rt);
        c.args(args);
        output(c)
    }

    #[track_caller]
    fn assert_unmodified(&self) {
        let now = std::fs::read(&self.path).unwrap();
        assert!(
            now == self.original,
            "the runtime binary {} was modified",
            self.path.display()
        );
    }
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// CVE-2019-5736: overwriting the runtime through /proc/self/exe.

#[test]
fn cve_2019_5736_proc_self_exe_interpreter_never_runs_the_runtime() {
    let bin = BinCopy::new();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    // The classic payload: a program whose interpreter is "whatever is
    // exec'ing me". Were that the runtime, it would run inside the
    // container and could be opened through /proc/PID/exe.
    let evil = b.rootfs().join("evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    b.args(&["/evil"]);
    b.write();
    let mut c = bin.cmd(&rt);
    c.args([
        "run",
        "--bundle",
        b.path().to_str().unwrap(),
        &id("cve5736"),
    ]);
    let out = output(c);
    // The interpreter is the sealed exec stub: it re-runs itself with no
    // program left and gives up.
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("berth: exec (nothing) failed"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("Usage") && !stderr(&out).contains("berth-runtime"),
        "the runtime ran inside the container: {}",
        stderr(&out)
    );
    bin.assert_unmodified();

    // The same through exec.
    b.sh("touch /tmp/up; exec sleep 1000");
    b.write();
    let cid = id("cve5736-exec");
    let mut c = bin.cmd(&rt);
    c.args(["run", "-d", "--bundle", b.path().to_str().unwrap(), &cid]);
    ok(&output(c));
    wait_for(&b.rootfs().join("tmp/up"), "init never ran");
    let out = bin.run(&rt, &["exec", &cid, "/evil"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("Usage") && !stderr(&out).contains("Usage"),
        "{}",
        stderr(&out)
    );
    // What the container sees as the exe of a process started by the
    // runtime: the stub's memfd or the program, never the runtime.
    let out = bin.run(&rt, &["exec", &cid, "readlink", "/proc/self/exe"]);
    assert_eq!(ok(&out), "/bin/busybox\n");
    bin.assert_unmodified();
    ok(&bin.run(&rt, &["delete", "--force", &cid]));
}

#[test]
fn cve_2019_5736_container_cannot_open_the_runtime_during_exec() {
    let bin = BinCopy::new();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    // Root in the container with the usual capabilities, watching every
    // process that appears: any exe link it can read is recorded, and it
    // tries to write through it (what the exploit does to the runtime).
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"],
        "effective": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"],
        "permitted": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]
    });
    b.sh(r#"touch /tmp/up
        while [ ! -e /tmp/stop ]; do
          for d in /proc/[0-9]*; do
            read c < $d/comm 2>/dev/null || continue
            case "$c" in berth-runtime) echo "$d" >> /tmp/runtime-seen ;; esac
            t=$(readlink $d/exe 2>/dev/null) || continue
            case "$t" in /bin/busybox) continue ;; esac
            echo "$t" >> /tmp/exe-seen
            (echo PWNED >> $d/exe) 2>/dev/null && echo "$t" >> /tmp/wrote
          done
        done
        touch /tmp/stopped; exec sleep 1000"#);
    b.write();
    let cid = id("cve5736-race");
    let mut c = bin.cmd(&rt);
    c.args(["run", "-d", "--bundle", b.path().to_str().unwrap(), &cid]);
    ok(&output(c));
    wait_for(&b.rootfs().join("tmp/up"), "init never ran");

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut runs = 0;
    // Keep exec'ing until the watcher has seen an exec'd runtime process in
    // the container (so the race was really on), and at least 20 times.
    while runs < 20 || !b.rootfs().join("tmp/runtime-seen").exists() {
        assert!(
            Instant::now() < deadline,
            "the watcher never saw an exec'd runtime process in 60 s ({runs} execs)"
        );
        ok(&bin.run(&rt, &["exec", &cid, "true"]));
        runs += 1;
    }
    std::fs::write(b.rootfs().join("tmp/stop"), "").unwrap();
    wait_for(&b.rootfs().join("tmp/stopped"), "the watcher never stopped");
    let seen = std::fs::read_to_string(b.rootfs().join("tmp/exe-seen")).unwrap_or_default();
    let wrote = std::fs::read_to_string(b.rootfs().join("tmp/wrote")).unwrap_or_default();
    assert!(
        !seen.contains("berth-runtime") && !seen.contains(bin.path.to_str().unwrap()),
        "the container could read the runtime's exe link: {seen}"
    );
    assert_eq!(wrote, "", "the container wrote through an exe link");
    // Whatever it did see is the sealed stub (or nothing).
    for l in seen.lines() {
        assert!(l.starts_with("/memfd:berth-exec"), "unexpected exe {l}");
    }
    bin.assert_unmodified();
    ok(&bin.run(&rt, &["delete", "--force", &cid]));
}

// ---------------------------------------------------------------------------
// CVE-2024-21626: leaked host fds, and a cwd through /proc/self/fd.

/// A command whose fds 3..=10 are open (not close-on-exec) on a host
/// directory, as a careless caller or a runtime leak would leave them.
/// The returned file must outlive the spawn.
fn with_leaked_fds(
    mut c: std::process::Command,
    host_dir: &Path,
) -> (std::process::Command, std::fs::File) {
    let dir = std::fs::File::open(host_dir).unwrap();
    let raw = dir.as_raw_fd();
    // SAFETY: dup2 only, between fork and exec.
    unsafe {
        c.pre_exec(move || {
            for fd in 3..=10 {
                if fd != raw && libc::dup2(raw, fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    (c, dir)
}

#[test]
fn cve_2024_21626_no_host_fd_reaches_the_container() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("HOST-SECRET"), "x").unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    b.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '; touch /tmp/up; exec sleep 1000");
    b.write();
    let cid = id("cve21626");
    let mut c = rt.cmd();
    c.args(["run", "-d", "--bundle", b.path().to_str().unwrap(), &cid]);
    // The detached init writes after `run -d` returns: its stdout is a
    // file read once the init says it is done, not the captured output.
    let init_out = host.path().join("init.out");
    let file = std::fs::File::create(&init_out).unwrap();
    let (mut c, _dir) = with_leaked_fds(c, host.path());
    c.stdin(std::process::Stdio::null()).stdout(file);
    let st = c.status().unwrap();
    assert!(st.success(), "run -d failed: {st}");
    wait_for(&b.rootfs().join("tmp/up"), "init never ran");
    // The init: stdio, and the directory ls itself opened.
    assert_eq!(
        std::fs::read_to_string(&init_out).unwrap().trim(),
        "0 1 2 3"
    );

    let mut c = rt.cmd();
    c.args([
        "exec",
        &cid,
        "sh",
        "-c",
        "ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    let (c, _dir) = with_leaked_fds(c, host.path());
    let out = output(c);
    assert_eq!(ok(&out).trim(), "0 1 2 3");
    // --preserve-fds passes exactly what it names.
    let mut c = rt.cmd();
    c.args([
        "exec",
        "--preserve-fds",
        "2",
        &cid,
        "sh",
        "-c",
        "ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    let (c, _dir) = with_leaked_fds(c, host.path());
    let out = output(c);
    assert_eq!(ok(&out).trim(), "0 1 2 3 4 5");
    ok(&rt.run(&["delete", "--force", &cid]));
}

#[test]
fn cve_2024_21626_cwd_through_proc_self_fd_stays_inside() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("HOST-SECRET"), "x").unwrap();
    let rt = Runtime::new();
    let probe = "pwd; ls -a; touch PWNED 2>/dev/null; ls ../../../ 2>/dev/null | head -50";
    for n in 3..=10 {
        // As the init's cwd.
        let mut b = Bundle::new();
        b.config["root"]["readonly"] = false.into();
        b.config["process"]["cwd"] = format!("/proc/self/fd/{n}").into();
        b.sh(probe);
        b.write();
        let mut c = rt.cmd();
        c.args([
            "run",
            "--bundle",
            b.path().to_str().unwrap(),
            &id("cve21626-cwd"),
        ]);
        let (c, _dir) = with_leaked_fds(c, host.path());
        let out = output(c);
        if out.status.success() {
            assert!(
                !stdout(&out).contains("HOST-SECRET"),
                "fd {n}: {}",
                stdout(&out)
            );
        } else {
            assert!(stderr(&out).contains("cwd"), "fd {n}: {}", stderr(&out));
        }
    }
    // As an exec'd process's cwd.
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    b.sh("touch /tmp/up; exec sleep 1000");
    let cid = id("cve21626-exec");
    ok(&rt.run_bundle("run", &b, &cid, &["-d"]));
    wait_for(&b.rootfs().join("tmp/up"), "init never ran");
    for n in 3..=10 {
        let mut c = rt.cmd();
        let cwd = format!("/proc/self/fd/{n}");
        c.args(["exec", "--cwd", &cwd, &cid, "sh", "-c", probe]);
        let (c, _dir) = with_leaked_fds(c, host.path());
        let out = output(c);
        if out.status.success() {
            assert!(
                !stdout(&out).contains("HOST-SECRET"),
                "fd {n}: {}",
                stdout(&out)
            );
        } else {
            assert!(stderr(&out).contains("cwd"), "fd {n}: {}", stderr(&out));
        }
    }
    ok(&rt.run(&["delete", "--force", &cid]));
    let entries: Vec<_> = std::fs::read_dir(host.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "the host directory was written to");
}

// ---------------------------------------------------------------------------
// CVE-2019-19921 / CVE-2021-30465 / CVE-2023-27561: mount targets swapped
// for symlinks to host paths while the container is being made.

/// Swaps two names in a directory (RENAME_EXCHANGE) until stopped.
fn racer(
    dir: PathBuf,
    a: &'static str,
    b: &'static str,
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicUsize>,
) {
    let d = std::fs::File::open(&dir).unwrap();
    let ca = std::ffi::CString::new(a).unwrap();
    let cb = std::ffi::CString::new(b).unwrap();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: renameat2 with two C strings relative to our dir fd.
        let r = unsafe {
            libc::renameat2(
                d.as_raw_fd(),
                ca.as_ptr(),
                d.as_raw_fd(),
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r == 0 {
            swaps.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[track_caller]
fn assert_untouched(victim: &Path) {
    let entries: Vec<_> = std::fs::read_dir(victim).unwrap().collect();
    assert!(
        entries.is_empty(),
        "something was created on the host in {}",
        victim.display()
    );
    assert_eq!(
        mounts_under(victim),
        Vec::<String>::new(),
        "something was mounted on the host"
    );
}

#[test]
fn cve_2021_30465_mount_target_swapped_for_a_host_symlink() {
    let victim = tempfile::Builder::new()
        .prefix("berth-victim.")
        .tempdir()
        .unwrap();
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("SOURCE"), "from the bind source\n").unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let mnt = b.rootfs().join("mnt");
    std::fs::create_dir_all(mnt.join("target")).unwrap();
    // The symlink points at a host path; a runtime that followed it on the
    // host would create target/sub/dir there and mount on it.
    symlink(victim.path(), mnt.join("swap")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt/target/sub/dir", "type": "bind",
        "source": source.path(), "options": ["rbind", "ro"]
    }));
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt/target/tmp", "type": "tmpfs", "source": "tmpfs"
    }));
    b.sh("cat /mnt/target/sub/dir/SOURCE 2>/dev/null; true");
    b.write();

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let t = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        std::thread::spawn(move || racer(mnt, "target", "swap", stop, swaps))
    };
    let (mut good, mut refused) = (0, 0);
    for _ in 0..40 {
        let cid = id("cve30465");
        let out = rt.run_bundle("run", &b, &cid, &[]);
        if out.status.success() {
            good += 1;
        } else {
            // A clean refusal (the walk saw the swap), on one line.
            let e = fails(&out);
            assert_eq!(e.trim().lines().count(), 1, "{e}");
            refused += 1;
        }
        assert_untouched(victim.path());
        assert_gone(&rt, &cid, &b, None);
    }
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    assert!(
        swaps.load(Ordering::Relaxed) > 100,
        "the racer did not race"
    );
    assert_untouched(victim.path());
    assert!(good + refused == 40);
    eprintln!(
        "{good} ran, {refused} refused, {} swaps",
        swaps.load(Ordering::Relaxed)
    );
}

#[test]
fn cve_2019_19921_proc_swapped_for_a_symlink_during_create() {
    let victim = tempfile::Builder::new()
        .prefix("berth-victim.")
        .tempdir()
        .unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    // File masks and a read-only bind: none of them goes through the
    // container's /proc while being made, so only resolving them from the
    // procfs mount itself keeps a renamed /proc from dodging them.
    b.config["linux"]["maskedPaths"] = json!(["/proc/timer_list", "/proc/keys"]);
    b.config["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    symlink(victim.path(), b.rootfs().join("proclink")).unwrap();
    // Whatever procfs the container can reach, under either name, must be
    // the masked, read-only one the config describes. (Checked once the
    // racer has stopped: the container's own view would race it too.)
    b.sh("for d in /proc /proclink; do \
           if [ -r $d/self/status ]; then \
             echo \"procfs $d timer_list=$(wc -c < $d/timer_list) keys=$(wc -c < $d/keys)\"; \
             echo 1 > $d/sys/kernel/domainname 2>/dev/null && echo \"$d sys-writable\"; \
           fi; \
         done > /result.tmp; mv /result.tmp /result");
    b.write();
    let (mut refused, mut seen, mut swaps_total) = (0, 0, 0);
    for _ in 0..40 {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicUsize::new(0));
        let t = {
            let (stop, swaps, root) = (stop.clone(), swaps.clone(), b.rootfs());
            std::thread::spawn(move || racer(root, "proc", "proclink", stop, swaps))
        };
        let cid = id("cve19921");
        let _ = std::fs::remove_file(b.rootfs().join("result"));
        let out = rt.run_bundle("create", &b, &cid, &[]);
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        swaps_total += swaps.load(Ordering::Relaxed);
        if out.status.success() {
            ok(&rt.run(&["start", &cid]));
            wait_for(&b.rootfs().join("result"), "the container never reported");
            let result = std::fs::read_to_string(b.rootfs().join("result")).unwrap();
            for l in result.lines() {
                assert!(
                    l.starts_with("procfs ") && l.ends_with(" timer_list=0 keys=0"),
                    "an unmasked or writable procfs is reachable: {l}"
                );
                seen += 1;
            }
            ok(&rt.run(&["delete", "--force", &cid]));
        } else {
            refused += 1;
            let e = fails(&out);
            assert_eq!(e.trim().lines().count(), 1, "{e}");
        }
        assert_untouched(victim.path());
        assert_gone(&rt, &cid, &b, None);
    }
    assert!(swaps_total > 100, "the racer did not race");
    assert!(
        seen > 0,
        "no container ever saw a procfs ({refused} refused)"
    );
    eprintln!("{refused} of 40 refused, {seen} procfs checked, {swaps_total} swaps");
}

// ---------------------------------------------------------------------------
// CVE-2025-31133 / CVE-2025-52565: /dev/null and the console are what they
// claim.

#[test]
fn cve_2025_31133_a_fake_dev_null_is_not_used_for_masking() {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    let host_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(host_file.path(), "host file\n").unwrap();
    type Make<'a> = Box<dyn Fn(&Path) + 'a>;
    let fakes: [(&str, Make); 4] = [
        (
            "a symlink to a host file",
            Box::new(|p: &Path| symlink(host_file.path(), p).unwrap()),
        ),
        (
            "a symlink to a procfs file",
            Box::new(|p: &Path| symlink("/proc/sys/kernel/core_pattern", p).unwrap()),
        ),
        (
            "a regular file",
            Box::new(|p: &Path| std::fs::write(p, "").unwrap()),
        ),
        (
            "/dev/zero's device",
            Box::new(|p: &Path| {
                mknod(
                    p,
                    SFlag::S_IFCHR,
                    Mode::from_bits_truncate(0o666),
                    makedev(1, 5),
                )
                .unwrap()
            }),
        ),
    ];
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    for (what, make) in fakes {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        // /dev comes from the bundle, with /dev/null prepared by the attacker.
        let dev = b.path().join("dev");
        std::fs::create_dir_all(dev.join("pts")).unwrap();
        make(&dev.join("null"));
        let mounts = b.config["mounts"].as_array_mut().unwrap();
        for m in mounts.iter_mut() {
            if m["destination"] == "/dev" {
                *m = json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]});
            }
        }
        let cid = id("cve31133");
        let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
        assert!(
            e.contains("/dev/null") && e.contains("not the null device"),
            "{what}: {e}"
        );
        assert_gone(&rt, &cid, &b, None);
    }
    assert_eq!(
        std::fs::read_to_string(host_file.path()).unwrap(),
        "host file\n"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        core_pattern
    );

    // The real device in the same place works, and masks.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let dev = b.path().join("dev");
    std::fs::create_dir_all(dev.join("pts")).unwrap();
    mknod(
        &dev.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    for m in b.config["mounts"].as_array_mut().unwrap().iter_mut() {
        if m["destination"] == "/dev" {
            *m =
                json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]});
        }
    }
    b.sh("wc -c < /proc/timer_list");
    assert_eq!(
        ok(&rt.run_bundle("run", &b, &id("cve31133-ok"), &[])),
        "0\n"
    );
}

/// Receives the pty master on a console socket.
fn recv_master(listener: std::os::unix::net::UnixListener) -> OwnedFd {
    use nix::sys::socket::{MsgFlags, recvmsg};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: SCM_RIGHTS gave us this fd.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received on the console socket");
}

#[test]
fn cve_2025_52565_dev_console_is_the_containers_pty() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["terminal"] = true.into();
    // /dev/console, the controlling tty and stdin are one pty of the
    // container's own devpts.
    b.sh(
        "stat -c 'console %t:%T' /dev/console; stat -L -c 'stdin %t:%T' /proc/self/fd/0; tty; \
          grep ' /dev/console ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1",
    );
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let cid = id("cve52565");
    let h = std::thread::spawn(move || recv_master(listener));
    ok(&rt.run_bundle(
        "create",
        &b,
        &cid,
        &["--console-socket", sock.to_str().unwrap()],
    ));
    let master = h.join().unwrap();
    ok(&rt.run(&["start", &cid]));
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let out = String::from_utf8_lossy(&out).replace('\r', "");
    let lines: Vec<&str> = out.lines().collect();
    // 0x88 = 136, the first Unix98 pty major.
    assert!(lines[0].starts_with("console 88:"), "{out}");
    assert_eq!(
        lines[0].replace("console", ""),
        lines[1].replace("stdin", ""),
        "{out}"
    );
    assert!(
        lines[2].starts_with("/dev/pts/") || lines[2] == "/dev/console",
        "{out}"
    );
    assert_eq!(
        lines[3], "devpts",
        "/dev/console is a bind of a devpts node: {out}"
    );
    ok(&rt.run(&["delete", "--force", &cid]));

    // A /dev/pts that is not devpts gives no terminal, clearly.
    let mut b = Bundle::new();
    b.config["process"]["terminal"] = true.into();
    for m in b.config["mounts"].as_array_mut().unwrap().iter_mut() {
        if m["destination"] == "/dev/pts" {
            *m = json!({"destination": "/dev/pts", "type": "tmpfs", "source": "tmpfs"});
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(sock_dir.path().join("c2.sock")).unwrap();
    let _keep = listener;
    let cid = id("cve52565-fake");
    let e = fails(&rt.run_bundle(
        "create",
        &b,
        &cid,
        &[
            "--console-socket",
            sock_dir.path().join("c2.sock").to_str().unwrap(),
        ],
    ));
    assert!(e.contains("console") || e.contains("ptmx"), "{e}");
    assert_gone(&rt, &cid, &b, None);
}

// ---------------------------------------------------------------------------
// CVE-2019-16884: a /proc that is not procfs.

#[test]
fn cve_2019_16884_sysctls_refuse_a_fake_proc() {
    let rt = Runtime::new();
    for kind in ["bind", "tmpfs"] {
        let mut b = Bundle::new();
        let fake = b.path().join("fakeproc");
        std::fs::create_dir_all(fake.join("sys/net/ipv4")).unwrap();
        std::fs::write(fake.join("sys/net/ipv4/ip_forward"), "0\n").unwrap();
        for m in b.config["mounts"].as_array_mut().unwrap().iter_mut() {
            if m["destination"] == "/proc" {
                *m = if kind == "bind" {
                    json!({"destination": "/proc", "type": "bind", "source": fake, "options": ["rbind"]})
                } else {
                    json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"})
                };
            }
        }
        b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        let cid = id("cve16884");
        let e = fails(&rt.run_bundle("run", &b, &cid, &[]));
        assert!(
            e.contains("/proc is not procfs") && e.contains("refusing to set sysctls"),
            "{kind}: {e}"
        );
        assert_eq!(
            std::fs::read_to_string(fake.join("sys/net/ipv4/ip_forward")).unwrap(),
            "0\n",
            "the fake file was written"
        );
        assert_gone(&rt, &cid, &b, None);
    }
}
