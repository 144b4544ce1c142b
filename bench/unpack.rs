//! Section 4, image unpack: one big gzip layer (a debootstrap minbase tree), the
//! same as zstd, and as four layers. berth (`load --layout`, which checks
//! every digest and diffID and ends with syncfs) against GNU tar, pigz,
//! umoci and the decompression floor. Each run writes into a new directory;
//! the previous output is deleted (and synced) off the clock.

use std::path::Path;

use anyhow::Result;

use crate::Ctx;
use crate::images::{self, Images, TAG};
use crate::measure::{Cmd, Samples, order};
use crate::report::{Cmp, Section, Unit};

/// A contender: a name and the command writing into a given output dir.
type Contender<'a> = (&'static str, Box<dyn Fn(&Path) -> Cmd + 'a>);

fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

fn berth_load<'a>(ctx: &'a Ctx, layout: &'a Path) -> Box<dyn Fn(&Path) -> Cmd + 'a> {
    Box::new(move |out| {
        Cmd::new(&ctx.berth)
            .arg("--root")
            .arg(out.join("root"))
            .args(["load", "-q", "--layout"])
            .arg(layout)
    })
}

fn umoci<'a>(layout: &'a Path) -> Box<dyn Fn(&Path) -> Cmd + 'a> {
    Box::new(move |out| {
        Cmd::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{TAG}", layout.display()))
            .arg(out.join("bundle"))
    })
}

fn shell<'a>(f: impl Fn(&Path) -> String + 'a) -> Box<dyn Fn(&Path) -> Cmd + 'a> {
    Box::new(move |out| Cmd::shell(&f(out)))
}

/// Times each contender `runs` times, interleaved; returns seconds.
fn measure(ctx: &Ctx, tag: &str, contenders: &[Contender]) -> Result<Vec<Samples>> {
    let mut samples = vec![Samples::default(); contenders.len()];
    let sync = || Cmd::new("sync").arg("-f").arg(&ctx.work).quiet();
    for round in 0..ctx.unpack_runs {
        for k in order(contenders.len(), round) {
            let out = ctx.dir(&format!("{tag}-out"))?;
            sync();
            let d = contenders[k].1(&out).time(&ctx.log);
            let _ = std::fs::remove_dir_all(&out);
            sync();
            samples[k].0.push(d?.as_secs_f64());
        }
    }
    Ok(samples)
}

fn add_rows(
    sec: &mut Section,
    metric: &str,
    contenders: &[Contender],
    samples: Vec<Samples>,
    bytes: u64,
) {
    for ((name, _), s) in contenders.iter().zip(samples) {
        let mbps = bytes as f64 / 1e6 / s.median();
        sec.row_extra(metric, name, Unit::Seconds, s, format!("{mbps:>5.0} MB/s"));
    }
}

pub fn run(ctx: &Ctx) -> Result<Section> {
    let img: Images = images::build(ctx)?;
    let mb = img.tar_bytes as f64 / 1e6;
    let gz_mb = std::fs::metadata(&img.gz)?.len() as f64 / 1e6;
    let zst_mb = std::fs::metadata(&img.zst)?.len() as f64 / 1e6;
    let mut sec = Section::new(
        "unpack",
        format!(
            "4. image unpack: {mb:.0} MB tar ({gz_mb:.0} MB gzip, {zst_mb:.0} MB zstd), {} runs interleaved, {} cores",
            ctx.unpack_runs,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0)
        ),
    );
    sec.note(format!("layer: {}", img.source));
    sec.note("berth: `berth load --layout` into an empty store (digest + diffID checks, syncfs at the end); MB/s of uncompressed tar");

    let gz = &img.gz;
    let single: Vec<Contender> = vec![
        ("berth load", berth_load(ctx, &img.layout_gz)),
        (
            "tar -xzf",
            shell(move |o| format!("tar -xzf {} -C {}", q(gz), q(o))),
        ),
        (
            "tar -xzf + sync -f",
            shell(move |o| format!("tar -xzf {} -C {} && sync -f {}", q(gz), q(o), q(o))),
        ),
        (
            "pigz -dc | tar -x",
            shell(move |o| format!("pigz -dc {} | tar -x -C {}", q(gz), q(o))),
        ),
        ("umoci unpack", umoci(&img.layout_gz)),
        (
            "gzip -dc >/dev/null (floor)",
            shell(move |_| format!("gzip -dc {} >/dev/null", q(gz))),
        ),
    ];
    let s = measure(ctx, "gz", &single)?;
    add_rows(&mut sec, "one gzip layer", &single, s, img.tar_bytes);

    let zst = &img.zst;
    let mut zstd: Vec<Contender> = vec![
        ("berth load", berth_load(ctx, &img.layout_zst)),
        (
            "tar --zstd -xf",
            shell(move |o| format!("tar --zstd -xf {} -C {}", q(zst), q(o))),
        ),
        (
            "zstd -dc >/dev/null (floor)",
            shell(move |_| format!("zstd -q -dc {} >/dev/null", q(zst))),
        ),
    ];
    // umoci learned zstd late: include it only if it can.
    let probe = ctx.dir("umoci-zstd-probe")?;
    if umoci(&img.layout_zst)(&probe).time(&ctx.log).is_ok() {
        zstd.push(("umoci unpack", umoci(&img.layout_zst)));
    } else {
        sec.note("umoci cannot unpack zstd layers here: left out of the zstd rows");
    }
    let _ = std::fs::remove_dir_all(&probe);
    let s = measure(ctx, "zst", &zstd)?;
    add_rows(&mut sec, "one zstd layer", &zstd, s, img.tar_bytes);

    let layers: Vec<String> = img.multi.iter().map(|p| q(p)).collect();
    let (l1, l2) = (layers.clone(), layers.clone());
    let multi: Vec<Contender> = vec![
        ("berth load", berth_load(ctx, &img.layout_multi)),
        (
            "tar -xzf, one after another",
            shell(move |o| {
                l1.iter()
                    .map(|l| format!("tar -xzf {l} -C {}", q(o)))
                    .collect::<Vec<_>>()
                    .join(" && ")
            }),
        ),
        (
            "tar -xzf, all at once (own dirs)",
            shell(move |o| {
                let mut s = String::new();
                for (i, l) in l2.iter().enumerate() {
                    s.push_str(&format!(
                        "mkdir {d} && tar -xzf {l} -C {d} & ",
                        d = q(&o.join(i.to_string()))
                    ));
                }
                s.push_str("wait");
                s
            }),
        ),
        ("umoci unpack", umoci(&img.layout_multi)),
    ];
    let s = measure(ctx, "multi", &multi)?;
    add_rows(&mut sec, "four gzip layers", &multi, s, img.tar_bytes);
    sec.note("four layers: usr/share, usr/lib, usr/bin+sbin, the rest; `all at once` cannot report a failure of one tar (a floor for parallel unpack, not a tool)");

    sec.target_ratio(
        "berth unpack >= 1.5x tar -xzf's speed (time ratio <= 0.67x)",
        ("one gzip layer", "berth load"),
        ("one gzip layer", "tar -xzf"),
        Cmp::AtMost,
        1.0 / 1.5,
    );
    sec.target_ratio(
        "berth unpack >= 3x umoci's speed (time ratio <= 0.33x)",
        ("one gzip layer", "berth load"),
        ("one gzip layer", "umoci unpack"),
        Cmp::AtMost,
        1.0 / 3.0,
    );
    Ok(sec)
}
