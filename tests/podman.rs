//! berth-runtime driven by podman through conmon: podman's storage, run
//! and tmp dirs in a temp dir (private containers.conf and storage.conf),
//! the fixture image loaded, and `podman --runtime <berth-runtime>`. podman
//! sends its default seccomp profile, its mounts (tmpcopyup tmpfs among
//! them) and rlimits; each test checks what the user sees and that nothing
//! of the container is left.
//!
//! The runtime's state is under its default root (/run/berth-runtime), as
//! runc's is under /run/runc with podman: podman gives the runtime no
//! --root on the calls it makes itself (and drops `--runtime-flag` on its
//! cleanup path), so that is where podman users' containers live; the
//! tests check their containers' entries are gone from it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::clients::*;
use common::*;

const IMAGE: &str = "localhost/busybox:latest";
const RUNTIME_ROOT: &str = "/run/berth-runtime";

struct Podman {
    dir: tempfile::TempDir,
    /// The cgroup parent of this test's containers (and of conmon, which
    /// podman puts in PARENT/conmon).
    parent: String,
    /// Container ids used, for the leak checks.
    ids: std::cell::RefCell<Vec<String>>,
}

impl Podman {
    fn new() -> Podman {
        require_root();
        require_tools(&["podman", "conmon"], "Debian's podman and conmon");
        let dir = tempfile::Builder::new()
            .prefix("berth-podman.")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                d.join("graph").display(),
                d.join("run").display()
            ),
        )
        .expect("write storage.conf");
        // This host's hard nofile limit is 20000 (no CAP_SYS_RESOURCE to
        // raise it), under podman's default of 1048576: ask for less.
        std::fs::write(
            d.join("containers.conf"),
            format!(
                r#"[containers]
netns = "none"
default_ulimits = ["nofile=10000:10000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp}"
runtime_supports_json = ["crun", "runc", "berth-runtime"]

[engine.runtimes]
berth-runtime = ["{bin}"]

[network]
network_config_dir = "{net}"
"#,
                tmp = d.join("tmp").display(),
                bin = Runtime::bin(),
                net = d.join("networks").display(),
            ),
        )
        .expect("write containers.conf");
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = Podman {
            dir,
            parent: format!("/berth-podman-{}-{n}", std::process::id()),
            ids: Default::default(),
        };
        let archive = fixtures().join("busybox-oci.tar");
        ok(&p.run(&["load", "-i", archive.to_str().unwrap()]));
        let images = ok(&p.run(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
        assert!(
            images.lines().any(|l| l == IMAGE),
            "load did not name the image {IMAGE}: {images}"
        );
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.path().join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path().join("storage.conf"))
            .arg("--runtime")
            .arg(Runtime::bin())
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        output(self.cmd(args))
    }

    /// `podman run` in this test's cgroup parent, the container's id
    /// recorded through --cidfile: `flags` go before the image.
    fn run_cmd(&self, flags: &[&str], cmd: &[&str]) -> (Command, PathBuf) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cidfile = self.path().join(format!("cid.{n}"));
        let mut args = vec!["run", "--cidfile", cidfile.to_str().unwrap()];
        // A pod's containers go in the pod's cgroup, under its parent.
        if !flags.contains(&"--pod") {
            args.extend(["--cgroup-parent", &self.parent]);
        }
        args.extend(flags);
        args.push(IMAGE);
        args.extend(cmd);
        (self.cmd(&args), cidfile)
    }

    /// Runs a container; returns podman's output and the container's id.
    fn run_container(&self, flags: &[&str], cmd: &[&str]) -> (Output, String) {
        let (c, cidfile) = self.run_cmd(flags, cmd);
        let out = output(c);
        (out, self.cid(&cidfile))
    }

    fn cid(&self, cidfile: &Path) -> String {
        let id = std::fs::read_to_string(cidfile)
            .unwrap_or_else(|e| panic!("{}: {e}", cidfile.display()))
            .trim()
            .to_string();
        assert_eq!(id.len(), 64, "a container id: {id:?}");
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn inspect(&self, id: &str, format: &str) -> String {
        ok(&self.run(&["inspect", "--format", format, id]))
            .trim()
            .to_string()
    }

    /// The container's cgroups: PARENT/libpod-ID, or deeper in a pod's.
    fn cgroups(&self, id: &str) -> Vec<PathBuf> {
        find_cgroups(&self.parent, &format!("libpod-{id}"))
    }

    /// Nothing of container `id` is left: runtime state, cgroup, rootfs
    /// mount, conmon. (podman cleans up in conmon's exit command too, after
    /// the client returned: waited for.)
    #[track_caller]
    fn assert_gone(&self, id: &str) {
        let state = Path::new(RUNTIME_ROOT).join(id);
        let leftovers = || {
            let mut left = Vec::new();
            if state.exists() {
                left.push(format!("runtime state {}", state.display()));
            }
            for d in self.cgroups(id) {
                left.push(format!("cgroup {}", d.display()));
            }
            // Its own (userdata/shm); the rootfs mounts are named by
            // layer, and checked in finish() once no container runs.
            for m in self.container_mounts() {
                if m.contains(id) {
                    left.push(format!("mount {m}"));
                }
            }
            for p in pids_with_cmdline(&format!("conmon --api-version 1 -c {id}")) {
                left.push(format!("conmon {p}"));
            }
            left
        };
        if poll_until(10, || leftovers().is_empty().then_some(())).is_none() {
            panic!("container {id} left behind: {:?}", leftovers());
        }
    }

    /// Mounts under the temp dir but podman's storage home: the overlay
    /// driver makes GRAPHROOT/overlay a private bind of itself and leaves it
    /// while any podman process (conmon's cleanup one among them) may still
    /// use the store; it holds no container.
    fn container_mounts(&self) -> Vec<String> {
        let home = self.path().join("graph/overlay");
        mounts_under(self.path())
            .into_iter()
            .filter(|m| Path::new(m) != home)
            .collect()
    }

    /// No container left in podman, and the cgroup parent (with podman's
    /// conmon cgroup in it) empty, so it can be removed.
    fn finish(self) {
        let all = ok(&self.run(&["ps", "-a", "-q"]));
        assert_eq!(all.trim(), "", "containers left");
        for id in self.ids.borrow().iter() {
            self.assert_gone(id);
        }
        if poll_until(10, || self.container_mounts().is_empty().then_some(())).is_none() {
            panic!("mounts left: {:?}", self.container_mounts());
        }
        let left = remove_cgroups(&self.parent);
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }
}

impl Drop for Podman {
    /// Best effort after a failed test.
    fn drop(&mut self) {
        let _ = self.run(&["pod", "rm", "-a", "-f", "-t", "0"]);
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        for id in self.ids.borrow().iter() {
            for p in pids_with_cmdline(&format!("conmon --api-version 1 -c {id}")) {
                kill_pid(p);
            }
            let _ = Command::new(Runtime::bin())
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
        let _ = poll_until(5, || remove_cgroups(&self.parent).is_empty().then_some(()));
    }
}

fn pty_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .split('\n')
        .map(|l| l.trim_matches('\r').to_string())
        .collect()
}

#[test]
fn run_rm_prints_and_returns_the_status() {
    let p = Podman::new();
    let (out, id) = p.run_container(&["--rm"], &["echo", "hi"]);
    assert_eq!(ok(&out), "hi\n");
    p.assert_gone(&id);

    let (out, id) = p.run_container(
        &["--rm"],
        &[
            "sh",
            "-c",
            "grep -c . /proc/self/status >/dev/null; grep Seccomp: /proc/self/status; ulimit -n; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["Seccomp:\t2", "10000"],
        "podman's seccomp profile is in force and its rlimits are set"
    );
    p.assert_gone(&id);

    // A program that is not there: podman reads the reason from the
    // runtime's JSON log (it passes --log-format=json because the runtime
    // is in runtime_supports_json) and maps it to 127, as with runc.
    let (out, id) = p.run_container(&["--rm"], &["/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let err = stderr(&out);
    // podman prefixes the runtime's path to the message: the JSON log's
    // `msg` alone, where the text fallback would show our stderr line
    // ("berth-runtime: exec: …").
    assert!(
        err.contains(&format!("{}: exec: \"/no/such/program\"", Runtime::bin())),
        "{err}"
    );
    p.assert_gone(&id);
    p.finish();
}

#[test]
fn detached_exec_pause_stop_rm() {
    let p = Podman::new();
    let (out, id) = p.run_container(
        &["-d"],
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        ],
    );
    assert_eq!(ok(&out).trim(), id);
    assert_eq!(p.inspect(&id, "{{.State.Status}}"), "running");

    let out = p.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo in-exec; cat /proc/1/cmdline; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("in-exec\nsh\0-c\0"),
        "{}",
        stdout(&out)
    );

    ok(&p.run(&["pause", &id]));
    assert_eq!(p.inspect(&id, "{{.State.Status}}"), "paused");
    let freezer = p
        .cgroups(&id)
        .into_iter()
        .map(|d| d.join("freezer.state"))
        .find(|f| f.exists());
    if let Some(f) = &freezer {
        assert_eq!(std::fs::read_to_string(f).unwrap().trim(), "FROZEN");
    }
    ok(&p.run(&["unpause", &id]));
    assert_eq!(p.inspect(&id, "{{.State.Status}}"), "running");
    if let Some(f) = &freezer {
        assert_eq!(std::fs::read_to_string(f).unwrap().trim(), "THAWED");
    }

    // stop: SIGTERM, which the init traps and exits 0 on, well before the
    // timeout's SIGKILL.
    let started = std::time::Instant::now();
    ok(&p.run(&["stop", "-t", "20", &id]));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "stop took {:?}: SIGTERM did not reach the init",
        started.elapsed()
    );
    assert_eq!(p.inspect(&id, "{{.State.Status}}"), "exited");
    assert_eq!(p.inspect(&id, "{{.State.ExitCode}}"), "0");
    ok(&p.run(&["rm", &id]));
    p.assert_gone(&id);
    p.finish();
}

#[test]
fn terminal_for_run_and_exec() {
    let p = Podman::new();
    let (c, cidfile) = p.run_cmd(
        &["--rm", "-t"],
        &["sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty; exit 5"],
    );
    let out = in_pty(&c);
    assert_eq!(out.status.code(), Some(5), "{}", stdout(&out));
    let lines = pty_lines(&out);
    assert!(lines.iter().any(|l| l == "/dev/pts/0"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "stdin-is-a-tty"), "{lines:?}");
    p.assert_gone(&p.cid(&cidfile));

    let (out, id) = p.run_container(&["-d"], &["sleep", "1000"]);
    ok(&out);
    let out = in_pty(&p.cmd(&["exec", "-t", &id, "sh", "-c", "tty; exit 6"]));
    assert_eq!(out.status.code(), Some(6), "{}", stdout(&out));
    assert!(
        pty_lines(&out).iter().any(|l| l.starts_with("/dev/pts/")),
        "{:?}",
        pty_lines(&out)
    );
    ok(&p.run(&["rm", "-f", "-t", "0", &id]));
    p.assert_gone(&id);
    p.finish();
}

/// podman's tmpfs mounts carry `tmpcopyup` (runc's and crun's extension):
/// `--tmpfs /etc` starts with the image's /etc, and `--read-only` gets
/// writable /tmp and /run made the same way.
#[test]
fn read_only_root_and_tmpfs_copyup() {
    let p = Podman::new();
    let (out, id) = p.run_container(
        &["--rm", "--read-only", "--tmpfs", "/etc"],
        &[
            "sh",
            "-c",
            "head -1 /etc/passwd; grep -E ' /etc | /tmp | /run ' /proc/self/mountinfo | cut -d' ' -f5,9 | sort; \
             touch /tmp/ok /run/ok /etc/ok && echo writable; touch /rootfs-file 2>&1 | cut -d: -f3-",
        ],
    );
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "root:x:0:0:root:/root:/bin/sh",
            "/etc tmpfs",
            "/run tmpfs",
            "/tmp tmpfs",
            "writable",
            " Read-only file system",
        ]
    );
    p.assert_gone(&id);
    p.finish();
}

/// A pod, as Kubernetes makes them: podman's infra container (catatonit)
/// holds the network, IPC and UTS namespaces, and the pod's containers join
/// them; the whole pod goes with `pod rm`.
#[test]
fn pod_containers_share_namespaces() {
    let p = Podman::new();
    let pod = format!("berth-pod-{}", std::process::id());
    ok(&p.run(&[
        "pod",
        "create",
        "--name",
        &pod,
        "--cgroup-parent",
        &p.parent,
        "--share",
        "net,ipc,uts",
        "--hostname",
        "podhost",
    ]));
    let infra = p.run(&["pod", "inspect", "--format", "{{.InfraContainerID}}", &pod]);
    let infra = ok(&infra).trim().to_string();
    p.ids.borrow_mut().push(infra.clone());

    let (out, web) = p.run_container(&["-d", "--pod", &pod], &["sleep", "1000"]);
    ok(&out);
    let pid = p.inspect(&web, "{{.State.Pid}}");
    let ns = |kind: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let (out, app) = p.run_container(
        &["--rm", "--pod", &pod],
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; hostname",
        ],
    );
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], ns("net"));
    assert_eq!(lines[1], ns("ipc"));
    assert_ne!(
        lines[2],
        ns("pid"),
        "each container has its own pid namespace"
    );
    assert_eq!(lines[3], "podhost");
    p.assert_gone(&app);

    ok(&p.run(&["pod", "rm", "-f", "-t", "0", &pod]));
    p.assert_gone(&web);
    p.assert_gone(&infra);
    p.finish();
}

/// `--memory`/`--pids-limit`/`--cpu-quota` reach the cgroup files and `podman update`
/// (our `update --resources=FILE`) changes them on the running container.
#[test]
fn limits_and_update() {
    let p = Podman::new();
    let (out, id) = p.run_container(
        &[
            "-d",
            "--memory",
            "64m",
            "--pids-limit",
            "40",
            "--cpu-quota",
            "50000",
        ],
        &["sleep", "1000"],
    );
    assert_eq!(ok(&out).trim(), id);
    let read = |names: &[&str]| cgroup_value(&p.cgroups(&id), names);
    let mem = ["memory.limit_in_bytes", "memory.max"];
    assert_eq!(read(&mem), (64u64 << 20).to_string());
    assert_eq!(read(&["pids.max"]), "40");
    // v1 has the quota alone; v2 "quota period".
    let quota = ["cpu.cfs_quota_us", "cpu.max"];
    assert!(read(&quota).starts_with("50000"), "{}", read(&quota));

    ok(&p.run(&["update", "--memory", "32m", "--cpu-quota", "25000", &id]));
    assert_eq!(
        read(&mem),
        (32u64 << 20).to_string(),
        "update reached the cgroup"
    );
    assert!(read(&quota).starts_with("25000"), "{}", read(&quota));
    assert_eq!(read(&["pids.max"]), "40", "what update did not name stays");

    ok(&p.run(&["rm", "-f", "-t", "0", &id]));
    p.assert_gone(&id);
    p.finish();
}
