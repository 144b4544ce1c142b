//! `berth run [OPTIONS] IMAGE [COMMAND] [ARG…]`: create, start, and (unless
//! -d) attach until the container exits, returning its exit code.

use anyhow::Result;
use berth::engine::Engine;

use super::create::{CreateFlags, ensure_image};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run in the background and print the container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub flags: CreateFlags,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let req = args.flags.request()?;
    ensure_image(cli, &req.image, args.flags.insecure)?;
    let engine = Engine::new(&cli.root, &cli.state);
    let rec = engine.create(&req)?;
    if args.detach {
        if let Err(e) = engine.start(&rec.id, false) {
            if args.flags.rm {
                let _ = engine.remove(&rec.id, true, true);
            }
            return Err(e.into());
        }
        println!("{}", rec.id);
        return Ok(0);
    }
    let started = engine
        .start(&rec.id, true)
        .and_then(|_| engine.connect(&rec.id));
    let mut conn = match started {
        Ok(c) => c,
        Err(e) => {
            if args.flags.rm {
                let _ = engine.remove(&rec.id, true, true);
            }
            return Err(e.into());
        }
    };
    match super::attach::attach_loop(&mut conn, args.flags.interactive, args.flags.tty) {
        Ok(Some(code)) => Ok(code),
        Ok(None) => Ok(engine.wait(&rec.id).unwrap_or(0)),
        Err(e) => {
            // The program could not start: docker's 126/127 codes, and --rm
            // still removes the container.
            let code = engine.live_state(&rec.id).exit_code;
            if args.flags.rm {
                let _ = engine.remove(&rec.id, true, true);
            }
            eprintln!("berth: {e:#}");
            Ok(if code > 0 { code } else { 125 })
        }
    }
}
