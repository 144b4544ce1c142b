//! `berth tag SRC DST`.

use anyhow::Result;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    source: String,
    target: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    super::store(cli)?.tag(&args.source, &args.target)?;
    Ok(())
}
