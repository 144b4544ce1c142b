//! berth-runtime driven by containerd's runc shim (containerd-shim-runc-v2),
//! as Kubernetes reaches a runtime: a private containerd per test (root,
//! state and sockets in a temp dir, the CRI plugin off), the fixture image
//! imported, and `ctr run --runc-binary` pointing the shim at our binary.
//! Each test checks what the user sees (output, exit codes, statuses) and
//! that the container left no state, cgroup, mount, shim or socket behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::clients::*;
use common::*;
use sha2::{Digest, Sha256};

const IMAGE: &str = "localhost/busybox:latest";
/// containerd's fixed directory for shim sockets (not configurable in 1.6).
const SHIM_SOCKETS: &str = "/run/containerd/s";

struct Containerd {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    /// Our containerd namespace: the cgroup parent (/NS/ID) and the
    /// runtime's state root (RUNC_ROOT/NS) are named after it.
    ns: String,
    /// Container ids used, for the shim socket cleanup.
    ids: std::cell::RefCell<Vec<String>>,
}

impl Containerd {
    fn start() -> Containerd {
        require_root();
        require_tools(
            &["containerd", "ctr", "containerd-shim-runc-v2"],
            "Debian's containerd",
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-ctd.")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("c.sock").display(),
            opt = d.join("opt").display(),
        );
        std::fs::write(d.join("config.toml"), config).expect("write config");
        std::fs::create_dir_all(d.join("runc")).expect("mkdir");
        std::fs::create_dir_all(d.join("fifo")).expect("mkdir");
        let log = std::fs::File::create(d.join("containerd.log")).expect("log file");
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut c = Containerd {
            dir,
            daemon: Some(daemon),
            ns: format!("berth-test-{}-{n}", std::process::id()),
            ids: Default::default(),
        };
        let ready = poll_until(30, || {
            if let Some(d) = c.daemon.as_mut()
                && let Ok(Some(st)) = d.try_wait()
            {
                panic!("containerd exited ({st}):\n{}", c.log());
            }
            c.ctr(&["version"]).status.success().then_some(())
        });
        assert!(ready.is_some(), "containerd did not come up:\n{}", c.log());
        let archive = fixtures().join("busybox-oci.tar");
        ok(&c.ctr(&["images", "import", archive.to_str().unwrap()]));
        let images = ok(&c.ctr(&["images", "ls", "-q"]));
        assert!(
            images.lines().any(|l| l == IMAGE),
            "import did not name the image {IMAGE}: {images}"
        );
        c
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn sock(&self) -> PathBuf {
        self.path().join("c.sock")
    }

    fn runc_root(&self) -> PathBuf {
        self.path().join("runc")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("containerd.log")).unwrap_or_default()
    }

    fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.sock())
            .arg("--namespace")
            .arg(&self.ns)
            .args(args);
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        output(self.ctr_cmd(args))
    }

    /// `ctr run` with our runtime: `flags` go before the image, `cmd` after
    /// the id.
    fn run_cmd(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Command {
        self.ids.borrow_mut().push(id.to_string());
        let mut args = vec!["run", "--runc-binary", Runtime::bin()];
        let root = self.runc_root();
        let fifo = self.path().join("fifo");
        args.extend([
            "--runc-root",
            root.to_str().unwrap(),
            "--fifo-dir",
            fifo.to_str().unwrap(),
        ]);
        args.extend(flags);
        args.push(IMAGE);
        args.push(id);
        args.extend(cmd);
        self.ctr_cmd(&args)
    }

    fn run(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Output {
        output(self.run_cmd(flags, id, cmd))
    }

    /// `ctr task exec`, its FIFOs in our temp dir too.
    fn exec_cmd(&self, args: &[&str]) -> Command {
        let fifo = self.path().join("fifo");
        let mut all = vec!["task", "exec", "--fifo-dir", fifo.to_str().unwrap()];
        all.extend(args);
        self.ctr_cmd(&all)
    }

    /// The task's pid and status as `ctr task ls` shows them.
    fn task(&self, id: &str) -> Option<(i32, String)> {
        let out = ok(&self.ctr(&["task", "ls"]));
        out.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }

    #[track_caller]
    fn wait_status(&self, id: &str, want: &str) -> i32 {
        match poll_until(10, || self.task(id).filter(|(_, s)| s == want)) {
            Some((pid, _)) => pid,
            None => panic!("task {id} is {:?}, wanted {want}", self.task(id)),
        }
    }

    /// The container's cgroup path (containerd's default: /NS/ID).
    fn cgroup(&self, id: &str) -> String {
        format!("/{}/{id}", self.ns)
    }

    /// containerd 1.6's shim socket for `id`: sha256 of the daemon's address,
    /// namespace and id, under /run/containerd/s.
    fn shim_socket(&self, id: &str) -> PathBuf {
        let key = format!("{}/{}/{id}", self.sock().display(), self.ns);
        Path::new(SHIM_SOCKETS).join(hex::encode(Sha256::digest(key.as_bytes())))
    }

    fn shims(&self, id: &str) -> Vec<i32> {
        pids_with_cmdline(&format!(
            "containerd-shim-runc-v2 -namespace {} -id {id} -address {}",
            self.ns,
            self.sock().display()
        ))
    }

    /// Nothing of container `id` is left: runtime state, cgroup, rootfs
    /// mount, shim process, shim socket. (Cleanup after a task exits is
    /// asynchronous in containerd: waited for.)
    #[track_caller]
    fn assert_gone(&self, id: &str) {
        let state = self.runc_root().join(&self.ns).join(id);
        let cg = self.cgroup(id);
        let leftovers = || {
            let mut left = Vec::new();
            if state.exists() {
                left.push(format!("runtime state {}", state.display()));
            }
            for d in cgroups_at(&cg) {
                left.push(format!("cgroup {}", d.display()));
            }
            for m in mounts_under(self.path()) {
                if m.contains(id) {
                    left.push(format!("mount {m}"));
                }
            }
            for p in self.shims(id) {
                left.push(format!("shim process {p}"));
            }
            if self.shim_socket(id).exists() {
                left.push(format!("shim socket {}", self.shim_socket(id).display()));
            }
            left
        };
        if poll_until(10, || leftovers().is_empty().then_some(())).is_none() {
            panic!("container {id} left behind: {:?}", leftovers());
        }
    }

    /// Stops containerd and checks the namespace is empty: no task, no
    /// runtime state, no cgroup under /NS, no mount under the temp dir.
    fn finish(mut self) {
        let tasks = ok(&self.ctr(&["task", "ls", "-q"]));
        assert_eq!(tasks.trim(), "", "tasks left");
        let containers = ok(&self.ctr(&["containers", "ls", "-q"]));
        assert_eq!(containers.trim(), "", "containers left");
        self.stop_daemon();
        let ns_root = self.runc_root().join(&self.ns);
        let states: Vec<_> = std::fs::read_dir(&ns_root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(states.is_empty(), "runtime state left: {states:?}");
        // The runtime makes /NS as the parent of /NS/ID, as runc does, and
        // leaves it (another container may be starting in it): it must be
        // empty, so rmdir works.
        let left = remove_cgroups(&format!("/{}", self.ns));
        assert!(left.is_empty(), "cgroups left: {left:?}");
        let mounts = mounts_under(self.path());
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }

    fn stop_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(d.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let exited = poll_until(10, || d.try_wait().ok().flatten());
            if exited.is_none() {
                let _ = d.kill();
                let _ = d.wait();
            }
        }
    }
}

impl Drop for Containerd {
    /// Best effort after a failed test: nothing of ours may stay running or
    /// mounted, or hold a socket in the shared /run/containerd/s.
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let out = self.ctr(&["task", "ls", "-q"]);
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
                let _ = self.ctr(&["task", "rm", "-f", id]);
            }
            for id in self.ids.borrow().iter() {
                let _ = self.ctr(&["containers", "rm", id]);
            }
        }
        self.stop_daemon();
        for id in self.ids.borrow().iter() {
            for p in self.shims(id) {
                kill_pid(p);
            }
            let _ = std::fs::remove_file(self.shim_socket(id));
            let _ = Command::new(Runtime::bin())
                .arg("--root")
                .arg(self.runc_root().join(&self.ns))
                .args(["delete", "--force", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let mut mounts = mounts_under(self.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = remove_cgroups(&format!("/{}", self.ns));
    }
}

/// Splits a terminal's `\r\n` lines. ctr writes a NUL to the terminal as
/// it attaches (with runc too), which the line discipline echoes as `^@`.
fn pty_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .split('\n')
        .map(|l| l.trim_matches('\r').trim_start_matches("^@").to_string())
        .collect()
}

#[test]
fn run_shows_output_and_exit_code() {
    let c = Containerd::start();
    let cid = id("ctd-run");
    let out = c.run(
        &["--rm"],
        &cid,
        &[
            "sh",
            "-c",
            "echo hello from berth-runtime; echo to-stderr >&2; grep pids /proc/self/cgroup; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("hello from berth-runtime\n"), "{text}");
    assert!(
        text.contains(&format!(":pids:{}\n", c.cgroup(&cid))),
        "the init is in the cgroup containerd asked for: {text}"
    );
    assert!(stderr(&out).contains("to-stderr"), "{}", stderr(&out));
    c.assert_gone(&cid);

    // A failing create: containerd shows the runtime's reason, which it
    // reads from --log as JSON.
    let bad = id("ctd-bad");
    let out = c.run(&["--rm"], &bad, &["/no/such/program"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("OCI runtime create failed") && err.contains("/no/such/program"),
        "{err}"
    );
    c.assert_gone(&bad);
    c.finish();
}

#[test]
fn exec_ps_pause_resume_kill() {
    let c = Containerd::start();
    let cid = id("ctd-life");
    // The init traps TERM (an init ignores signals it has no handler for).
    ok(&c.run(
        &["-d"],
        &cid,
        &["sh", "-c", "trap 'exit 7' TERM; sleep 1000 & wait"],
    ));
    let pid = c.wait_status(&cid, "RUNNING");
    assert!(pid > 0);

    let out = output(c.exec_cmd(&[
        "--exec-id",
        "e1",
        &cid,
        "sh",
        "-c",
        "echo in-exec; cat /proc/1/cmdline; exit 4",
    ]));
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("in-exec\nsh\0-c\0"), "{text:?}");

    // ps: the host pids of the container's processes, as its cgroup has them.
    let ps = ok(&c.ctr(&["task", "ps", &cid]));
    let mut listed: Vec<i32> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    listed.sort();
    let procs_file = cgroups_at(&c.cgroup(&cid))
        .into_iter()
        .map(|d| d.join("cgroup.procs"))
        .find(|f| f.exists())
        .expect("the container's cgroup");
    let mut in_cgroup: Vec<i32> = std::fs::read_to_string(&procs_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    in_cgroup.sort();
    assert!(listed.contains(&pid) && listed.len() >= 2, "{ps}");
    assert_eq!(listed, in_cgroup, "ps lists the cgroup's processes");

    // pause and resume freeze and thaw the cgroup.
    ok(&c.ctr(&["task", "pause", &cid]));
    c.wait_status(&cid, "PAUSED");
    let freezer = cgroups_at(&c.cgroup(&cid))
        .into_iter()
        .find_map(|d| {
            let v1 = d.join("freezer.state");
            let v2 = d.join("cgroup.freeze");
            if v1.exists() {
                Some(v1)
            } else if v2.exists() {
                Some(v2)
            } else {
                None
            }
        })
        .expect("a freezer for the container");
    let frozen = std::fs::read_to_string(&freezer).unwrap();
    assert!(
        frozen.trim() == "FROZEN" || frozen.trim() == "1",
        "{frozen}"
    );
    ok(&c.ctr(&["task", "resume", &cid]));
    c.wait_status(&cid, "RUNNING");
    let thawed = std::fs::read_to_string(&freezer).unwrap();
    assert!(
        thawed.trim() == "THAWED" || thawed.trim() == "0",
        "{thawed}"
    );

    // kill ID 15 reaches the init, whose exit status containerd records.
    ok(&c.ctr(&["task", "kill", "-s", "SIGTERM", &cid]));
    c.wait_status(&cid, "STOPPED");
    let rm = c.ctr(&["task", "rm", &cid]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert!(
        stderr(&rm).contains("exit code 7"),
        "exit status of the init: {}",
        stderr(&rm)
    );
    ok(&c.ctr(&["containers", "rm", &cid]));
    c.assert_gone(&cid);

    // kill --all: every process of the container, not only its init.
    let all = id("ctd-all");
    ok(&c.run(
        &["-d"],
        &all,
        &["sh", "-c", "sleep 1000 & sleep 1001 & wait"],
    ));
    c.wait_status(&all, "RUNNING");
    poll_until(10, || {
        (ok(&c.ctr(&["task", "ps", &all])).lines().count() >= 4).then_some(())
    })
    .expect("the container's three processes");
    ok(&c.ctr(&["task", "kill", "--all", "-s", "SIGKILL", &all]));
    c.wait_status(&all, "STOPPED");
    ok(&c.ctr(&["task", "rm", &all]));
    ok(&c.ctr(&["containers", "rm", &all]));
    c.assert_gone(&all);
    c.finish();
}

#[test]
fn terminal_for_run_and_exec() {
    let c = Containerd::start();
    let cid = id("ctd-tty");
    let out = in_pty(&c.run_cmd(
        &["--rm", "-t"],
        &cid,
        &["sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty; exit 5"],
    ));
    assert_eq!(out.status.code(), Some(5), "{}", stdout(&out));
    let lines = pty_lines(&out);
    assert!(lines.iter().any(|l| l == "/dev/pts/0"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "stdin-is-a-tty"), "{lines:?}");
    c.assert_gone(&cid);

    let bg = id("ctd-tty-exec");
    ok(&c.run(&["-d"], &bg, &["sleep", "1000"]));
    c.wait_status(&bg, "RUNNING");
    let out = in_pty(&c.exec_cmd(&["-t", "--exec-id", "t1", &bg, "sh", "-c", "tty; exit 6"]));
    assert_eq!(out.status.code(), Some(6), "{}", stdout(&out));
    let lines = pty_lines(&out);
    assert!(
        lines.iter().any(|l| l.starts_with("/dev/pts/")),
        "{lines:?}"
    );
    ok(&c.ctr(&["task", "kill", "-s", "SIGKILL", &bg]));
    c.wait_status(&bg, "STOPPED");
    ok(&c.ctr(&["task", "rm", &bg]));
    ok(&c.ctr(&["containers", "rm", &bg]));
    c.assert_gone(&bg);
    c.finish();
}

/// A Kubernetes pod: a sandbox container holds the network and IPC
/// namespaces, and the app container joins them by path.
#[test]
fn pod_containers_share_namespaces() {
    let c = Containerd::start();
    let sandbox = id("ctd-sandbox");
    ok(&c.run(&["-d"], &sandbox, &["sleep", "1000"]));
    let pid = c.wait_status(&sandbox, "RUNNING");
    let ns = |kind: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let app = id("ctd-app");
    let net = format!("network:/proc/{pid}/ns/net");
    let ipc = format!("ipc:/proc/{pid}/ns/ipc");
    let out = c.run(
        &["--rm", "--with-ns", &net, "--with-ns", &ipc],
        &app,
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid",
        ],
    );
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], ns("net"));
    assert_eq!(lines[1], ns("ipc"));
    assert_ne!(lines[2], ns("pid"), "the pid namespace is the app's own");
    c.assert_gone(&app);
    ok(&c.ctr(&["task", "kill", "-s", "SIGKILL", &sandbox]));
    c.wait_status(&sandbox, "STOPPED");
    ok(&c.ctr(&["task", "rm", &sandbox]));
    ok(&c.ctr(&["containers", "rm", &sandbox]));
    c.assert_gone(&sandbox);
    c.finish();
}

/// The limits containerd asks for (cpu shares, which the kubelet always
/// sets, and a memory limit) reach the cgroup files, and an exec joins the
/// cgroup. (ctr 1.6 has no `task update`; tests/podman.rs covers `update`.)
#[test]
fn resources_reach_the_cgroup() {
    let c = Containerd::start();
    let cid = id("ctd-res");
    ok(&c.run(
        &["-d", "--memory-limit", "67108864", "--cpu-shares", "512"],
        &cid,
        &["sleep", "1000"],
    ));
    c.wait_status(&cid, "RUNNING");
    let read = |names: &[&str]| cgroup_value(&cgroups_at(&c.cgroup(&cid)), names);
    let mem = ["memory.limit_in_bytes", "memory.max"];
    assert_eq!(read(&mem), "67108864");
    let cpu = read(&["cpu.shares", "cpu.weight"]);
    // v1 takes the shares as given; v2 gets them converted (512 → 20).
    assert!(cpu == "512" || cpu == "20", "cpu: {cpu}");

    let inside = output(c.exec_cmd(&["--exec-id", "e1", &cid, "cat", "/proc/self/cgroup"]));
    assert!(inside.status.success(), "{}", stderr(&inside));
    assert!(
        stdout(&inside).contains(&c.cgroup(&cid)),
        "exec joins the cgroup: {}",
        stdout(&inside)
    );

    ok(&c.ctr(&["task", "kill", "-s", "SIGKILL", &cid]));
    c.wait_status(&cid, "STOPPED");
    ok(&c.ctr(&["task", "rm", &cid]));
    ok(&c.ctr(&["containers", "rm", &cid]));
    c.assert_gone(&cid);
    c.finish();
}
