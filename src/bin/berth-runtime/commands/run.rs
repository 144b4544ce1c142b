use anyhow::Result;

use super::{CreateFlags, Global};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Return once the container has started
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
}

pub fn run(g: &Global, a: Args) -> Result<u8> {
    let code = g.runtime()?.run(a.flags.opts()?, a.detach, a.keep)?;
    // The exit status of the container's program, as a shell reports it.
    Ok(u8::try_from(code).unwrap_or(255))
}
