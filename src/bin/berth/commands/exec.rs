//! `berth exec [-d] [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER CMD…`.

use anyhow::{Result, bail};
use berth::engine::Engine;
use berth::engine::record::Status;
use berth::runtime::container::Console;
use berth::runtime::exec::{ExecArgs, ExecOpts, ExecProcess};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep stdin open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// user[:group]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Extended privileges
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let id = engine.containers.resolve(&args.container)?;
    let rec = engine.containers.read(&id)?;
    let st = engine.live_state(&id);
    if st.status != Status::Running {
        bail!("container {} is not running ({})", rec.name, st.status);
    }
    let user = match &args.user {
        Some(u) => {
            let root = berth::inroot::Root::open(&engine.containers.paths(&id).rootfs())?;
            let read = |p: &str| {
                let mut s = String::new();
                if let Ok(mut f) =
                    root.open_file(std::path::Path::new(p), nix::fcntl::OFlag::O_RDONLY)
                {
                    let _ = std::io::Read::read_to_string(&mut f, &mut s);
                }
                s
            };
            let r = berth::engine::users::resolve(u, &read("/etc/passwd"), &read("/etc/group"))?;
            Some((r.uid, Some(r.gid)))
        }
        None => None,
    };
    let caps: Vec<String> = if args.privileged {
        caps::all().into_iter().map(|c| c.to_string()).collect()
    } else {
        vec![]
    };
    let process = ExecProcess::Args(ExecArgs {
        args: args.command.clone(),
        env: args.env.clone(),
        cwd: args.workdir.clone().map(Into::into),
        user,
        additional_gids: vec![],
        caps,
        tty: args.tty,
        no_new_privs: rec.host_config.no_new_privileges,
    });
    if !args.interactive {
        // Without -i the process gets no stdin, as with docker.
        let null = std::fs::File::open("/dev/null")?;
        nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0)?;
    }
    let code = engine.runtime().exec(ExecOpts {
        id: id.clone(),
        process,
        console: Console::None,
        detach: args.detach,
        pid_file: None,
        preserve_fds: 0,
    })?;
    Ok(code)
}
