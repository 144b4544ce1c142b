//! `berth stop [-t N] CONTAINER…` and `berth restart [-t N] CONTAINER…`.

use anyhow::Result;
use berth::engine::Engine;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds to wait after the stop signal before SIGKILL
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

fn each(
    cli: &Cli,
    args: &Args,
    f: impl Fn(&Engine, &str) -> berth::engine::Result<()>,
) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let mut failed = false;
    for c in &args.containers {
        match engine
            .containers
            .resolve(c)
            .map_err(berth::engine::Error::from)
            .and_then(|id| f(&engine, &id))
        {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {}", berth::logging::error_chain(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn stop(cli: &Cli, args: &Args) -> Result<i32> {
    each(cli, args, |e, id| e.stop(id, args.time))
}

pub fn restart(cli: &Cli, args: &Args) -> Result<i32> {
    each(cli, args, |e, id| {
        e.stop(id, args.time)?;
        e.start(id, false).map(|_| ())
    })
}
