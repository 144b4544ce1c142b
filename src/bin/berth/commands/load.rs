//! `berth load -i FILE` / `berth load --layout DIR`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use berth::image::archive;
use berth::image::manifest::Platform;

use crate::Cli;
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A docker-archive or oci-archive tarball.
    #[arg(short, long, conflicts_with = "layout")]
    input: Option<PathBuf>,
    /// An OCI image layout directory.
    #[arg(long)]
    layout: Option<PathBuf>,
    /// Platform to pick from multi-platform images (os/arch[/variant]).
    #[arg(long)]
    platform: Option<Platform>,
    /// Print only the loaded image IDs.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    let store = super::store(cli)?;
    let platform = args.platform.clone().unwrap_or_else(Platform::host);
    let display = progress::for_terminal(args.quiet);
    let images = match (&args.input, &args.layout) {
        (Some(file), None) => archive::load_archive(&store, file, &platform, display.as_ref())?,
        (None, Some(dir)) => archive::load_layout_dir(&store, dir, &platform, display.as_ref())?,
        _ => bail!("load needs -i FILE or --layout DIR"),
    };
    drop(display);
    for loaded in images {
        if args.quiet {
            println!("{}", loaded.image.id);
        } else if loaded.names.is_empty() {
            println!("Loaded image ID: {}", loaded.image.id);
        } else {
            for name in &loaded.names {
                println!("Loaded image: {name}");
            }
        }
    }
    Ok(())
}
