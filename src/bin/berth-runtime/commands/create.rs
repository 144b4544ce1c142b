use anyhow::Result;

use super::{CreateFlags, Global};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
}

pub fn run(g: &Global, a: Args) -> Result<u8> {
    g.runtime()?.create(a.flags.opts()?)?;
    Ok(0)
}
