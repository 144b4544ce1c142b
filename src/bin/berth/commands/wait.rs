//! `berth wait CONTAINER…`: blocks until each exits; prints the exit codes.

use anyhow::Result;
use berth::engine::Engine;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    for c in &args.containers {
        let id = engine.containers.resolve(c)?;
        println!("{}", engine.wait(&id)?);
    }
    Ok(0)
}
