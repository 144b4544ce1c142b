use anyhow::Result;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Kill the container first if it is running
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The container id
    pub id: String,
}

pub fn run(g: &Global, a: Args) -> Result<u8> {
    g.runtime()?.delete(&a.id, a.force)?;
    Ok(0)
}
