//! Section 5, pull of the four-layer image from a loopback registry (Debian's
//! `docker-registry`, plain HTTP on 127.0.0.1): `berth pull` (download,
//! verify, unpack in parallel) against `skopeo copy` + `umoci unpack` and
//! `podman pull`. Each run starts from an empty store, emptied off the clock.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Ctx;
use crate::images::{self, TAG};
use crate::measure::{Cmd, Samples, order};
use crate::podman::Podman;
use crate::report::{Section, Unit};

struct Registry {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Registry {
    fn start(ctx: &Ctx) -> Result<Registry> {
        if !crate::which("docker-registry") {
            bail!("docker-registry is not installed (make bench installs it)");
        }
        let dir = ctx.dir("registry")?;
        // A free port: bound and released (the registry binds it next).
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config)?;
        let log = File::create(dir.join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start docker-registry")?;
        let reg = Registry { child, addr, dir };
        let t0 = Instant::now();
        while TcpStream::connect(&reg.addr).is_err() {
            if t0.elapsed() > Duration::from_secs(20) {
                let log = std::fs::read_to_string(reg.dir.join("registry.log")).unwrap_or_default();
                bail!(
                    "docker-registry did not listen on {}: {}",
                    reg.addr,
                    log.trim()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(reg)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

pub fn run(ctx: &Ctx) -> Result<Section> {
    let img = images::build(ctx)?;
    let reg = Registry::start(ctx)?;
    let reference = format!("{}/bench/debian:multi", reg.addr);
    Cmd::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{TAG}", img.layout_multi.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .context("push the image to the loopback registry")?;
    let blob_mb: f64 = img
        .multi
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len() as f64 / 1e6)
        .sum();
    let mut sec = Section::new(
        "pull",
        format!(
            "5. pull from a loopback registry (docker-registry, http://{}): four gzip layers, {blob_mb:.0} MB compressed, {:.0} MB tar; {} runs interleaved",
            reg.addr,
            img.tar_bytes as f64 / 1e6,
            ctx.unpack_runs
        ),
    );
    let podman = match Podman::new(ctx, "pull", Some(&reg.addr)) {
        Ok(p) => Some(p),
        Err(e) => {
            sec.note(format!("podman left out: {e:#}"));
            None
        }
    };

    type Contender<'a> = (&'static str, Box<dyn Fn(&Path) -> Cmd + 'a>);
    let r = reference.clone();
    let mut contenders: Vec<Contender> = vec![
        (
            "berth pull",
            Box::new(move |out: &Path| {
                Cmd::new(&ctx.berth)
                    .arg("--root")
                    .arg(out.join("root"))
                    .args(["pull", "-q", "--insecure", &r])
            }),
        ),
        (
            "skopeo copy + umoci unpack",
            Box::new(|out: &Path| {
                Cmd::shell(&format!(
                    "skopeo copy --quiet --src-tls-verify=false docker://{reference} oci:{}:{TAG} && umoci unpack --image {}:{TAG} {}",
                    q(&out.join("oci")),
                    q(&out.join("oci")),
                    q(&out.join("bundle"))
                ))
            }),
        ),
        (
            "skopeo copy (download only)",
            Box::new(|out: &Path| {
                Cmd::new("skopeo")
                    .args(["copy", "--quiet", "--src-tls-verify=false"])
                    .arg(format!("docker://{reference}"))
                    .arg(format!("oci:{}:{TAG}", out.join("oci").display()))
            }),
        ),
    ];
    if let Some(p) = &podman {
        let policy = p.policy();
        let r = &reference;
        contenders.push((
            "podman pull",
            Box::new(move |_: &Path| {
                p.cmd()
                    .args(["pull", "-q", "--tls-verify=false", "--signature-policy"])
                    .arg(&policy)
                    .arg(r)
            }),
        ));
    }

    let mut samples = vec![Samples::default(); contenders.len()];
    let sync = || Cmd::new("sync").arg("-f").arg(&ctx.work).quiet();
    for round in 0..ctx.unpack_runs {
        for k in order(contenders.len(), round) {
            let out = ctx.dir("pull-out")?;
            sync();
            let d = contenders[k].1(&out).time(&ctx.log);
            let _ = std::fs::remove_dir_all(&out);
            if let Some(p) = &podman {
                p.clear();
            }
            sync();
            samples[k].0.push(d?.as_secs_f64());
        }
    }
    for ((name, _), s) in contenders.iter().zip(samples) {
        let mbps = img.tar_bytes as f64 / 1e6 / s.median();
        sec.row_extra(
            "pull, 4 layers",
            name,
            Unit::Seconds,
            s,
            format!("{mbps:>5.0} MB/s"),
        );
    }
    sec.note("berth: `berth pull --insecure` into an empty store; podman: private storage emptied between runs (runtime runc, unused here)");
    drop(contenders);
    drop(podman);
    drop(reg);
    Ok(sec)
}
