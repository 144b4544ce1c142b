//! One module per command; `run` dispatches.

mod attach;
mod create;
mod exec;
mod image;
mod images;
mod inspect;
mod kill;
mod load;
mod login;
mod logs;
mod network;
mod pause;
mod port;
mod ps;
mod pull;
mod rename;
mod rm;
mod rmi;
mod run;
mod save;
mod start;
mod stats;
mod stop;
mod system;
mod tag;
mod top;
mod volume;
mod wait;

use anyhow::{Context, Result};
use berth::image::Store;
use clap::Subcommand;

use crate::Cli;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and start a container (and wait for it unless -d)
    Run(run::Args),
    /// Create a container without starting it
    Create(create::Args),
    /// Start containers
    Start(start::Args),
    /// Stop containers: stop signal, then SIGKILL after the timeout
    Stop(stop::Args),
    /// Stop and start containers
    Restart(stop::Args),
    /// Send a signal to containers
    Kill(kill::Args),
    /// Remove containers
    Rm(rm::Args),
    /// List containers
    Ps(ps::Args),
    /// Show a container's output
    Logs(logs::Args),
    /// Run a command in a running container
    Exec(exec::Args),
    /// Show containers as JSON (docker's shape)
    Inspect(inspect::Args),
    /// Wait for containers to exit and print their exit codes
    Wait(wait::Args),
    /// Attach to a running container's stdio
    Attach(attach::Args),
    /// Show a container's processes
    Top(top::Args),
    /// Show containers' CPU, memory and pids
    Stats(stats::Args),
    /// Rename a container
    Rename(rename::Args),
    /// Freeze a container's processes
    Pause(pause::Args),
    /// Thaw a container's processes
    Unpause(pause::Args),
    /// Show a container's published ports
    Port(port::Args),
    /// Manage networks
    Network {
        #[command(subcommand)]
        command: network::Command,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: volume::Command,
    },
    /// System-wide commands
    System {
        #[command(subcommand)]
        command: system::Command,
    },
    /// What this host supports (same as system info)
    Info,
    /// Pull an image from a registry.
    Pull(pull::Args),
    /// Store credentials for a registry.
    Login(login::Args),
    /// Forget the credentials for a registry.
    Logout(login::LogoutArgs),
    /// Load images from a docker-archive, an oci-archive or an OCI layout.
    Load(load::Args),
    /// Save images to an oci-archive.
    Save(save::Args),
    /// List images.
    Images(images::Args),
    /// Remove images.
    Rmi(rmi::Args),
    /// Name an image.
    Tag(tag::Args),
    /// Manage images.
    Image {
        #[command(subcommand)]
        command: image::Command,
    },
}

/// Runs the command; the exit code (container commands pass the
/// container's own through).
pub fn run(cli: &Cli) -> Result<i32> {
    let done = |r: Result<()>| r.map(|()| 0);
    match &cli.command {
        Command::Run(args) => run::run(cli, args),
        Command::Create(args) => create::run(cli, args),
        Command::Start(args) => start::run(cli, args),
        Command::Stop(args) => stop::stop(cli, args),
        Command::Restart(args) => stop::restart(cli, args),
        Command::Kill(args) => kill::run(cli, args),
        Command::Rm(args) => rm::run(cli, args),
        Command::Ps(args) => ps::run(cli, args),
        Command::Logs(args) => logs::run(cli, args),
        Command::Exec(args) => exec::run(cli, args),
        Command::Inspect(args) => inspect::run(cli, args),
        Command::Wait(args) => wait::run(cli, args),
        Command::Attach(args) => attach::run(cli, args),
        Command::Top(args) => top::run(cli, args),
        Command::Stats(args) => stats::run(cli, args),
        Command::Rename(args) => rename::run(cli, args),
        Command::Pause(args) => pause::run(cli, args, true),
        Command::Unpause(args) => pause::run(cli, args, false),
        Command::Port(args) => port::run(cli, args),
        Command::Network { command } => network::run(cli, command),
        Command::Volume { command } => volume::run(cli, command),
        Command::System { command } => system::run(cli, command),
        Command::Info => system::info(cli),
        Command::Pull(args) => done(pull::run(cli, args)),
        Command::Login(args) => done(login::run(cli, args)),
        Command::Logout(args) => done(login::logout(cli, args)),
        Command::Load(args) => done(load::run(cli, args)),
        Command::Save(args) => done(save::run(cli, args)),
        Command::Images(args) => done(images::run(cli, args)),
        Command::Rmi(args) => done(rmi::run(cli, args)),
        Command::Tag(args) => done(tag::run(cli, args)),
        Command::Image { command } => done(image::run(cli, command)),
    }
}

/// Opens the image store under `--root`.
pub fn store(cli: &Cli) -> Result<Store> {
    let store = Store::open(&cli.root)
        .with_context(|| format!("cannot open the image store in {}", cli.root.display()))?;
    Ok(match cli.max_layer_size {
        Some(limit) => store.with_max_layer_size(limit),
        None => store,
    })
}

/// Parses `512`, `100K`, `16M`, `2G`, `1T` (powers of 1024).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'B' => 1,
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("invalid size {s:?}: unknown unit {c:?}")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

/// "3 hours ago", as docker prints ages.
pub fn human_age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()) else {
        return "N/A".to_string();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    let (n, unit) = match secs {
        s if s < 1 => return "Less than a second ago".to_string(),
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86400 => (s / 3600, "hour"),
        s if s < 86400 * 14 => (s / 86400, "day"),
        s if s < 86400 * 60 => (s / (86400 * 7), "week"),
        s if s < 86400 * 365 * 2 => (s / (86400 * 30), "month"),
        s => (s / (86400 * 365), "year"),
    };
    if n == 1 {
        let article = if unit == "hour" { "An" } else { "A" };
        format!("{article} {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// "4.2MB", as docker prints sizes (powers of 1000).
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("").is_err());
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_200_000), "4.2MB");
    }
}
