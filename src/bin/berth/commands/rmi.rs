//! `berth rmi [-f] REF...`.

use anyhow::{Result, anyhow};
use berth::image::store::Removed;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove the name even when a container uses the image (the image
    /// itself stays until the container is gone).
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    let store = super::store(cli)?;
    let mut failed = None;
    for r in &args.images {
        match store.remove(r, args.force) {
            Ok(removed) => {
                for x in removed {
                    match x {
                        Removed::Untagged(n) => println!("Untagged: {n}"),
                        Removed::Deleted(d) => println!("Deleted: {d}"),
                    }
                }
            }
            Err(e) => {
                // Go on with the others, as docker does; report the first.
                eprintln!("berth: {e}");
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(anyhow!("cannot remove some images: {e}")),
        None => Ok(()),
    }
}
