//! `berth pause CONTAINER…` and `berth unpause CONTAINER…`.

use anyhow::Result;
use berth::engine::Engine;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args, pause: bool) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    for c in &args.containers {
        let id = engine.containers.resolve(c)?;
        if pause {
            engine.pause(&id)?
        } else {
            engine.unpause(&id)?
        }
        println!("{c}");
    }
    Ok(0)
}
