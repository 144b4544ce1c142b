//! `berth image inspect REF...` (and `ls`/`rm` as aliases).

use anyhow::Result;

use crate::Cli;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print image details as JSON: the config plus ID, names, digests, layers.
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// List images.
    #[command(alias = "list")]
    Ls(super::images::Args),
    /// Remove images.
    Rm(super::rmi::Args),
}

pub fn run(cli: &Cli, command: &Command) -> Result<()> {
    match command {
        Command::Inspect { images } => inspect(cli, images),
        Command::Ls(args) => super::images::run(cli, args),
        Command::Rm(args) => super::rmi::run(cli, args),
    }
}

fn inspect(cli: &Cli, refs: &[String]) -> Result<()> {
    let store = super::store(cli)?;
    let mut out = Vec::new();
    for r in refs {
        let image = store.resolve(r)?;
        let config = serde_json::to_value(&image.config)?;
        let rec = &image.record;
        out.push(serde_json::json!({
            "Id": image.id.to_string(),
            "RepoTags": image.names,
            "RepoDigests": rec.repo_digests,
            "Created": rec.created,
            "Architecture": rec.architecture,
            "Os": rec.os,
            "Size": rec.size,
            "Manifest": rec.manifest,
            "RootFS": {"Type": "layers", "Layers": rec.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
            "LayerDirs": image.layer_dirs,
            "Config": config,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
