//! `berth start [-a] [-i] CONTAINER…`.

use anyhow::{Result, bail};
use berth::engine::Engine;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Attach to the container's output and wait for it to exit
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Send our stdin to the container
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    if args.attach {
        if args.containers.len() != 1 {
            bail!("you cannot start and attach to several containers at once");
        }
        let id = engine.containers.resolve(&args.containers[0])?;
        let rec = engine.containers.read(&id)?;
        engine.start(&id, true)?;
        let mut conn = engine.connect(&id)?;
        let code = super::attach::attach_loop(
            &mut conn,
            args.interactive && rec.config.open_stdin,
            rec.config.tty,
        )?;
        return Ok(code.unwrap_or(0));
    }
    let mut failed = false;
    for c in &args.containers {
        match engine
            .containers
            .resolve(c)
            .map_err(berth::engine::Error::from)
            .and_then(|id| engine.start(&id, false))
        {
            Ok(_) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {}", berth::logging::error_chain(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
