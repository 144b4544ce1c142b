//! `berth-runtime`: a drop-in for runc. The command line, flags, JSON and
//! exit codes are runc's, so containerd, podman and anything built on
//! go-runc can use it unchanged. Each command is a thin file under
//! `commands/` over [`berth::runtime`].

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use berth::logging::{self, Format};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth-runtime",
    about = "An OCI runtime (runc-compatible)",
    disable_version_flag = true
)]
struct Cli {
    /// Directory for the containers' state [default: /run/berth-runtime, or
    /// $XDG_RUNTIME_DIR/berth-runtime when not run as root]
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Tolerate cgroup permission errors: true, false or auto (auto: when
    /// not run as root). Given before the command, as runc's.
    #[arg(long = "rootless", default_value = "auto", value_name = "WHEN")]
    rootless_mode: Rootless,
    /// Log file (default: stderr)
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(
        long = "log-format",
        global = true,
        default_value = "text",
        value_name = "FORMAT"
    )]
    log_format: Format,
    /// Log debug messages
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Print the version
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Rootless {
    True,
    False,
    Auto,
}

/// runc's default state root, or the rootless one under XDG_RUNTIME_DIR.
fn default_root() -> Result<PathBuf, String> {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        return Ok(PathBuf::from("/run/berth-runtime"));
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir).join("berth-runtime")),
        None => Err(format!(
            "running as uid {euid} without --root: set XDG_RUNTIME_DIR or pass --root DIR for the containers' state"
        )),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Write a default config.json for a bundle
    Spec(commands::spec::Args),
    /// Create a container (it waits for `start`)
    Create(commands::create::Args),
    /// Start a created container
    Start(commands::IdArg),
    /// Print a container's state as JSON
    State(commands::IdArg),
    /// Send a signal to a container's init (or --all its processes)
    Kill(commands::kill::Args),
    /// Delete a container
    Delete(commands::delete::Args),
    /// Create and start a container, and wait for it unless --detach
    Run(commands::run::Args),
    /// List containers
    List(commands::list::Args),
    /// Freeze every process of a container
    Pause(commands::IdArg),
    /// Thaw a paused container
    Resume(commands::IdArg),
    /// List a container's processes
    Ps(commands::ps::Args),
    /// Run a new process in a running container
    Exec(commands::exec::Args),
    /// Change a container's resource limits
    Update(Box<commands::update::Args>),
    /// Stream a container's resource usage and OOM events as JSON
    Events(commands::events::Args),
    /// Print what this runtime implements (runtime-spec features JSON)
    Features,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("berth-runtime: {}", logging::usage_line(&e.to_string()));
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let json_errors = cli.log_format == Format::Json && cli.log.is_none();
    if let Err(e) = logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        eprintln!("berth-runtime: cannot open log file: {e}");
        return ExitCode::from(1);
    }
    if cli.version {
        commands::print_version();
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        eprintln!("berth-runtime: no command given; see berth-runtime --help");
        return ExitCode::from(1);
    };
    let root = match cli.root {
        Some(r) => r,
        None => match default_root() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("berth-runtime: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let g = commands::Global {
        root,
        systemd_cgroup: cli.systemd_cgroup,
        rootless: match cli.rootless_mode {
            Rootless::True => Some(true),
            Rootless::False => Some(false),
            Rootless::Auto => None,
        },
    };
    let result = match command {
        Command::Spec(a) => commands::spec::run(a),
        Command::Create(a) => commands::create::run(&g, a),
        Command::Start(a) => commands::start(&g, &a.id),
        Command::State(a) => commands::state(&g, &a.id),
        Command::Kill(a) => commands::kill::run(&g, a),
        Command::Delete(a) => commands::delete::run(&g, a),
        Command::Run(a) => commands::run::run(&g, a),
        Command::List(a) => commands::list::run(&g, a),
        Command::Pause(a) => commands::pause(&g, &a.id),
        Command::Resume(a) => commands::resume(&g, &a.id),
        Command::Ps(a) => commands::ps::run(&g, a),
        Command::Exec(a) => commands::exec::run(&g, a),
        Command::Update(a) => commands::update::run(&g, *a),
        Command::Events(a) => commands::events::run(&g, a),
        Command::Features => commands::features(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = berth::logging::error_chain(e.as_ref());
            // With --log, containerd and podman read the reason from the
            // file; stderr gets one line either way.
            if cli.log.is_some() {
                tracing::error!("{msg}");
            }
            if json_errors {
                eprint!(
                    "{}",
                    logging::format_line(
                        Format::Json,
                        "error",
                        &msg,
                        &[],
                        &berth::runtime::state::now_rfc3339()
                    )
                );
            } else {
                eprintln!("berth-runtime: {msg}");
            }
            ExitCode::from(1)
        }
    }
}
