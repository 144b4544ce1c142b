//! The shim's job: restart policies with docker's semantics, surviving the
//! CLI, and recovery when the shim or the host's state dies.

mod common;

use std::time::Duration;

use common::engine::{Berth, IMAGE};
use common::*;

fn shim_pid(b: &Berth, name: &str) -> i32 {
    let id = b.inspect(name)["Id"].as_str().unwrap().to_string();
    let st: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.root().join("containers").join(id).join("state.json")).unwrap(),
    )
    .unwrap();
    st["shim_pid"].as_i64().unwrap() as i32
}

#[test]
fn on_failure_restarts_exactly_n_times_with_growing_delays() {
    let b = Berth::new();
    ok(&b.run(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:3",
        IMAGE,
        "sh",
        "-c",
        "echo attempt; exit 1",
    ]));
    b.wait_for("the retries to end", || b.status("flaky") == "exited");
    let v = b.inspect("flaky");
    assert_eq!(v["RestartCount"], 3, "{v}");
    assert_eq!(v["State"]["ExitCode"], 1);
    let logs = ok(&b.run(&["logs", "-t", "flaky"]));
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = logs
        .lines()
        .map(|l| chrono::DateTime::parse_from_rfc3339(l.split(' ').next().unwrap()).unwrap())
        .collect();
    assert_eq!(times.len(), 4, "the first run and 3 restarts: {logs}");
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect();
    // 100, 200, 400 ms (plus the time to start).
    assert!(
        gaps[0] >= 90 && gaps[1] >= 190 && gaps[2] >= 390,
        "{gaps:?}"
    );
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "delays must grow: {gaps:?}"
    );
}

#[test]
fn always_survives_a_killed_container_process() {
    let b = Berth::new();
    ok(&b.run(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "always",
        IMAGE,
        "sleep",
        "1000",
    ]));
    let pid = b.inspect("phoenix")["State"]["Pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    b.wait_for("a restart", || {
        let v = b.inspect("phoenix");
        v["State"]["Status"] == "running"
            && v["State"]["Pid"].as_i64() != Some(pid)
            && v["RestartCount"] == 1
    });
    // A manual stop suspends the policy.
    ok(&b.run(&["stop", "-t", "0", "phoenix"]));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(b.status("phoenix"), "exited");
}

#[test]
fn the_container_outlives_the_cli_and_a_killed_shim_is_noticed() {
    let b = Berth::new();
    ok(&b.run(&["run", "-d", "--name", "orphan", IMAGE, "sleep", "1000"]));
    let id = b.inspect("orphan")["Id"].as_str().unwrap().to_string();
    let shim = shim_pid(&b, "orphan");
    assert_eq!(b.status("orphan"), "running");
    // The shim is detached: another session than ours (a terminal closing
    // does not reach it), and not a session leader (it can get no terminal).
    let stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let our_sid = nix::unistd::getsid(None).unwrap().as_raw().to_string();
    assert_ne!(fields[3], our_sid, "the shim has left our session");
    assert_ne!(
        fields[3],
        shim.to_string(),
        "the shim is not a session leader"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    b.wait_for("ps to show it exited", || b.status("orphan") == "exited");
    let ps = ok(&b.run(&["ps", "-a"]));
    assert!(ps.contains("Exited"), "{ps}");
    // The container died with its shim, and rm cleans everything.
    ok(&b.run(&["rm", "orphan"]));
    b.assert_clean(&[id]);
}

#[test]
fn a_wiped_state_dir_is_recovered() {
    // As after a reboot: shims and runtime state gone.
    let b = Berth::new();
    ok(&b.run(&["run", "-d", "--name", "reboot", IMAGE, "sleep", "1000"]));
    let shim = shim_pid(&b, "reboot");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    b.wait_for("the container to die with its shim", || {
        b.status("reboot") == "exited"
    });
    // A reboot takes the mounts under the state dir (network namespaces)
    // with it too.
    for m in mounts_under(&b.state()).iter().rev() {
        nix::mount::umount2(std::path::Path::new(m), nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
    std::fs::remove_dir_all(b.state()).unwrap();
    assert_eq!(b.status("reboot"), "exited");
    ok(&b.run(&["start", "reboot"]));
    assert_eq!(b.status("reboot"), "running");
    ok(&b.run(&["rm", "-f", "reboot"]));
}

#[test]
fn tty_echoes_input() {
    let b = Berth::new();
    let mut c = std::process::Command::new("script");
    let line = format!(
        "{} run --rm -it {IMAGE} sh -c 'read x; echo got:$x'",
        env!("CARGO_BIN_EXE_berth")
    );
    c.args(["-qec", &line, "/dev/null"]);
    c.env("BERTH_ROOT", b.root()).env("BERTH_STATE", b.state());
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    use std::io::Write;
    child.stdin.as_mut().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("hello\r\n"),
        "the terminal echoes input: {text:?}"
    );
    assert!(text.contains("got:hello"), "{text:?}");
}

#[test]
fn kill_pause_wait_restart() {
    let b = Berth::new();
    ok(&b.run(&[
        "run",
        "-d",
        "--name",
        "sig",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 9' USR1; while true; do sleep 0.05; done",
    ]));
    ok(&b.run(&["pause", "sig"]));
    assert_eq!(b.status("sig"), "paused");
    let ps = ok(&b.run(&["ps", "--format", "json"]));
    assert!(ps.contains(r#""State":"paused""#), "{ps}");
    // Frozen for real: the loop's sleeps stop, so its process list stays.
    let frozen = ok(&b.run(&["top", "sig"]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(ok(&b.run(&["top", "sig"])), frozen);
    ok(&b.run(&["unpause", "sig"]));
    assert_eq!(b.status("sig"), "running");
    let ps = ok(&b.run(&["ps", "--format", "json"]));
    assert!(ps.contains(r#""State":"running""#), "{ps}");
    ok(&b.run(&["kill", "-s", "USR1", "sig"]));
    let out = ok(&b.run(&["wait", "sig"]));
    assert_eq!(out, "9\n");
    ok(&b.run(&["restart", "sig"]));
    assert_eq!(b.status("sig"), "running");
    let e = fails(&b.run(&["kill", "-s", "NOPE", "sig"]));
    assert!(e.contains("NOPE"), "{e}");
}
