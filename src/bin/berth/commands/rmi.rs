//! `berth rmi [-f] REF...`.

use anyhow::Result;
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
    let mut failed: Option<anyhow::Error> = None;
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
                // Go on with the others, as docker does: each failure gets
                // its line, the last one through main.
                if let Some(previous) = failed.replace(e.into()) {
                    eprintln!("berth: {previous}");
                }
            }
        }
    }
    failed.map_or(Ok(()), Err)
}
