use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use berth::runtime::default_spec;

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write config.json in
    #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// A config for a rootless container (user namespace mapping the caller)
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(a: Args) -> Result<u8> {
    let path = a.bundle.join("config.json");
    let spec = if a.rootless {
        default_spec::rootless_spec(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        default_spec::default_spec()
    };
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists; remove it first", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
    };
    let mut text = serde_json::to_string_pretty(&spec)?;
    text.push('\n');
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
