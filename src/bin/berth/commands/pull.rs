//! `berth pull [--platform P] [--creds U:P] [--insecure] [-q] REF`.

use anyhow::Result;
use berth::image::auth::Credentials;
use berth::image::manifest::Platform;
use berth::image::reference::Reference;
use berth::image::registry::{self, Options};

use crate::Cli;
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// busybox, library/busybox:1.36, registry:5000/team/app@sha256:…
    reference: String,
    /// Platform to pick from a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    platform: Option<Platform>,
    /// Credentials for this pull only (user:password).
    #[arg(long)]
    creds: Option<String>,
    /// Talk plain HTTP to the registry.
    #[arg(long)]
    insecure: bool,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    let reference: Reference = args.reference.parse()?;
    let store = super::store(cli)?;
    let credentials = args.creds.as_deref().map(Credentials::parse).transpose()?;
    let options = Options {
        plain_http: args.insecure,
        credentials,
    }
    .with_root_settings(&cli.root, &reference.registry)?;
    let platform = args.platform.clone().unwrap_or_else(Platform::host);
    let display = progress::for_terminal(args.quiet);
    let image = registry::pull(&store, &reference, &options, &platform, display.as_ref())?;
    drop(display);
    if args.quiet {
        println!("{}", image.id);
    } else {
        if let Some(rd) = image
            .record
            .repo_digests
            .iter()
            .find(|d| d.starts_with(&format!("{}@", reference.name())))
        {
            println!(
                "Digest: {}",
                rd.rsplit_once('@').map_or(rd.as_str(), |(_, d)| d)
            );
        }
        println!("Pulled: {reference}");
        println!("Image ID: {}", image.id);
    }
    Ok(())
}
