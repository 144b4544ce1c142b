//! `berth volume create|ls|inspect|rm|prune`.

use std::collections::BTreeMap;

use anyhow::Result;
use berth::engine::Engine;
use clap::Subcommand;

use crate::Cli;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a volume (a random name if none is given)
    Create {
        name: Option<String>,
        #[arg(short = 'l', long = "label")]
        label: Vec<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Show volumes as JSON
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one)
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every volume no container uses
    Prune {
        #[arg(short = 'f', long)]
        force: bool,
    },
}

pub fn run(cli: &Cli, cmd: &Command) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let vols = engine.volumes();
    match cmd {
        Command::Create { name, label } => {
            let name = name.clone().unwrap_or_else(berth::engine::names::new_id);
            let labels: BTreeMap<String, String> = label
                .iter()
                .map(|l| {
                    l.split_once('=')
                        .map(|(k, v)| (k.into(), v.into()))
                        .unwrap_or((l.clone(), String::new()))
                })
                .collect();
            let v = vols.create(&name, labels, true)?;
            println!("{}", v.name);
        }
        Command::Ls { quiet } => {
            let list = vols.list()?;
            if *quiet {
                for v in &list {
                    println!("{}", v.name);
                }
            } else {
                let rows: Vec<[String; 2]> = list
                    .iter()
                    .map(|v| [v.driver.clone(), v.name.clone()])
                    .collect();
                super::ps::print_table(&["DRIVER", "VOLUME NAME"], &rows);
            }
        }
        Command::Inspect { names } => {
            let mut out = Vec::new();
            for n in names {
                out.push(vols.inspect(n)?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Rm { names } => {
            for n in names {
                let users = engine.volume_users(n)?;
                vols.remove(n, &users)?;
                println!("{n}");
            }
        }
        Command::Prune { force: _ } => {
            let mut freed = 0;
            for v in vols.list()? {
                if engine.volume_users(&v.name)?.is_empty() {
                    vols.remove(&v.name, &[])?;
                    println!("Deleted Volume: {}", v.name);
                    freed += 1;
                }
            }
            println!("Total reclaimed volumes: {freed}");
        }
    }
    Ok(0)
}
