//! `berth top CONTAINER`: the container's processes, as ps -ef shows them.

use anyhow::{Result, bail};
use berth::engine::Engine;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub container: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let id = engine.containers.resolve(&args.container)?;
    let rec = engine.containers.read(&id)?;
    let pids = engine
        .runtime()
        .pids(&id)
        .map_err(|_| anyhow::anyhow!("container {} is not running", rec.name))?;
    let out = std::process::Command::new("ps")
        .args(["-o", "user,pid,ppid,stime,time,args", "-p"])
        .arg(
            pids.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .output()?;
    if pids.is_empty() {
        bail!("container {} is not running", rec.name);
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(0)
}
