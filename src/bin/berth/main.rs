//! `berth`: the engine a person types. Each command lives in
//! `commands/NAME.rs` and turns its flags into calls on the `berth` library.

mod commands;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A container engine built from Linux primitives"
)]
pub struct Cli {
    /// Engine root: images, layers, containers.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    pub root: PathBuf,
    /// Runtime state directory.
    #[arg(long, global = true, env = "BERTH_STATE", default_value = "/run/berth")]
    pub state: PathBuf,
    /// Log debug detail to stderr.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Largest uncompressed layer accepted (e.g. 512M, 64G): stops
    /// decompression bombs.
    #[arg(long, global = true, env = "BERTH_MAX_LAYER_SIZE", value_parser = commands::parse_size)]
    pub max_layer_size: Option<u64>,
    #[command(subcommand)]
    pub command: commands::Command,
}

fn main() -> ExitCode {
    // A closed stdout ends the command quietly, as with other Unix tools,
    // instead of a panic in println! (`berth ps | head`). The shim, a fork
    // of this process, ignores SIGPIPE again.
    // SAFETY: setting a disposition, no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                // --help, --version.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            eprintln!("berth: {}", berth::logging::usage_line(&e.to_string()));
            // Like docker: 125 when berth itself was misused.
            return ExitCode::from(125);
        }
    };
    let debug = cli.debug || std::env::var("BERTH_LOG").is_ok_and(|v| v == "debug");
    if let Err(e) = berth::logging::init(None, berth::logging::Format::Text, debug) {
        eprintln!("berth: cannot start logging: {e}");
    }
    match commands::run(&cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
        Err(e) => {
            // Library errors already name their causes; add only what a
            // context line does not repeat.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            eprintln!("berth: {}", msg.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}
