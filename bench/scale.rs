//! Section 3, scale: N detached `sleep` containers per contender (berth engine
//! `run -d`, berth-runtime / runc / crun `run -d`), started one after the
//! other; `ps`/`list` with all N running; kill + delete of all; memory per
//! container (the `free` used delta) and the shim's RSS/PSS against
//! conmon's (podman with N containers). Optionally 1000 berth containers.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Ctx;
use crate::engine::{self, Engine, IMAGE};
use crate::measure::{Cmd, Samples, order};
use crate::podman::Podman;
use crate::proc_mem;
use crate::report::{Cmp, Section, Unit};
use crate::runtimes::{self, Runtime};

/// One contender of the scale runs.
enum Who<'a> {
    Engine(&'a Engine),
    Runtime(&'a Runtime, &'a std::path::Path),
}

impl Who<'_> {
    fn name(&self) -> &'static str {
        match self {
            Who::Engine(_) => "berth",
            Who::Runtime(rt, _) => rt.name,
        }
    }

    fn start(&self, id: &str) -> Cmd {
        match self {
            Who::Engine(e) => e.cmd().args([
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                id,
                IMAGE,
                "sleep",
                "1000000",
            ]),
            Who::Runtime(rt, bundle) => {
                rt.cmd().args(["run", "-d", "--bundle"]).arg(bundle).arg(id)
            }
        }
    }

    fn list(&self) -> Cmd {
        match self {
            Who::Engine(e) => e.cmd().arg("ps"),
            Who::Runtime(rt, _) => rt.cmd().arg("list"),
        }
    }

    fn remove(&self, id: &str) -> Cmd {
        match self {
            Who::Engine(e) => e.cmd().args(["rm", "-f", id]),
            Who::Runtime(rt, _) => rt.cmd().args(["delete", "--force", id]),
        }
    }

    /// Lines of `list` output naming a running container, to check the
    /// count off the clock.
    fn running(&self) -> Result<usize> {
        let out = self.list().output()?;
        Ok(out
            .lines()
            .filter(|l| l.contains("running") || l.contains("Up "))
            .count())
    }
}

struct Totals {
    start: Samples,
    each: Samples,
    list: Samples,
    remove: Samples,
    mem: Samples,
}

impl Totals {
    fn new() -> Totals {
        Totals {
            start: Samples::default(),
            each: Samples::default(),
            list: Samples::default(),
            remove: Samples::default(),
            mem: Samples::default(),
        }
    }
}

/// Used memory after the system settles a moment (KiB): the median of a
/// few reads, as builds elsewhere make it move.
fn used_settled() -> f64 {
    let mut s = Samples::default();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(u) = proc_mem::used_kib() {
            s.0.push(u as f64);
        }
    }
    s.median()
}

/// Starts `n` containers, one after the other: (total, each).
fn start_n(ctx: &Ctx, who: &Who, tag: &str, n: usize) -> Result<(Duration, Samples)> {
    let mut each = Samples::default();
    let t0 = Instant::now();
    for i in 0..n {
        each.push(who.start(&ctx.id(tag, i)).time(&ctx.log)?);
    }
    Ok((t0.elapsed(), each))
}

fn remove_n(ctx: &Ctx, who: &Who, tag: &str, n: usize) -> Result<Duration> {
    let t0 = Instant::now();
    for i in 0..n {
        who.remove(&ctx.id(tag, i)).time(&ctx.log)?;
    }
    Ok(t0.elapsed())
}

/// (RSS, PSS) per process, in KiB, averaged over `pids`.
fn mean_rss_pss(pids: &[i32]) -> Option<(f64, f64)> {
    let v: Vec<(u64, u64)> = pids.iter().filter_map(|p| proc_mem::rss_pss(*p)).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    Some((
        v.iter().map(|x| x.0 as f64).sum::<f64>() / n,
        v.iter().map(|x| x.1 as f64).sum::<f64>() / n,
    ))
}

pub fn run(ctx: &Ctx) -> Result<Section> {
    let n = ctx.scale;
    let mut sec = Section::new(
        "scale",
        format!(
            "3. scale: {n} detached sleep containers per contender, started one by one; {} round(s)",
            ctx.scale_rounds
        ),
    );
    let eng = Engine::new(ctx, "scale")?;
    eng.load_busybox(ctx)?;
    let bundle = ctx.bundle("sleep", &["sleep", "1000000"])?;
    let rts = runtimes::all(ctx, "scale")?;
    let mut who = vec![Who::Engine(&eng)];
    who.extend(rts.iter().map(|rt| Who::Runtime(rt, &bundle)));
    let mut totals: Vec<Totals> = who.iter().map(|_| Totals::new()).collect();
    let mut shim: Option<(f64, f64, usize)> = None;

    for round in 0..ctx.scale_rounds {
        let tag = |k: usize| format!("s{round}c{k}");
        for k in order(who.len(), round) {
            let before = used_settled();
            let (total, each) = start_n(ctx, &who[k], &tag(k), n)?;
            let after = used_settled();
            let running = who[k].running()?;
            if running < n {
                bail!("{}: {running} of {n} containers running", who[k].name());
            }
            totals[k].start.push(total);
            totals[k].each.0.extend(each.0);
            totals[k].mem.0.push((after - before) / n as f64);
            if let Who::Engine(e) = who[k] {
                let pids = e.shim_pids();
                if let Some((rss, pss)) = mean_rss_pss(&pids) {
                    shim = Some((rss, pss, pids.len()));
                }
            }
        }
        for i in 0..ctx.iters {
            for k in order(who.len(), i) {
                totals[k].list.push(who[k].list().time(&ctx.log)?);
            }
        }
        for k in order(who.len(), round) {
            totals[k].remove.push(remove_n(ctx, &who[k], &tag(k), n)?);
        }
    }

    for (k, w) in who.iter().enumerate() {
        let t = &totals[k];
        let secs = Samples(t.start.0.iter().map(|ms| ms / 1000.0).collect());
        sec.row(&format!("start {n}"), w.name(), Unit::Seconds, secs);
    }
    for (k, w) in who.iter().enumerate() {
        sec.row("start, each", w.name(), Unit::Ms, totals[k].each.clone());
    }
    for (k, w) in who.iter().enumerate() {
        let metric = format!("ps/list, {n} running");
        sec.row(&metric, w.name(), Unit::Ms, totals[k].list.clone());
    }
    for (k, w) in who.iter().enumerate() {
        let secs = Samples(totals[k].remove.0.iter().map(|ms| ms / 1000.0).collect());
        sec.row(&format!("kill+delete {n}"), w.name(), Unit::Seconds, secs);
    }
    for (k, w) in who.iter().enumerate() {
        sec.row(
            "memory per container",
            w.name(),
            Unit::KiB,
            totals[k].mem.clone(),
        );
    }
    if let Some((rss, pss, count)) = shim {
        sec.row_extra(
            "shim RSS",
            "berth",
            Unit::KiB,
            Samples(vec![rss]),
            format!("mean of {count} shims"),
        );
        sec.row("shim PSS", "berth", Unit::KiB, Samples(vec![pss]));
    }

    // Podman: N containers, their conmons' RSS/PSS, ps, removal.
    match podman_scale(ctx, n, &mut sec) {
        Ok(()) => {}
        Err(e) => sec.note(format!("podman/conmon left out: {e:#}")),
    }
    if ctx.thousand {
        thousand(ctx, &eng, &mut sec)?;
    }

    sec.note("berth: `berth run -d` (engine: overlay, shim); runtimes: `run -d` of a ready bundle; kill+delete: `rm -f` / `delete --force` per container");
    sec.note("memory per container: the rise of used memory (MemTotal - MemFree - Buffers - Cached - SReclaimable, as `free`) over the N starts / N; noisy while other work runs");
    sec.target_ratio(
        &format!("berth-runtime: {n} running <= 0.5x crun's time"),
        (&format!("start {n}"), "berth-runtime"),
        (&format!("start {n}"), "crun"),
        Cmp::AtMost,
        0.5,
    );
    sec.target_ratio(
        &format!("berth engine: {n} running <= 0.5x crun's time"),
        (&format!("start {n}"), "berth"),
        (&format!("start {n}"), "crun"),
        Cmp::AtMost,
        0.5,
    );
    sec.target_abs(
        &format!("berth ps with {n} running <= 10 ms"),
        (&format!("ps/list, {n} running"), "berth"),
        Cmp::AtMost,
        10.0,
    );
    sec.target_abs(
        &format!("berth-runtime list with {n} running <= 10 ms"),
        (&format!("ps/list, {n} running"), "berth-runtime"),
        Cmp::AtMost,
        10.0,
    );
    sec.target_ratio(
        "shim PSS <= 0.5x conmon's",
        ("shim PSS", "berth"),
        ("shim PSS", "conmon"),
        Cmp::AtMost,
        0.5,
    );
    Ok(sec)
}

fn podman_scale(ctx: &Ctx, n: usize, sec: &mut Section) -> Result<()> {
    let podman = Podman::new(ctx, "scale", None)?;
    podman.load(&ctx.fixtures.join("busybox-oci.tar"))?;
    let root = podman.root().display().to_string();
    let name = |i: usize| ctx.id("pod", i);
    let before = used_settled();
    let t0 = Instant::now();
    for i in 0..n {
        podman
            .cmd()
            .args(["run", "-d", "--name", &name(i), IMAGE, "sleep", "1000000"])
            .time(&ctx.log)?;
    }
    let start = t0.elapsed();
    let after = used_settled();
    let conmons = engine::pids_where(|pid| {
        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e.ends_with("conmon"))
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&root))
    });
    let (rss, pss) = mean_rss_pss(&conmons).context("no conmon process found")?;
    let mut list = Samples::default();
    for _ in 0..ctx.iters.min(20) {
        list.push(podman.cmd().arg("ps").time(&ctx.log)?);
    }
    let t0 = Instant::now();
    for i in 0..n {
        podman
            .cmd()
            .args(["rm", "-f", "-t", "0", &name(i)])
            .time(&ctx.log)?;
    }
    let remove = t0.elapsed();

    sec.row(
        &format!("start {n}"),
        "podman",
        Unit::Seconds,
        Samples(vec![start.as_secs_f64()]),
    );
    sec.row(&format!("ps/list, {n} running"), "podman", Unit::Ms, list);
    sec.row(
        &format!("kill+delete {n}"),
        "podman",
        Unit::Seconds,
        Samples(vec![remove.as_secs_f64()]),
    );
    sec.row(
        "memory per container",
        "podman",
        Unit::KiB,
        Samples(vec![(after - before) / n as f64]),
    );
    sec.row_extra(
        "shim RSS",
        "conmon",
        Unit::KiB,
        Samples(vec![rss]),
        format!("mean of {} conmons", conmons.len()),
    );
    sec.row("shim PSS", "conmon", Unit::KiB, Samples(vec![pss]));
    sec.note("podman: one round (it is slow); conmon measured with the same number of containers as the berth shims");
    Ok(())
}

/// 1000 berth containers on this machine: start, ps, memory, removal.
fn thousand(ctx: &Ctx, eng: &Engine, sec: &mut Section) -> Result<()> {
    const N: usize = 1000;
    let who = Who::Engine(eng);
    let before = used_settled();
    let (total, each) = start_n(ctx, &who, "k", N)?;
    let after = used_settled();
    let running = who.running()?;
    if running < N {
        bail!("berth: {running} of {N} containers running");
    }
    let mut list = Samples::default();
    for _ in 0..ctx.iters.min(50) {
        list.push(who.list().time(&ctx.log)?);
    }
    let shims = eng.shim_pids();
    let shim = mean_rss_pss(&shims);
    let remove = remove_n(ctx, &who, "k", N)?;
    sec.row(
        "1000: start",
        "berth",
        Unit::Seconds,
        Samples(vec![total.as_secs_f64()]),
    );
    sec.row("1000: start, each", "berth", Unit::Ms, each);
    sec.row("1000: ps", "berth", Unit::Ms, list);
    sec.row(
        "1000: memory per container",
        "berth",
        Unit::KiB,
        Samples(vec![(after - before) / N as f64]),
    );
    if let Some((rss, pss)) = shim {
        sec.row_extra(
            "1000: shim RSS/PSS",
            "berth",
            Unit::KiB,
            Samples(vec![rss]),
            format!("PSS {pss:.0} KiB"),
        );
    }
    sec.row(
        "1000: kill+delete",
        "berth",
        Unit::Seconds,
        Samples(vec![remove.as_secs_f64()]),
    );
    Ok(())
}
