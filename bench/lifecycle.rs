//! Section 1, the runtime lifecycle of `/bin/true` from the fixture bundle (runc's
//! default spec, terminal off): `run`, and `create` / `start` / `delete`
//! timed separately; berth-runtime against runc and crun.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::Ctx;
use crate::measure::{Samples, order};
use crate::report::{Cmp, Section, Unit};
use crate::runtimes::{self, Runtime};

const WARMUP: usize = 3;

pub fn run(ctx: &Ctx) -> Result<Section> {
    let bundle = ctx.bundle("true", &["/bin/true"])?;
    let rts = runtimes::all(ctx, "life")?;
    let n = rts.len();
    let pid_file = ctx.work.join("life.pid");
    let mut run = vec![Samples::default(); n];
    let mut create = vec![Samples::default(); n];
    let mut start = vec![Samples::default(); n];
    let mut delete = vec![Samples::default(); n];

    for i in 0..WARMUP + ctx.iters {
        let keep = i >= WARMUP;
        for k in order(n, i) {
            let rt = &rts[k];
            let id = ctx.id(&format!("run{k}"), i);
            let d = rt
                .cmd()
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(&id)
                .time(&ctx.log)?;
            if keep {
                run[k].push(d);
            }
        }
        for k in order(n, i) {
            let rt = &rts[k];
            let id = ctx.id(&format!("csd{k}"), i);
            let [c, s, d] = create_start_delete(ctx, rt, &bundle, &pid_file, &id)?;
            if keep {
                create[k].push(c);
                start[k].push(s);
                delete[k].push(d);
            }
        }
    }

    let mut sec = Section::new(
        "lifecycle",
        format!(
            "1. runtime lifecycle of /bin/true (fixture rootfs, runc spec defaults, terminal off), {} iterations interleaved",
            ctx.iters
        ),
    );
    for (metric, samples) in [
        ("run", &run),
        ("create", &create),
        ("start", &start),
        ("delete", &delete),
    ] {
        for (k, rt) in rts.iter().enumerate() {
            sec.row(metric, rt.name, Unit::Ms, samples[k].clone());
        }
    }
    sec.note("wall time of one runtime process, spawned by fork+exec, stdio on /dev/null; create/start/delete: the container's exit is awaited off the clock before delete");
    sec.target_ratio(
        "berth-runtime run <= 0.5x crun run",
        ("run", "berth-runtime"),
        ("run", "crun"),
        Cmp::AtMost,
        0.5,
    );
    Ok(sec)
}

fn create_start_delete(
    ctx: &Ctx,
    rt: &Runtime,
    bundle: &std::path::Path,
    pid_file: &std::path::Path,
    id: &str,
) -> Result<[Duration; 3]> {
    let _ = std::fs::remove_file(pid_file);
    let c = rt
        .cmd()
        .args(["create", "--bundle"])
        .arg(bundle)
        .arg("--pid-file")
        .arg(pid_file)
        .arg(id)
        .time(&ctx.log)?;
    let pid = runtimes::read_pid(pid_file).with_context(|| format!("{}: pid file", rt.name))?;
    let s = rt.cmd().args(["start", id]).time(&ctx.log)?;
    if !runtimes::wait_exited(pid, Duration::from_secs(10)) {
        bail!("{}: /bin/true in {id} did not exit", rt.name);
    }
    let d = rt.cmd().args(["delete", id]).time(&ctx.log)?;
    Ok([c, s, d])
}
