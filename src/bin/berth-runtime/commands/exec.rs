use std::path::PathBuf;

use anyhow::{Result, bail};
use berth::runtime::container::Console;
use berth::runtime::exec::{ExecArgs, ExecOpts, ExecProcess, load_process};

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// A process.json describing the process (instead of a command)
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Set an environment variable (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// UID[:GID] to run as
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group ids (repeatable)
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable)
    #[arg(short = 'c', long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Give the process a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Socket to send the pty master to
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process has started
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process's pid to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Pass N more fds (3..3+N) to the process
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// The container id
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u
        .parse()
        .map_err(|_| anyhow::anyhow!("--user {s:?}: the uid must be a number"))?;
    let gid = match g {
        Some(g) => Some(
            g.parse()
                .map_err(|_| anyhow::anyhow!("--user {s:?}: the gid must be a number"))?,
        ),
        None => None,
    };
    Ok((uid, gid))
}

pub fn run(g: &Global, a: Args) -> Result<u8> {
    let process = match &a.process {
        Some(path) => {
            if !a.command.is_empty() {
                bail!("give either --process or a command, not both");
            }
            let mut p = load_process(path)?;
            if a.tty {
                p.set_terminal(Some(true));
            }
            ExecProcess::Json(Box::new(p))
        }
        None => ExecProcess::Args(ExecArgs {
            args: a.command.clone(),
            env: a.env.clone(),
            cwd: a.cwd.clone(),
            user: a.user.as_deref().map(parse_user).transpose()?,
            additional_gids: a.additional_gids.clone(),
            caps: a.cap.clone(),
            tty: a.tty,
            no_new_privs: a.no_new_privs,
        }),
    };
    let preserve_fds = i32::try_from(a.preserve_fds)
        .map_err(|_| anyhow::anyhow!("--preserve-fds is too large"))?;
    let code = g.runtime()?.exec(ExecOpts {
        id: a.id,
        process,
        console: a.console_socket.map_or(Console::None, Console::Socket),
        detach: a.detach,
        pid_file: a.pid_file,
        preserve_fds,
    })?;
    Ok(u8::try_from(code).unwrap_or(255))
}
