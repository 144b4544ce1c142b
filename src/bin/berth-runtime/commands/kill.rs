use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Signal every process of the container, not only its init
    #[arg(short = 'a', long)]
    pub all: bool,
    /// The container id
    pub id: String,
    /// Signal name (TERM, SIGTERM) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Parses a signal as runc does: a number, or a name with or without SIG.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return match Signal::try_from(n) {
            Ok(sig) => Ok(sig),
            Err(_) => bail!("unknown signal {s:?}"),
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    match name.parse::<Signal>() {
        Ok(sig) => Ok(sig),
        Err(_) => bail!("unknown signal {s:?}"),
    }
}

pub fn run(g: &Global, a: Args) -> Result<u8> {
    let sig = parse_signal(&a.signal)?;
    g.runtime()?.kill(&a.id, sig, a.all)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
