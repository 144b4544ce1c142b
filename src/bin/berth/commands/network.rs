//! `berth network create|ls|inspect|rm`.

use anyhow::{Result, bail};
use berth::engine::Engine;
use berth::network::ipam::Ipv4Net;
use berth::network::state::Network;
use clap::Subcommand;
use serde_json::json;

use crate::Cli;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a bridge network whose containers resolve each other by name
    Create {
        name: String,
        /// IPv4 subnet in CIDR form (default: a free 10.x.0.0/16)
        #[arg(long)]
        subnet: Option<String>,
        /// Only "bridge" is supported
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Show networks as JSON
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while a container is attached)
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

pub fn run(cli: &Cli, cmd: &Command) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let nets = engine.networks();
    match cmd {
        Command::Create {
            name,
            subnet,
            driver,
        } => {
            if driver != "bridge" {
                bail!("invalid driver {driver:?}: only bridge is supported");
            }
            let subnet = subnet
                .as_deref()
                .map(|s| s.parse::<Ipv4Net>())
                .transpose()?;
            let n = nets.create(name, subnet)?;
            println!("{}", n.id);
        }
        Command::Ls { quiet } => {
            let list = nets.list()?;
            let mut rows: Vec<[String; 4]> = list
                .iter()
                .map(|n| {
                    [
                        n.id[..12].to_string(),
                        n.name.clone(),
                        "bridge".into(),
                        "local".into(),
                    ]
                })
                .collect();
            for special in ["host", "none"] {
                rows.push([
                    String::new(),
                    special.into(),
                    special.into(),
                    "local".into(),
                ]);
            }
            if *quiet {
                for n in &list {
                    println!("{}", &n.id[..12]);
                }
            } else {
                super::ps::print_table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
            }
        }
        Command::Inspect { names } => {
            let mut out = Vec::new();
            for n in names {
                out.push(inspect_json(&engine, &nets.get(n)?)?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Rm { names } => {
            let mut failed = false;
            for n in names {
                match nets.remove(n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("berth: {}", berth::logging::error_chain(&e));
                        failed = true;
                    }
                }
            }
            return Ok(i32::from(failed));
        }
    }
    Ok(0)
}

/// docker's shape of `network inspect`.
fn inspect_json(engine: &Engine, n: &Network) -> Result<serde_json::Value> {
    let st = engine.networks().state()?;
    let subnet = n.subnet.or(st.bridges.get(&n.name).map(|b| b.subnet));
    let ipam = match subnet {
        Some(s) => json!([{"Subnet": s.to_string(), "Gateway": s.gateway().to_string()}]),
        None => json!([]),
    };
    let mut containers = serde_json::Map::new();
    for a in st.members(&n.name) {
        containers.insert(
            a.container_id.clone(),
            json!({
                "Name": a.container_name,
                "IPv4Address": match (a.ip, a.subnet) {
                    (Some(ip), Some(s)) => format!("{ip}/{}", s.prefix()),
                    _ => String::new(),
                },
            }),
        );
    }
    Ok(json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Config": ipam},
        "Internal": false,
        "Containers": containers,
        "Options": {
            "com.docker.network.bridge.name": n.bridge,
            "berth.dns": n.dns.to_string(),
        },
    }))
}
