//! `berth kill [-s SIGNAL] CONTAINER…`.

use anyhow::{Result, anyhow};
use berth::engine::Engine;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Signal to send (name or number)
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let sig = berth::engine::shim::parse_signal(&args.signal)
        .ok_or_else(|| anyhow!("invalid signal {:?}", args.signal))?;
    let engine = Engine::new(&cli.root, &cli.state);
    let mut failed = false;
    for c in &args.containers {
        match engine
            .containers
            .resolve(c)
            .map_err(berth::engine::Error::from)
            .and_then(|id| engine.kill(&id, sig))
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
