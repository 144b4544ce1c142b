//! What a container gets, observed from inside it: namespaces, hostname,
//! mounts, devices, process attributes, hooks, terminal, fds.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;

use common::*;
use serde_json::json;

fn run_sh(script: &str, edit: impl FnOnce(&mut Bundle)) -> (String, std::process::Output) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh(script);
    edit(&mut b);
    let out = rt.run_bundle("run", &b, &id("inside"), &[]);
    (stdout(&out), out)
}

#[test]
fn pid_one_hostname_env_cwd_umask() {
    let (out, o) = run_sh(
        "echo pid=$$; hostname; echo foo=$FOO; pwd; umask; id -u; id -g; id -G | tr ' ' '\\n' | sort -n | tr '\\n' ' '",
        |b| {
            b.config["hostname"] = "box1".into();
            b.config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=bar baz"]);
            b.config["process"]["cwd"] = "/var/tmp".into();
            b.config["process"]["user"] =
                json!({"uid": 1000, "gid": 1000, "umask": 23, "additionalGids": [100, 5]});
        },
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "pid=1",
            "box1",
            "foo=bar baz",
            "/var/tmp",
            "0027",
            "1000",
            "1000",
            "5 100 1000 "
        ]
    );
}

#[test]
fn cwd_is_created_when_missing() {
    let (out, o) = run_sh("pwd", |b| {
        b.config["root"]["readonly"] = false.into();
        b.config["process"]["cwd"] = "/new/work/dir".into();
    });
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(out, "/new/work/dir\n");
}

#[test]
fn namespaces_are_new() {
    let host: Vec<String> = ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/self/ns/{n}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let (out, o) = run_sh(
        "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; ip link 2>/dev/null | grep -c '^[0-9]'",
        |_| {},
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let inside: Vec<&str> = out.lines().collect();
    for (h, i) in host.iter().zip(inside.iter()) {
        assert_ne!(h, i, "namespace is shared with the host");
    }
    assert_eq!(inside[6], "1", "only loopback in a new network namespace");
}

#[test]
fn joins_a_namespace_by_path() {
    // Join the uts namespace of a running container: it sees that hostname.
    let rt = Runtime::new();
    let mut first = Bundle::new();
    first.args(&["sleep", "1000"]);
    first.config["hostname"] = "shared-uts".into();
    let a = id("ns-owner");
    ok(&rt.run_bundle("run", &first, &a, &["-d"]));
    let pid = rt.state(&a)["pid"].as_i64().unwrap();
    let mut second = Bundle::new();
    second.args(&["hostname"]);
    second.config.as_object_mut().unwrap().remove("hostname");
    let ns = second.config["linux"]["namespaces"].as_array_mut().unwrap();
    for n in ns.iter_mut() {
        if n["type"] == "uts" {
            n["path"] = format!("/proc/{pid}/ns/uts").into();
        }
    }
    let out = rt.run_bundle("run", &second, &id("ns-joiner"), &[]);
    assert_eq!(ok(&out), "shared-uts\n");
}

#[test]
fn mounts_devices_and_readonly_root() {
    let script = "grep -E ' / | /proc | /dev | /dev/pts | /sys | /sys/fs/cgroup ' /proc/self/mountinfo | cut -d' ' -f5 | sort; \
        stat -c '%n %F %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; \
        readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; \
        touch /should-fail 2>/dev/null && echo root-writable || echo root-readonly; \
        touch /dev/shm/ok && echo shm-writable";
    let (out, o) = run_sh(script, |_| {});
    assert!(o.status.success(), "{}", stderr(&o));
    for want in [
        "/\n",
        "/proc\n",
        "/dev\n",
        "/dev/pts\n",
        "/sys\n",
        "/sys/fs/cgroup\n",
    ] {
        assert!(out.contains(want), "mount {want:?} missing in:\n{out}");
    }
    assert!(
        out.contains("/dev/null character special file 1:3"),
        "{out}"
    );
    assert!(out.contains("/dev/tty character special file 5:0"), "{out}");
    assert!(
        out.contains("pts/ptmx\n/proc/self/fd\n/proc/self/fd/0"),
        "{out}"
    );
    assert!(
        out.contains("root-readonly") && out.contains("shm-writable"),
        "{out}"
    );
}

#[test]
fn masked_and_readonly_paths() {
    // /proc/timer_list and /proc/keys exist on the host and are masked files;
    // /sys/firmware is a masked directory (empty on some hosts, like the v2
    // VM, where the check below says nothing).
    assert!(std::path::Path::new("/proc/timer_list").exists());
    let firmware_on_host = std::fs::read_dir("/sys/firmware")
        .map(|d| d.count())
        .unwrap_or(0);
    let (out, o) = run_sh(
        "wc -c < /proc/timer_list; wc -c < /proc/keys; ls /sys/firmware 2>/dev/null | wc -l; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-readonly",
        |_| {},
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        out, "0\n0\n0\nsys-readonly\n",
        "host /sys/firmware has {firmware_on_host} entries"
    );
}

#[test]
fn bind_mounts_with_options() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f"), "host data\n").unwrap();
    b.sh("cat /data/f; touch /data/g 2>/dev/null && echo rw || echo ro; cat /rw/f; touch /rw/new && echo rw-ok");
    b.config["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind", "ro"]}),
        json!({"destination": "/rw", "type": "bind", "source": data.path(), "options": ["bind"]}),
    ]);
    let out = rt.run_bundle("run", &b, &id("binds"), &[]);
    assert_eq!(ok(&out), "host data\nro\nhost data\nrw-ok\n");
    assert!(data.path().join("new").exists());
    assert_eq!(mounts_under(data.path()), Vec::<String>::new());
}

#[test]
fn file_descriptors_do_not_leak() {
    let (out, o) = run_sh("ls /proc/self/fd | sort -n | tr '\\n' ' '", |_| {});
    assert!(o.status.success(), "{}", stderr(&o));
    // 0-2 and the directory ls itself opened.
    assert_eq!(out.trim(), "0 1 2 3");
}

#[test]
fn preserve_fds_passes_extra_fds() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo through-fd-3 >&3");
    b.write();
    let (r, w) = nix::unistd::pipe().unwrap();
    let w_raw = w.as_raw_fd();
    let mut cmd = rt.cmd();
    cmd.args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path().to_str().unwrap(),
        &id("fds"),
    ]);
    // SAFETY: dup2 in the child before exec; no allocation.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(w_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = output(cmd);
    drop(w);
    ok(&out);
    let mut s = String::new();
    std::fs::File::from(r).read_to_string(&mut s).unwrap();
    assert_eq!(s, "through-fd-3\n");
}

#[test]
fn cwd_through_proc_self_fd_stays_inside() {
    // CVE-2024-21626: a cwd naming an fd must not reach a host directory.
    let (out, o) = run_sh("pwd; ls / | head -3", |b| {
        b.config["process"]["cwd"] = "/proc/self/fd/7".into();
    });
    if o.status.success() {
        // Resolved inside the rootfs (to whatever the link says there).
        assert!(!out.contains("(unreachable)"), "{out}");
    } else {
        assert!(stderr(&o).contains("cwd"), "{}", stderr(&o));
    }
}

#[test]
fn rlimits_and_no_new_privs() {
    let (out, o) = run_sh(
        "ulimit -n; ulimit -Hn; grep NoNewPrivs /proc/self/status",
        |b| {
            b.config["process"]["rlimits"] =
                json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 900}]);
        },
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(out, "512\n900\nNoNewPrivs:\t1\n");
}

#[test]
fn capabilities_follow_the_config() {
    let (out, o) = run_sh(
        "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status",
        |b| {
            b.config["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN", "CAP_KILL"],
                "effective": ["CAP_CHOWN"],
                "permitted": ["CAP_CHOWN"],
            });
            b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        },
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // A non-root program keeps no caps across exec without ambient ones; the
    // bounding set is exactly CHOWN (bit 0) and KILL (bit 5).
    assert!(out.contains("CapBnd:\t0000000000000021"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
}

#[test]
fn user_namespace_maps_ids() {
    let (out, o) = run_sh(
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox",
        |b| {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            b.config["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            b.config["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            // cgroup v1 cannot be mounted from a user namespace.
            b.config["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["type"] != "cgroup");
        },
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"]);
    assert_eq!(lines[1], ["0", "100000", "65536"]);
    assert_eq!(lines[2], ["0"]);
    // The rootfs is owned by host root, which is not mapped: overflow uid.
    assert_eq!(lines[3], ["65534"]);
}

#[test]
fn sysctl_in_the_container_namespace() {
    let (out, o) = run_sh(
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
        |b| {
            b.config["linux"]["sysctl"] =
                json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456"});
        },
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(out, "1\n123456\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    assert_ne!(host.trim(), "123456");
}

#[test]
fn no_pivot_works() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let out = rt.run_bundle("run", &b, &id("nopivot"), &["--no-pivot"]);
    assert_eq!(ok(&out), "hello from the berth fixture bundle\n");
}

#[test]
fn hooks_run_at_their_points_with_the_state() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = false.into();
    b.sh("test -f /hook-startContainer && echo saw-start-hook");
    let out_dir = tempfile::tempdir().unwrap();
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}", out_dir.path().display())], "timeout": 10});
    b.config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        // startContainer runs in the container: its paths are the container's.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /hook-startContainer"]}],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    let cid = id("hooks");
    let out = rt.run_bundle("run", &b, &cid, &[]);
    assert_eq!(ok(&out), "saw-start-hook\n");
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        let text = std::fs::read_to_string(out_dir.path().join(name))
            .unwrap_or_else(|_| panic!("{name} hook did not run"));
        let st: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(st["id"], cid.as_str(), "{name}");
        assert_eq!(st["bundle"], b.path().to_str().unwrap(), "{name}");
        assert!(
            st["pid"].as_i64().unwrap() > 1,
            "{name}: host pid expected, got {}",
            st["pid"]
        );
    }
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.rootfs().join("hook-startContainer")).unwrap())
            .unwrap();
    assert_eq!(st["id"], cid.as_str());
}

#[test]
fn failing_hook_fails_create_and_cleans_up() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook says no >&2; exit 3"]}]});
    let cid = id("badhook");
    let e = fails(&rt.run_bundle("create", &b, &cid, &[]));
    assert!(
        e.contains("createRuntime") && e.contains("hook says no"),
        "{e}"
    );
    assert_gone(&rt, &cid, &b, None);
    b.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]});
    let e = fails(&rt.run_bundle("create", &b, &cid, &[]));
    assert!(e.contains("timed out"), "{e}");
    assert_gone(&rt, &cid, &b, None);
}

/// Receives the pty master runc-style on a unix socket.
fn recv_master(listener: std::os::unix::net::UnixListener) -> OwnedFd {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
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
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: SCM_RIGHTS gave us this fd.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received on the console socket");
}

#[test]
fn console_socket_gets_the_pty_master() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["terminal"] = true.into();
    b.sh("tty; stty size; test -t 0 && echo stdin-is-a-tty");
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let cid = id("console");
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
    // Read until the container exits and the pty hangs up (EIO).
    let mut buf = [0u8; 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let out = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(
        out.contains("/dev/pts/0") || out.contains("/dev/console"),
        "{out}"
    );
    assert!(out.contains("33 101"), "{out}");
    assert!(out.contains("stdin-is-a-tty"), "{out}");
    // terminal without a socket is refused, clearly.
    let e = fails(&rt.run_bundle("create", &b, &id("console2"), &[]));
    assert!(e.contains("console-socket"), "{e}");
}

#[test]
fn time_namespace_with_offsets() {
    let (out, o) = run_sh("cut -d. -f1 /proc/uptime", |b| {
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000}});
    });
    assert!(o.status.success(), "{}", stderr(&o));
    let inside: u64 = out.trim().parse().unwrap();
    let host: u64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(inside >= host + 864000 - 5, "inside {inside}, host {host}");
}

#[test]
fn extra_devices_and_oom_score() {
    let (out, o) = run_sh(
        "stat -c '%F %t:%T %a' /dev/fuse; cat /proc/self/oom_score_adj",
        |b| {
            b.config["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 432}]);
            b.config["process"]["oomScoreAdj"] = 500.into();
        },
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // 10:229 in hex is a:e5; 432 is 0660.
    assert_eq!(out, "character special file a:e5 660\n500\n");
}

#[test]
fn new_user_namespace_joining_another_network_namespace() {
    // Joins need host privileges, so they happen before the new user
    // namespace is made, and the init is forked into the new pid namespace.
    let rt = Runtime::new();
    let mut first = Bundle::new();
    first.args(&["sleep", "1000"]);
    let a = id("netns-owner");
    ok(&rt.run_bundle("run", &first, &a, &["-d"]));
    let pid = rt.state(&a)["pid"].as_i64().unwrap();
    let owner_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let mut b = Bundle::new();
    b.sh("echo $$; readlink /proc/self/ns/net; cat /proc/self/uid_map");
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    for n in ns.iter_mut() {
        if n["type"] == "network" {
            n["path"] = format!("/proc/{pid}/ns/net").into();
        }
    }
    ns.push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup" && m["type"] != "sysfs");
    let out = ok(&rt.run_bundle("run", &b, &id("netns-joiner"), &[]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    assert_eq!(lines[1], owner_net.to_str().unwrap());
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
}

/// `tmpcopyup` (runc's and crun's extension, which podman puts on its tmpfs
/// mounts): the tmpfs starts with what the rootfs had there, symlinks kept
/// as symlinks, and `ro` still applies once the copy is in.
#[test]
fn tmpfs_copyup() {
    let (out, o) = run_sh(
        "grep ' /etc ' /proc/self/mountinfo | cut -d' ' -f6,9; cat /etc/group | head -1; \
         readlink /etc/ptr; stat -c %a /etc/sub; cat /etc/sub/f; touch /etc/new 2>&1 | cut -d: -f3-",
        |b| {
            let etc = b.rootfs().join("etc");
            std::fs::create_dir(etc.join("sub")).unwrap();
            std::fs::write(etc.join("sub/f"), "nested\n").unwrap();
            std::fs::set_permissions(
                etc.join("sub"),
                std::os::unix::fs::PermissionsExt::from_mode(0o750),
            )
            .unwrap();
            std::os::unix::fs::symlink("/outside/target", etc.join("ptr")).unwrap();
            b.config["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "tmpcopyup", "ro", "size=1m"]
            }));
        },
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "ro,nosuid,nodev,relatime tmpfs",
            "root:x:0:",
            "/outside/target",
            "750",
            "nested",
            " Read-only file system",
        ]
    );
}

/// The program starts with no signal blocked or ignored: the runtime's own
/// (Rust ignores SIGPIPE; `run` blocks the signals it forwards) survive an
/// exec unless reset, and a container whose SIGPIPE is ignored or whose
/// SIGTERM is blocked misbehaves (`yes | head` never ends, `kill` does
/// nothing).
#[test]
fn the_program_gets_a_clean_signal_state() {
    let (out, o) = run_sh("", |b| {
        b.config["process"]["args"] = json!(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    });
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"],
        "{out}"
    );
    // SIGPIPE does its default job: `yes` dies when `head` is done.
    let (out, o) = run_sh("yes | head -n 2; echo done", |_| {});
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(out, "y\ny\ndone\n");
}
