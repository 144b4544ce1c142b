//! `events`: runc's JSON event stream (or one stats event with --stats).

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use berth::runtime::events::Event;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Print one stats event and exit
    #[arg(long)]
    pub stats: bool,
    /// Time between stats events (5s, 500ms, 1m)
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub interval: String,
    /// The container id
    pub id: String,
}

pub fn run(g: &Global, a: Args) -> Result<u8> {
    let rt = g.runtime()?;
    let interval = parse_duration(&a.interval)?;
    let mut out = std::io::stdout().lock();
    if a.stats {
        let e = Event {
            kind: "stats",
            id: &a.id,
            data: Some(rt.stats(&a.id)?),
        };
        serde_json::to_writer(&mut out, &e)?;
        writeln!(out)?;
        return Ok(0);
    }
    rt.events(&a.id, interval, |e| {
        serde_json::to_writer(&mut out, e)?;
        writeln!(out)?;
        out.flush()
    })?;
    Ok(0)
}

/// A Go-style duration as runc's --interval takes: "5s", "500ms", "1m30s".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        bail!("--interval is empty");
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(n_end);
        let u_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(u_end);
        let n: f64 = match num.parse() {
            Ok(n) => n,
            Err(_) => bail!("--interval {s:?} is not a duration such as 5s or 500ms"),
        };
        let secs = match unit {
            "ns" => n / 1e9,
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => bail!("--interval {s:?} is not a duration such as 5s or 500ms"),
        };
        total += Duration::from_secs_f64(secs);
        rest = next;
    }
    if total.is_zero() {
        bail!("--interval must be more than zero");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        for bad in ["", "5", "x", "0s", "5 parsecs"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
