//! The engine, end to end from the fixture image: run, ps, logs, stop, rm,
//! exec, inspect, volumes, and bad input.

mod common;

use std::time::{Duration, Instant};

use common::engine::{Berth, IMAGE};
use common::*;

#[test]
fn run_foreground_prints_and_returns_the_exit_code() {
    let b = Berth::new();
    let out = b.run(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert!(b.ids().is_empty(), "--rm removed it");
}

#[test]
fn run_detached_ps_logs_stop_rm() {
    let b = Berth::new();
    let id = ok(&b.run(&[
        "run",
        "-d",
        "--name",
        "ticker",
        IMAGE,
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]));
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    let ps = ok(&b.run(&["ps"]));
    assert!(
        ps.lines().next().unwrap().starts_with("CONTAINER ID"),
        "{ps}"
    );
    assert!(
        ps.contains(&id[..12]) && ps.contains("ticker") && ps.contains("Up "),
        "{ps}"
    );
    b.wait_for("three ticks", || {
        stdout(&b.run(&["logs", "ticker"])).lines().count() >= 3
    });
    let logs = ok(&b.run(&["logs", "--tail", "1", "-t", "ticker"]));
    assert_eq!(logs.lines().count(), 1);
    assert!(logs.contains("Z tick "), "{logs}");
    // Any unique prefix of the ID works where a name does.
    assert_eq!(b.status(&id[..8]), "running");
    let e = fails(&b.run(&["rm", "ticker"]));
    assert!(e.contains("running") && e.contains("rm -f"), "{e}");
    // sh as pid 1 ignores SIGTERM: stop returns after the timeout, killed.
    let t = Instant::now();
    ok(&b.run(&["stop", "-t", "1", "ticker"]));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let st = b.inspect("ticker");
    assert_eq!(st["State"]["Status"], "exited");
    assert_eq!(st["State"]["ExitCode"], 137);
    let ps = ok(&b.run(&["ps", "-a"]));
    assert!(ps.contains("Exited (137)"), "{ps}");
    ok(&b.run(&["rm", "ticker"]));
    assert!(b.ids().is_empty());
    b.assert_clean(&[id]);
}

#[test]
fn logs_follow_until_exit() {
    let b = Berth::new();
    ok(&b.run(&[
        "run",
        "-d",
        "--name",
        "follow",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.2; done",
    ]));
    let out = b.run(&["logs", "-f", "follow"]);
    assert_eq!(ok(&out), "line 1\nline 2\nline 3\n");
    assert_eq!(b.status("follow"), "exited");
}

#[test]
fn inspect_has_dockers_shape() {
    let b = Berth::new();
    ok(&b.run(&[
        "create", "--name", "shape", "-e", "A=1", "--label", "k=v", IMAGE, "true",
    ]));
    let v = b.inspect("shape");
    for k in [
        "Id",
        "Name",
        "Created",
        "State",
        "RestartCount",
        "Image",
        "Config",
        "HostConfig",
        "Mounts",
        "NetworkSettings",
    ] {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    for k in [
        "Status",
        "Running",
        "Paused",
        "Restarting",
        "OOMKilled",
        "Pid",
        "ExitCode",
        "StartedAt",
        "FinishedAt",
    ] {
        assert!(v["State"].get(k).is_some(), "State.{k} missing");
    }
    assert_eq!(v["Name"], "/shape");
    assert_eq!(v["State"]["Status"], "created");
    assert!(
        v["Config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&"A=1".into())
    );
    assert_eq!(v["Config"]["Labels"]["k"], "v");
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn exec_in_a_running_container() {
    let b = Berth::new();
    ok(&b.run(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--hostname",
        "exhost",
        IMAGE,
        "sleep",
        "1000",
    ]));
    let out = ok(&b.run(&[
        "exec",
        "-e",
        "X=y",
        "-w",
        "/tmp",
        "ex",
        "sh",
        "-c",
        "hostname; echo $X; pwd; cat /proc/1/cmdline",
    ]));
    assert_eq!(out, "exhost\ny\n/tmp\nsleep\u{0}1000\u{0}");
    let out = b.run(&["exec", "ex", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    let out = b.run(&["exec", "-u", "user", "ex", "id", "-u"]);
    assert_eq!(ok(&out), "1000\n");
}

#[test]
fn limits_and_user_are_seen_inside() {
    let b = Berth::new();
    let out = b.run(&[
        "run", "--rm", "--read-only", "--memory", "64m", "--pids-limit", "20", "--user", "user", "--ulimit", "nofile=256:512",
        IMAGE, "sh", "-c",
        "touch /x 2>/dev/null && echo rw || echo ro; id -u; id -g; ulimit -n; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max",
    ]);
    assert_eq!(ok(&out), format!("ro\n1000\n1000\n256\n{}\n20\n", 64 << 20));
}

#[test]
fn volumes_outlive_containers() {
    let b = Berth::new();
    ok(&b.run(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]));
    assert!(
        ok(&b.run(&["volume", "ls", "-q"]))
            .lines()
            .any(|l| l == "data")
    );
    let out = ok(&b.run(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        IMAGE,
        "sh",
        "-c",
        "cat /data/f; touch /data/g 2>/dev/null || echo ro",
    ]));
    assert_eq!(out, "kept\nro\n");
    ok(&b.run(&[
        "create",
        "--name",
        "user",
        "-v",
        "data:/data",
        IMAGE,
        "true",
    ]));
    let e = fails(&b.run(&["volume", "rm", "data"]));
    assert!(e.contains("in use"), "{e}");
    ok(&b.run(&["rm", "user"]));
    ok(&b.run(&["volume", "rm", "data"]));
    assert!(ok(&b.run(&["volume", "ls", "-q"])).is_empty());
}

#[test]
fn bind_mounts_and_tmpfs() {
    let b = Berth::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "from host\n").unwrap();
    let spec = format!("{}:/h", host.path().display());
    let out = ok(&b.run(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "--tmpfs",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "cat /h/in; echo out > /h/out; grep -c ' /scratch tmpfs' /proc/mounts",
    ]));
    assert_eq!(out, "from host\n1\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "out\n"
    );
}

#[test]
fn bad_input_is_refused_cleanly() {
    let b = Berth::new();
    let e = fails(&b.run(&["run", "--memory", "12XB", IMAGE, "true"]));
    assert!(e.contains("12XB"), "{e}");
    let e = fails(&b.run(&["run", "--restart", "sometimes", IMAGE, "true"]));
    assert!(e.contains("sometimes"), "{e}");
    ok(&b.run(&["create", "--name", "taken", IMAGE, "true"]));
    let e = fails(&b.run(&["create", "--name", "taken", IMAGE, "true"]));
    assert!(e.contains("already in use"), "{e}");
    let e = fails(&b.run(&["run", "--rm", "localhost/nonexistent:1", "true"]));
    assert!(e.contains("localhost/nonexistent"), "{e}");
    let e = fails(&b.run(&["start", "ghost"]));
    assert!(e.contains("no such container"), "{e}");
    // A command not found: docker's 127 and message; --rm leaves nothing.
    let out = b.run(&["run", "--rm", IMAGE, "no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.ids().len(), 1, "only 'taken' is left");
}

#[test]
fn init_reaps_and_forwards() {
    let b = Berth::new();
    let out = ok(&b.run(&["run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; (sleep 0.1 &) ; sleep 0.3; ps -o stat,comm | grep -c '^Z' || true"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("/dev/init -- sh"), "{out}");
    assert_eq!(lines[1], "0", "no zombies under berth-init");
}

#[test]
fn default_seccomp_profile_and_capabilities() {
    let b = Berth::new();
    let out = ok(&b.run(&[
        "run", "--rm", IMAGE, "sh", "-c",
        "grep -E '^(Seccomp|CapEff|NoNewPrivs):' /proc/self/status; unshare -n true 2>/dev/null && echo unshared || echo refused",
    ]));
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // docker's 14 default capabilities: 0x00000000a80425fb.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.ends_with("refused\n"), "{out}");
    let out = ok(&b.run(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "no-new-privileges",
        IMAGE,
        "grep",
        "-E",
        "^(Seccomp|NoNewPrivs):",
        "/proc/self/status",
    ]));
    assert_eq!(out, "NoNewPrivs:\t1\nSeccomp:\t0\n");
    let out = ok(&b.run(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "KILL",
        IMAGE,
        "grep",
        "^CapEff:",
        "/proc/self/status",
    ]));
    assert_eq!(out, "CapEff:\t0000000000000020\n");
}

#[test]
fn a_cgroup_parent_the_user_made_stays() {
    let b = Berth::new();
    let cg = Cgroups::host();
    // The user's parent exists in the memory hierarchy only: the runtime
    // makes it in the others, and only those are the engine's to remove.
    let parent = format!("{}/mine", b.cgroup_parent);
    let users = cg.dir("memory", &parent);
    std::fs::create_dir_all(&users).unwrap();
    let id = ok(&b.run(&[
        "run",
        "-d",
        "--name",
        "inmine",
        "--cgroup-parent",
        &parent,
        IMAGE,
        "sleep",
        "1000",
    ]));
    assert!(
        users.join(id.trim()).is_dir(),
        "the container is not under {}",
        users.display()
    );
    let elsewhere = (cg.dir("pids", "") != cg.dir("memory", "")).then(|| cg.dir("pids", &parent));
    if let Some(d) = &elsewhere {
        assert!(d.is_dir(), "no {} while the container runs", d.display());
    }
    ok(&b.run(&["rm", "-f", "inmine"]));
    assert!(users.is_dir(), "the user's {} was removed", users.display());
    assert!(
        !users.join(id.trim()).exists(),
        "the container's cgroup is left"
    );
    if let Some(d) = &elsewhere {
        assert!(!d.exists(), "the engine's {} is left", d.display());
    }
    // The user's, made above.
    std::fs::remove_dir(&users).unwrap();
    let _ = std::fs::remove_dir(users.parent().unwrap());
}

#[test]
fn log_opts_rotate_and_bad_ones_are_refused() {
    let b = Berth::new();
    // ~90 bytes an entry: 200 entries rotate a 2 KiB log many times over.
    let out = ok(&b.run(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        IMAGE,
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo \"line $i\"; i=$((i+1)); done",
    ]));
    assert!(out.ends_with("line 199\n"), "{out}");
    let id = b.inspect("chatty")["Id"].as_str().unwrap().to_string();
    let log = b.root().join("containers").join(&id).join("container.log");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len());
    assert!(
        size(&log).unwrap() <= 2048,
        "{} is over max-size",
        log.display()
    );
    for k in [1, 2] {
        let older = log.with_extension(format!("log.{k}"));
        assert!(size(&older).unwrap() <= 2048, "{}", older.display());
    }
    assert!(
        !log.with_extension("log.3").exists(),
        "more than max-file files"
    );
    // `logs` reads the three files, oldest first: the newest lines, in order.
    let shown = ok(&b.run(&["logs", "chatty"]));
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.last(), Some(&"line 199"), "{shown}");
    assert!(!lines.contains(&"line 0"), "rotated out, still shown");
    let first: usize = lines[0].trim_start_matches("line ").parse().unwrap();
    let want: Vec<String> = (first..200).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want);
    let cfg = &b.inspect("chatty")["HostConfig"]["LogConfig"];
    assert_eq!(cfg["Type"], "json-file");
    assert_eq!(cfg["Config"]["max-size"], "2k");
    ok(&b.run(&["rm", "chatty"]));

    for (flags, says) in [
        (&["--log-opt", "max-size=0"][..], "max-size"),
        (&["--log-opt", "max-file=0"][..], "max-file"),
        (&["--log-opt", "compress=true"][..], "compress"),
        (&["--log-opt", "max-size"][..], "KEY=VALUE"),
        (&["--log-driver", "syslog"][..], "syslog"),
    ] {
        let mut args = vec!["run", "--name", "badlog"];
        args.extend_from_slice(flags);
        args.extend([IMAGE, "true"]);
        let e = fails(&b.run(&args));
        assert!(e.contains(says) && e.lines().count() == 1, "{flags:?}: {e}");
    }
    assert!(b.ids().is_empty(), "a refused run left a container");
}

#[test]
fn a_name_left_by_a_cut_short_rename_is_not_the_container() {
    let b = Berth::new();
    let id = ok(&b.run(&["create", "--name", "before", IMAGE, "true"]));
    let id = id.trim();
    ok(&b.run(&["rename", "before", "after"]));
    // What a rename killed between writing the record and dropping the old
    // name leaves: the old name still pointing at the container.
    let old = b.root().join("names").join("before");
    std::os::unix::fs::symlink(id, &old).unwrap();
    let e = fails(&b.run(&["inspect", "before"]));
    assert!(e.contains("no such container"), "{e}");
    assert_eq!(b.inspect("after")["Id"], id);
    // A create is where the name is wanted: it takes it over.
    ok(&b.run(&["create", "--name", "before", IMAGE, "true"]));
    assert_ne!(b.inspect("before")["Id"], id);
    ok(&b.run(&["rm", "before", "after"]));
}
