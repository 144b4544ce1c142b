//! `berth ps [-a] [-q] [--format json] [--filter KEY=VALUE]`.

use anyhow::{Result, bail};
use berth::engine::record::{Record, State, Status};
use berth::engine::{Engine, status_line};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show all containers (default: running ones)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// table or json (one object per line, as docker)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// name=, id=, status=, label=, ancestor=
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Do not truncate
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

fn matches(rec: &Record, st: &State, filter: &str) -> Result<bool> {
    let Some((k, v)) = filter.split_once('=') else {
        bail!("invalid filter {filter:?}: use key=value")
    };
    Ok(match k {
        "name" => rec.name.contains(v),
        "id" => rec.id.starts_with(v),
        "status" => st.status.to_string() == v,
        "ancestor" => rec.image == v || rec.image_id.contains(v),
        "label" => match v.split_once('=') {
            Some((lk, lv)) => rec.config.labels.get(lk).is_some_and(|x| x == lv),
            None => rec.config.labels.contains_key(v),
        },
        other => bail!("invalid filter {other:?}: use name, id, status, label or ancestor"),
    })
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let mut rows: Vec<(Record, State)> = Vec::new();
    for id in engine.containers.ids()? {
        // The state first: the record, the bigger read, only for the rows
        // shown.
        let st = engine.live_state(&id);
        let running = matches!(
            st.status,
            Status::Running | Status::Paused | Status::Restarting
        );
        if !args.all && !running && args.filter.is_empty() {
            continue;
        }
        let Ok(rec) = engine.containers.read(&id) else {
            continue;
        };
        let mut keep = true;
        for f in &args.filter {
            keep &= matches(&rec, &st, f)?;
        }
        if keep {
            rows.push((rec, st));
        }
    }
    rows.sort_by(|a, b| b.0.created.cmp(&a.0.created));
    let net_state = engine.networks().state().unwrap_or_default();
    let ports = |r: &Record| {
        net_state
            .attachments
            .get(&r.id)
            .map(|a| {
                a.ports
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    // One write for the whole output, not one per line.
    let mut out = String::new();
    if args.quiet {
        for (r, _) in &rows {
            out.push_str(if args.no_trunc { &r.id } else { &r.id[..12] });
            out.push('\n');
        }
        print!("{out}");
        return Ok(0);
    }
    let command = |r: &Record| {
        let c = r
            .config
            .entrypoint
            .iter()
            .chain(r.config.cmd.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        if args.no_trunc || c.chars().count() <= 20 {
            format!("\"{c}\"")
        } else {
            format!("\"{}…\"", c.chars().take(19).collect::<String>())
        }
    };
    match args.format.as_str() {
        "json" => {
            for (r, st) in &rows {
                let v = serde_json::json!({
                    "ID": &r.id[..12], "Image": r.image, "Command": command(r), "CreatedAt": r.created,
                    "Status": status_line(st), "State": st.status.to_string(), "Names": r.name,
                    "Labels": r.config.labels, "Ports": ports(r),
                });
                out.push_str(&format!("{v}\n"));
            }
            print!("{out}");
        }
        "table" => {
            let table: Vec<[String; 7]> = rows
                .iter()
                .map(|(r, st)| {
                    [
                        if args.no_trunc {
                            r.id.clone()
                        } else {
                            r.id[..12].to_string()
                        },
                        r.image.clone(),
                        command(r),
                        super::human_age(Some(&r.created)),
                        status_line(st),
                        ports(r),
                        r.name.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "PORTS",
                    "NAMES",
                ],
                &table,
            );
        }
        other => bail!("unknown format {other:?}: use table or json"),
    }
    Ok(0)
}

/// Columns padded to their widest cell, three spaces apart, as docker.
pub fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    // Built whole and written once: a line-buffered stdout would make a
    // write per row.
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w[i] - c.chars().count() + 3));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    print!("{out}");
}
