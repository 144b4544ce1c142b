//! Load: concurrent clients doing `run -d`/`stop`/`rm` cycles on distinct
//! names and on one shared name, concurrent `pull`s and `load`s of one
//! image, and many running containers under `ps`/`logs`/`stats` in a loop.
//! Zero errors but the expected name conflicts, zero leaks (the engine
//! fixture's leak checker), ops/s printed.
//!
//! `make test` runs the short figures; `make soak` the (500 cycles
//! by 8 clients, 200 running containers) through these variables:
//! BERTH_LOAD_CLIENTS, BERTH_LOAD_CYCLES (per test, over all clients),
//! BERTH_LOAD_RUNNING, BERTH_LOAD_SECS (the ps/logs/stats loop).

// The registry helper lives with the image tests' fixtures, which carry
// their own copy of the leak checker.
#![allow(clippy::duplicate_mod)]

mod common;
#[path = "common/images.rs"]
mod images;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::engine::{Berth, IMAGE};
use common::*;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn clients() -> usize {
    knob("BERTH_LOAD_CLIENTS", 8)
}

/// What the clients saw: operations done, name conflicts, and any other
/// failure (each one a test failure).
#[derive(Default)]
struct Tally {
    ops: AtomicUsize,
    conflicts: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn check(&self, what: &str, out: &std::process::Output) -> bool {
        self.ops.fetch_add(1, Ordering::Relaxed);
        if out.status.success() {
            return true;
        }
        let err = stderr(out);
        if err.contains("is already in use") {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{what}: {}", err.trim()));
        }
        false
    }

    #[track_caller]
    fn report(&self, test: &str, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        let ops = self.ops.load(Ordering::Relaxed);
        eprintln!(
            "{test}: {ops} ops by {} clients in {secs:.1}s = {:.1} ops/s, {} name conflicts",
            clients(),
            ops as f64 / secs,
            self.conflicts.load(Ordering::Relaxed)
        );
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            errors.is_empty(),
            "{test}: {} error(s):\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
}

/// `cycles` run -d/stop/rm cycles shared by the clients; `name(client, n)`
/// names each container.
fn cycles(b: &Berth, tally: &Tally, cycles: usize, name: impl Fn(usize, usize) -> String + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for c in 0..clients() {
            let (next, name) = (&next, &name);
            s.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= cycles {
                        break;
                    }
                    let name = name(c, n);
                    let run = b.run(&["run", "-d", "--name", &name, IMAGE, "sleep", "1000"]);
                    if !tally.check(&format!("run {name}"), &run) {
                        continue;
                    }
                    let id = stdout(&run).trim().to_string();
                    // By ID: a shared name may be someone else's by now.
                    tally.check(&format!("stop {name}"), &b.run(&["stop", "-t", "0", &id]));
                    tally.check(&format!("rm {name}"), &b.run(&["rm", &id]));
                }
            });
        }
    });
}

#[test]
fn concurrent_cycles_on_distinct_and_shared_names() {
    let b = Berth::new();
    let n = knob("BERTH_LOAD_CYCLES", 32);
    let tally = Tally::default();
    let t0 = Instant::now();
    cycles(&b, &tally, n, |c, i| format!("c{c}-{i}"));
    tally.report("cycles on distinct names", t0);
    assert_eq!(tally.conflicts.load(Ordering::Relaxed), 0);

    let shared = Tally::default();
    let t0 = Instant::now();
    cycles(&b, &shared, n, |_, _| "shared".to_string());
    shared.report("cycles on one shared name", t0);
    assert_eq!(
        b.ids(),
        Vec::<String>::new(),
        "every cycle removed its container"
    );
}

#[test]
fn concurrent_pulls_and_loads_of_one_image() {
    let reg = images::Registry::start(images::Auth::None);
    let archive = fixtures().join("random-oci.tar");
    reg.push(
        &format!("oci-archive:{}", archive.display()),
        "test/random:1",
        "oci",
    );
    let reference = format!("{}/test/random:1", reg.host());
    let b = Berth::new();
    let tally = Tally::default();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients() {
            s.spawn(|| tally.check("pull", &b.run(&["pull", "--insecure", "-q", &reference])));
        }
    });
    tally.report("concurrent pulls", t0);
    let t0 = Instant::now();
    let loads = Tally::default();
    std::thread::scope(|s| {
        for _ in 0..clients() {
            s.spawn(|| {
                loads.check(
                    "load",
                    &b.run(&["load", "-q", "-i", archive.to_str().unwrap()]),
                )
            });
        }
    });
    loads.report("concurrent loads", t0);
    // One image, whole: every blob hashes to its name, every layer there.
    let store = berth::image::Store::open(&b.root()).unwrap();
    let img = store.resolve(&reference).unwrap();
    for l in &img.layer_dirs {
        assert!(l.is_dir(), "{}", l.display());
    }
    for e in std::fs::read_dir(b.root().join("blobs/sha256"))
        .unwrap()
        .flatten()
    {
        use sha2::Digest;
        let hex: String = sha2::Sha256::digest(std::fs::read(e.path()).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, e.file_name().to_string_lossy(), "a corrupt blob");
    }
    ok(&b.run(&["rmi", &reference]));
    // The temp files of the loser of each race are gone too.
    assert_eq!(
        std::fs::read_dir(b.root().join("tmp")).unwrap().count(),
        0,
        "temp files left"
    );
}

#[test]
fn many_running_containers_under_ps_logs_and_stats() {
    let b = Berth::new();
    let running = knob("BERTH_LOAD_RUNNING", 10);
    let secs = knob("BERTH_LOAD_SECS", 5) as u64;
    let tally = Tally::default();
    let t0 = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..clients() {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= running {
                        break;
                    }
                    let name = format!("r{n}");
                    tally.check(
                        &format!("run {name}"),
                        &b.run(&[
                            "run",
                            "-d",
                            "--name",
                            &name,
                            IMAGE,
                            "sh",
                            "-c",
                            "echo started; while true; do sleep 1; echo tick; done",
                        ]),
                    );
                }
            });
        }
    });
    tally.report(&format!("starting {running} containers"), t0);

    let busy = Tally::default();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(secs);
    std::thread::scope(|s| {
        for c in 0..clients() {
            let (b, busy) = (&b, &busy);
            s.spawn(move || {
                let mut i = c;
                while Instant::now() < end {
                    let name = format!("r{}", i % running);
                    match i % 3 {
                        0 => {
                            let out = b.run(&["ps", "-q"]);
                            if busy.check("ps", &out) && stdout(&out).lines().count() != running {
                                busy.errors.lock().unwrap().push(format!(
                                    "ps listed {} of {running}",
                                    stdout(&out).lines().count()
                                ));
                            }
                        }
                        1 => {
                            let out = b.run(&["logs", &name]);
                            if busy.check(&format!("logs {name}"), &out)
                                && !stdout(&out).starts_with("started\n")
                            {
                                busy.errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("logs {name}: {:?}", stdout(&out)));
                            }
                        }
                        _ => {
                            busy.check(
                                &format!("stats {name}"),
                                &b.run(&["stats", "--no-stream", &name]),
                            );
                        }
                    }
                    i += clients();
                }
            });
        }
    });
    busy.report(
        &format!("ps/logs/stats over {running} running containers"),
        t0,
    );
    assert_eq!(b.ids().len(), running);
    // The fixture's drop removes them all and checks for leaks.
}
