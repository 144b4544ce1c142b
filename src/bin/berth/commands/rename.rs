//! `berth rename CONTAINER NEW_NAME`.

use anyhow::Result;
use berth::engine::Engine;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub container: String,
    pub new_name: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let id = engine.containers.resolve(&args.container)?;
    let _lock = engine.containers.lock(&id)?;
    let mut rec = engine.containers.read(&id)?;
    engine.containers.reserve_name(&args.new_name, &id)?;
    let old = std::mem::replace(&mut rec.name, args.new_name.clone());
    if let Err(e) = engine.containers.write(&rec) {
        engine.containers.release_name(&args.new_name, &id);
        return Err(e.into());
    }
    engine.containers.release_name(&old, &id);
    Ok(0)
}
