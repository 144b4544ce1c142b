//! linux.seccomp, observed from inside containers: the filter is installed
//! (Seccomp: 2), each action does what it says to the syscalls it matches,
//! argument conditions select the calls they describe, flags and the LOG
//! action reach the kernel's audit log, SCMP_ACT_NOTIFY hands a working
//! listener fd to an agent, and `exec`'d processes get the same filter.

mod common;

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use common::*;
use serde_json::{Value, json};

/// Runs `script` in a fresh container whose config has `seccomp`.
fn run_with(seccomp: Value, script: &str, edit: impl FnOnce(&mut Bundle)) -> std::process::Output {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    b.config["linux"]["seccomp"] = seccomp;
    b.sh(script);
    edit(&mut b);
    rt.run_bundle("run", &b, &id("seccomp"), &[])
}

fn deny(names: &[&str], action: &str, errno: Option<u32>) -> Value {
    let mut rule = json!({"names": names, "action": action});
    if let Some(e) = errno {
        rule["errnoRet"] = e.into();
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

#[test]
fn errno_action_returns_the_configured_errno() {
    // EXDEV (18) is nothing mkdir could fail with on its own.
    let out = run_with(
        deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", Some(18)),
        "grep -E '^Seccomp(_filters)?:' /proc/self/status; mkdir /tmp/d; echo rc=$?; touch /tmp/f && echo touch-ok",
        |_| {},
    );
    let s = ok(&out);
    assert!(s.contains("Seccomp:\t2\n"), "{s}");
    assert!(s.contains("Seccomp_filters:\t1\n"), "{s}");
    assert!(s.contains("rc=1"), "{s}");
    assert!(s.contains("touch-ok"), "other syscalls are untouched: {s}");
    assert!(
        stderr(&out).contains("Invalid cross-device link"),
        "mkdir must fail with EXDEV: {}",
        stderr(&out)
    );
}

#[test]
fn errno_without_errno_ret_is_eperm_and_default_errno_ret_applies() {
    let out = run_with(
        deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", None),
        "mkdir /tmp/d",
        |_| {},
    );
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    // The default action with defaultErrnoRet: everything not listed fails
    // with it. The shell needs little; mkdir is not in the list.
    let allowed = [
        "read",
        "write",
        "open",
        "openat",
        "close",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "statx",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "access",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "wait4",
        "fork",
        "vfork",
        "clone",
        "clone3",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "fcntl",
        "dup2",
        "dup3",
        "getcwd",
        "chdir",
        "arch_prctl",
        "set_tid_address",
        "prlimit64",
        "getrandom",
        "rseq",
        "set_robust_list",
        "uname",
        "readlink",
        "getdents64",
        "lseek",
        "pipe",
        "pipe2",
        "sysinfo",
        "getpgrp",
        "setpgid",
        "getrlimit",
        "futex",
    ];
    let out = run_with(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
            {"names": allowed.as_slice(), "action": "SCMP_ACT_ALLOW"}]}),
        "echo in; mkdir /tmp/d",
        |_| {},
    );
    assert_eq!(stdout(&out), "in\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Function not implemented"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kill_actions_kill_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        // busybox sync calls sync(2) and nothing else of note; the shell
        // never does.
        let out = run_with(
            deny(&["sync"], action, None),
            "sync; echo rc=$?; echo still-here",
            |_| {},
        );
        let s = ok(&out);
        // 128 + SIGSYS (31): the uname process died of the signal, the
        // shell (which did not call uname) lives on.
        assert!(s.contains("rc=159\nstill-here"), "{action}: {s}");
    }
    // As the container's own process, the runtime reports the signal.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] = deny(&["sync"], "SCMP_ACT_KILL_PROCESS", None);
    b.args(&["sync"]);
    let out = rt.run_bundle("run", &b, &id("seccomp-kill"), &[]);
    assert_eq!(out.status.code(), Some(159), "{}", stderr(&out));
}

#[test]
fn trace_without_a_tracer_is_enosys() {
    let out = run_with(
        deny(&["mkdir", "mkdirat"], "SCMP_ACT_TRACE", Some(3)),
        "mkdir /tmp/t",
        |_| {},
    );
    assert!(
        stderr(&out).contains("Function not implemented"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn argument_conditions_select_calls() {
    // chmod's mode is argument 1, fchmodat's argument 2 (glibc may use
    // either). MASKED_EQ: any mode with the setuid bit; two EQ conditions on
    // one argument are alternatives (runc's behaviour).
    let rules = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
         "args": [{"index": 1, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
         "args": [{"index": 2, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 1, "value": 448, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 457, "op": "SCMP_CMP_EQ"}]},
        {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 2, "value": 448, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 457, "op": "SCMP_CMP_EQ"}]}
    ]});
    let out = run_with(
        rules,
        "touch /tmp/f; for m in 755 4755 2755 700 711 644; do chmod $m /tmp/f 2>/dev/null && echo $m=ok || echo $m=denied; done",
        |_| {},
    );
    assert_eq!(
        ok(&out),
        "755=ok\n4755=denied\n2755=ok\n700=denied\n711=denied\n644=ok\n"
    );
}

#[test]
fn unknown_syscall_names_are_ignored() {
    let out = run_with(
        deny(
            &["no_such_syscall_anywhere", "mkdir", "mkdirat"],
            "SCMP_ACT_ERRNO",
            Some(18),
        ),
        "mkdir /tmp/x 2>&1; echo done",
        |_| {},
    );
    let s = ok(&out);
    assert!(
        s.contains("Invalid cross-device link") && s.contains("done"),
        "{s}"
    );
}

#[test]
fn without_no_new_privs_the_filter_goes_in_before_the_user_switch() {
    // An unprivileged user without no_new_privs could not install a filter
    // itself: it must already be in place, and NoNewPrivs stays 0.
    let out = run_with(
        deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", Some(18)),
        "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; id -u; mkdir /tmp/d",
        |b| {
            b.config["process"]["noNewPrivileges"] = false.into();
            b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        },
    );
    let s = stdout(&out);
    assert!(s.contains("Seccomp:\t2\n"), "{s}");
    assert!(s.contains("NoNewPrivs:\t0\n"), "{s}");
    assert!(s.contains("CapEff:\t0000000000000000\n"), "{s}");
    assert!(s.contains("1000\n"), "{s}");
    assert!(
        stderr(&out).contains("Invalid cross-device link"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_gets_the_same_filter() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    b.config["linux"]["seccomp"] = deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", Some(18));
    b.sh("touch /tmp/ready; exec sleep 1000");
    let cid = id("seccomp-exec");
    ok(&rt.run_bundle("run", &b, &cid, &["-d"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b.rootfs().join("tmp/ready").exists() {
        assert!(std::time::Instant::now() < deadline, "init never ran");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = rt.run(&[
        "exec",
        &cid,
        "sh",
        "-c",
        "grep -E '^Seccomp(_filters)?:' /proc/self/status; mkdir /tmp/e 2>&1; echo rc=$?",
    ]);
    let s = ok(&out);
    assert!(s.contains("Seccomp:\t2\nSeccomp_filters:\t1\n"), "{s}");
    assert!(
        s.contains("Invalid cross-device link") && s.contains("rc=1"),
        "{s}"
    );
    // Also without no_new_privs (installed before the user switch).
    let proc_json = rt.root.path().join("p.json");
    std::fs::write(
        &proc_json,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/f 2>&1"],
            "cwd": "/", "user": {"uid": 1000, "gid": 1000}, "noNewPrivileges": false,
            "env": ["PATH=/bin:/usr/bin"]
        }))
        .unwrap(),
    )
    .unwrap();
    let out = rt.run(&["exec", "--process", proc_json.to_str().unwrap(), &cid]);
    let s = stdout(&out);
    assert!(
        s.contains("Seccomp:\t2\n") && s.contains("NoNewPrivs:\t0\n"),
        "{s}"
    );
    assert!(s.contains("Invalid cross-device link"), "{s}");
    ok(&rt.run(&["delete", "--force", &cid]));
}

/// /dev/kmsg, positioned at its end: records written from now on.
struct Kmsg(std::fs::File);

impl Kmsg {
    fn open() -> Kmsg {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .expect("open /dev/kmsg");
        // SAFETY: lseek on our own fd.
        unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) };
        Kmsg(f)
    }

    /// Waits up to 5 s for a record containing every needle and one of
    /// `any`.
    fn find(&mut self, needles: &[&str], any: &[String]) -> Option<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut buf = vec![0u8; 8192];
        loop {
            match self.0.read(&mut buf) {
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if needles.iter().all(|n| rec.contains(n))
                        && any.iter().any(|a| rec.contains(a.as_str()))
                    {
                        return Some(rec);
                    }
                }
                // EPIPE: records were overwritten; keep reading.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Err(_) => {
                    if std::time::Instant::now() > deadline {
                        return None;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
}

/// A name for busybox whose comm is unique to this test run (busybox runs
/// argv[1] when its own name starts with "busybox").
fn unique_busybox(b: &Bundle, tag: &str) -> String {
    let name = format!("busybox-{tag}{:04}", std::process::id() % 10000);
    std::os::unix::fs::symlink("/bin/busybox", b.rootfs().join("bin").join(&name)).unwrap();
    name
}

#[test]
fn log_action_and_log_flag_reach_the_audit_log() {
    let mut kmsg = Kmsg::open();
    let mut name = String::new();
    // SCMP_ACT_LOG: sync runs and is logged.
    let out = run_with(deny(&["sync"], "SCMP_ACT_LOG", None), "", |b| {
        name = unique_busybox(b, "lg");
        b.args(&[&name, "sync"]);
    });
    ok(&out);
    let rec = kmsg.find(
        &["type=1326", &format!("comm=\"{name}\""), "code=0x7ffc0000"],
        &[format!("syscall={} ", libc::SYS_sync)],
    );
    assert!(
        rec.is_some(),
        "no audit record of the logged sync by {name}"
    );

    // SECCOMP_FILTER_FLAG_LOG: an ERRNO action is logged too (it is not
    // without the flag).
    let mut kmsg = Kmsg::open();
    let mut seccomp = deny(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", Some(18));
    seccomp["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG"]);
    let out = run_with(seccomp, "", |b| {
        name = unique_busybox(b, "fl");
        b.args(&[&name, "mkdir", "/tmp/logged"]);
    });
    assert!(!out.status.success());
    let rec = kmsg.find(
        &["type=1326", &format!("comm=\"{name}\""), "code=0x50000"],
        &[
            format!("syscall={} ", libc::SYS_mkdir),
            format!("syscall={} ", libc::SYS_mkdirat),
        ],
    );
    assert!(
        rec.is_some(),
        "no audit record of the denied mkdir by {name}"
    );
}

/// Receives the listener fd and the ContainerProcessState the runtime sends.
fn recv_listener(conn: &std::os::unix::net::UnixStream) -> (OwnedFd, Value) {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = vec![0u8; 65536];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed this fd for us.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    let state: Value = serde_json::from_slice(&buf[..n]).expect("state JSON");
    (fd.expect("an fd came with the state"), state)
}

/// A seccomp agent: answers every notification with EXDEV and reports the
/// syscalls it saw.
fn agent(fd: OwnedFd, seen: std::sync::mpsc::Sender<i32>) {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    loop {
        let Ok(req) = ScmpNotifReq::receive(fd.as_raw_fd()) else {
            return;
        };
        let _ = seen.send(req.data.syscall.as_raw_syscall());
        let resp = ScmpNotifResp::new_error(req.id, -libc::EXDEV, ScmpNotifRespFlags::empty());
        if resp.respond(fd.as_raw_fd()).is_err() {
            return;
        }
    }
}

#[test]
fn notify_hands_the_listener_to_the_agent() {
    for nnp in [true, false] {
        let rt = Runtime::new();
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let mut b = Bundle::new();
        b.config["root"]["readonly"] = false.into();
        b.config["process"]["noNewPrivileges"] = nnp.into();
        b.config["annotations"] = json!({"org.example/k": "v"});
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "agent-metadata",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
        let cid = id("seccomp-notify");
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let (fd, state) = recv_listener(&conn);
            let t2 = {
                let tx = tx.clone();
                std::thread::spawn(move || agent(fd, tx))
            };
            // exec: a second connection for the exec'd process.
            let second = listener.accept().ok().map(|(c, _)| recv_listener(&c));
            let second = second.map(|(fd, st)| {
                let tx = tx.clone();
                std::thread::spawn(move || agent(fd, tx));
                st
            });
            drop(t2);
            (state, second)
        });
        let script = "mkdir /tmp/n 2>&1; echo rc=$?; touch /tmp/ready; exec sleep 1000";
        b.sh(script);
        ok(&rt.run_bundle("run", &b, &cid, &["-d"]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !b.rootfs().join("tmp/ready").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "init never ran (nnp {nnp})"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // The agent answered the init's mkdir with EXDEV.
        let nr = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32);
        assert!(!b.rootfs().join("tmp/n").exists(), "the mkdir was not done");
        let init_pid = rt.state(&cid)["pid"].as_i64().unwrap();
        // And the exec'd process has its own filter with its own listener.
        let out = rt.run(&["exec", &cid, "sh", "-c", "mkdir /tmp/m 2>&1; echo rc=$?"]);
        let s = ok(&out);
        assert!(
            s.contains("Invalid cross-device link") && s.contains("rc=1"),
            "{s}"
        );
        ok(&rt.run(&["delete", "--force", &cid]));
        let (state, second) = t.join().unwrap();
        assert_eq!(state["ociVersion"], "1.2.0");
        assert_eq!(state["fds"], json!(["seccompFd"]));
        assert_eq!(state["metadata"], "agent-metadata");
        assert_eq!(state["pid"], init_pid);
        assert_eq!(state["state"]["id"], cid.as_str());
        assert_eq!(state["state"]["pid"], init_pid);
        assert_eq!(state["state"]["annotations"]["org.example/k"], "v");
        assert_eq!(
            state["state"]["bundle"],
            b.path().to_str().unwrap(),
            "{state}"
        );
        let second = second.expect("the exec'd process sent its listener too");
        assert_eq!(second["state"]["status"], "running");
        assert_ne!(second["pid"], init_pid);
    }
}

#[test]
fn bad_profiles_are_refused_and_leave_nothing() {
    let cases: [(Value, &str); 4] = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}]}),
            "SCMP_ACT_EXPLODE",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}),
            "SCMP_CMP_SOMETIMES",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp: SCMP_ACT_NOTIFY rules need a listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "seccomp: listener /nonexistent/agent.sock",
        ),
    ];
    for (seccomp, want) in cases {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        b.config["linux"]["seccomp"] = seccomp;
        let cid = id("seccomp-bad");
        let out = rt.run_bundle("run", &b, &cid, &[]);
        let e = fails(&out);
        assert!(e.contains(want), "want {want:?} in: {e}");
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
        assert_gone(&rt, &cid, &b, None);
    }
}
