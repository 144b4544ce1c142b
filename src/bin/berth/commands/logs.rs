//! `berth logs [-f] [--tail N] [-t] [--since WHEN] CONTAINER`.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use berth::engine::logs::{self, Entry};
use berth::engine::record::Status;
use berth::engine::{Engine, units};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Follow new output until the container stops
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Only lines since a time (RFC 3339) or a duration ago (10m)
    #[arg(long)]
    pub since: Option<String>,
    pub container: String,
}

fn since(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let d = units::parse_duration(s)
        .with_context(|| format!("invalid --since {s:?}: use RFC 3339 or a duration like 10m"))?;
    Ok(chrono::Utc::now() - chrono::Duration::from_std(d)?)
}

fn print(e: &Entry, timestamps: bool) {
    let mut line = Vec::new();
    if timestamps {
        line.extend_from_slice(e.time.as_bytes());
        line.push(b' ');
    }
    line.extend_from_slice(e.log.as_bytes());
    if e.stream == "stderr" {
        let _ = std::io::stderr().write_all(&line);
    } else {
        let _ = std::io::stdout().write_all(&line);
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let id = engine.containers.resolve(&args.container)?;
    let path = engine.containers.paths(&id).log();
    let after = args.since.as_deref().map(since).transpose()?;
    let keep = |e: &Entry| match after {
        Some(t) => chrono::DateTime::parse_from_rfc3339(&e.time).is_ok_and(|et| et >= t),
        None => true,
    };
    let mut entries: Vec<Entry> = logs::read_all(&path)?
        .into_iter()
        .filter(|e| keep(e))
        .collect();
    if args.tail != "all" {
        let n: usize = args
            .tail
            .parse()
            .with_context(|| format!("invalid --tail {:?}: a number or all", args.tail))?;
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    for e in &entries {
        print(e, args.timestamps);
    }
    if !args.follow {
        return Ok(0);
    }
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    loop {
        let (new, off) = logs::read_from(&path, offset)?;
        offset = off;
        for e in new.iter().filter(|e| keep(e)) {
            print(e, args.timestamps);
        }
        let _ = std::io::stdout().flush();
        let st = engine.live_state(&id);
        if !matches!(
            st.status,
            Status::Running | Status::Restarting | Status::Paused
        ) {
            // One last read: what was written just before the exit.
            let (new, _) = logs::read_from(&path, offset)?;
            for e in new.iter().filter(|e| keep(e)) {
                print(e, args.timestamps);
            }
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
