//! `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: the published ports.

use anyhow::{Result, bail};
use berth::engine::Engine;
use berth::network::ports;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub container: String,
    /// Only this port (80 or 80/udp)
    pub port: Option<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let id = engine.containers.resolve(&args.container)?;
    let want = args
        .port
        .as_deref()
        .map(|p| ports::parse_port_proto(p, p))
        .transpose()?;
    let maps = engine
        .networks()
        .attachment(&id)
        .map(|a| a.ports)
        .unwrap_or_default();
    let mut shown = 0;
    for m in &maps {
        match want {
            Some((port, proto)) if (port, proto) != (m.container_port, m.proto) => continue,
            Some(_) => println!("{}:{}", m.host_ip, m.host_port),
            None => println!(
                "{}/{} -> {}:{}",
                m.container_port, m.proto, m.host_ip, m.host_port
            ),
        }
        shown += 1;
    }
    if let (Some(p), 0) = (&args.port, shown) {
        bail!("no public port {p:?} published for {}", args.container);
    }
    Ok(0)
}
