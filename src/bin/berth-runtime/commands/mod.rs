//! One file per command; the small ones live here.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod kill;
pub mod list;
pub mod ps;
pub mod run;
pub mod spec;
pub mod update;

use std::path::PathBuf;

use anyhow::Result;
use berth::runtime::container::Runtime;

/// Global flags every command sees.
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    /// `--rootless`: None for auto (when not root).
    pub rootless: Option<bool>,
}

impl Global {
    pub fn runtime(&self) -> Result<Runtime> {
        if self.systemd_cgroup {
            berth::cgroups::check_systemd_driver()?;
            anyhow::bail!(
                "the systemd cgroup driver is not implemented yet; drop --systemd-cgroup to use cgroupfs"
            );
        }
        let mut rt = Runtime::new(&self.root);
        if let Some(r) = self.rootless {
            rt.rootless = r;
        }
        Ok(rt)
    }
}

#[derive(clap::Args)]
pub struct IdArg {
    /// The container id
    pub id: String,
}

pub fn start(g: &Global, id: &str) -> Result<u8> {
    g.runtime()?.start(id)?;
    Ok(0)
}

pub fn state(g: &Global, id: &str) -> Result<u8> {
    let st = g.runtime()?.state(id)?;
    println!("{}", serde_json::to_string_pretty(&st)?);
    Ok(0)
}

pub fn pause(g: &Global, id: &str) -> Result<u8> {
    g.runtime()?.pause(id)?;
    Ok(0)
}

pub fn resume(g: &Global, id: &str) -> Result<u8> {
    g.runtime()?.resume(id)?;
    Ok(0)
}

pub fn print_version() {
    println!("berth-runtime version {}", env!("CARGO_PKG_VERSION"));
    println!(
        "commit: {}",
        option_env!("BERTH_COMMIT").unwrap_or("unknown")
    );
    println!("spec: {}", berth::runtime::SPEC_VERSION);
    println!(
        "libseccomp: {}",
        berth::runtime::seccomp::libseccomp_version()
    );
}

/// The runtime-spec features document, indented as runc prints it.
pub fn features() -> Result<u8> {
    use std::io::Write;
    let f = berth::runtime::features::features();
    let mut text = serde_json::to_string_pretty(&f)?;
    text.push('\n');
    // A reader that stops early (`| head`) is not an error worth a panic.
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

/// The runtime's create flags, shared by create and run.
#[derive(clap::Args)]
pub struct CreateFlags {
    /// Path to the bundle (default: the current directory)
    #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Socket to send the pty master to (process.terminal)
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (ramdisk roots)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the runtime's session keyring instead of a new one
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N more fds (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// The container id
    pub id: String,
}

impl CreateFlags {
    pub fn opts(self) -> Result<berth::runtime::container::CreateOpts> {
        use berth::runtime::container::{Console, CreateOpts};
        let preserve_fds = i32::try_from(self.preserve_fds)
            .map_err(|_| anyhow::anyhow!("--preserve-fds {} is too large", self.preserve_fds))?;
        Ok(CreateOpts {
            id: self.id,
            bundle: self.bundle,
            pid_file: self.pid_file,
            console: self.console_socket.map_or(Console::None, Console::Socket),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds,
            die_with_parent: false,
        })
    }
}
