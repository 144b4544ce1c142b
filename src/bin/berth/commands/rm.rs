//! `berth rm [-f] [-v] CONTAINER…`.

use anyhow::Result;
use berth::engine::Engine;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill and remove a running container
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove its anonymous volumes too
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let mut failed = false;
    for c in &args.containers {
        let r = engine
            .containers
            .resolve(c)
            .map_err(berth::engine::Error::from)
            .and_then(|id| engine.remove(&id, args.force, args.volumes));
        match r {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {}", berth::logging::error_chain(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
