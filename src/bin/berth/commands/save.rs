//! `berth save -o FILE REF...`: an oci-archive.

use std::path::PathBuf;

use anyhow::Result;
use berth::image::archive;
use berth::image::reference::Reference;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write the oci-archive.
    #[arg(short, long)]
    output: PathBuf,
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    let store = super::store(cli)?;
    let mut images = Vec::new();
    for r in &args.images {
        let (id, name) = store.lookup(r)?;
        let name: Option<Reference> = name.filter(|n| n.digest.is_none());
        images.push((store.image(&id)?, name));
    }
    archive::save(&store, &images, &args.output)?;
    Ok(())
}
