//! `berth login [-u USER] [-p PASS | --password-stdin] [--insecure] REGISTRY`
//! and `berth logout REGISTRY`. Credentials go to ROOT/auth.json (0600).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use berth::image::auth::{CredentialStore, Credentials};
use berth::image::reference::normalize_registry;
use berth::image::registry::{self, Options};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Registry host[:port] (default docker.io).
    #[arg(default_value = "docker.io")]
    registry: String,
    #[arg(short, long)]
    username: Option<String>,
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Talk plain HTTP to the registry.
    #[arg(long)]
    insecure: bool,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    #[arg(default_value = "docker.io")]
    registry: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    let registry = normalize_registry(&args.registry);
    let username = match &args.username {
        Some(u) => u.clone(),
        None => prompt("Username: ", true)?,
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt("Password: ", false)?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("login to {registry}: username and password are required");
    }
    let creds = Credentials { username, password };
    let options = Options {
        plain_http: args.insecure,
        credentials: Some(creds.clone()),
    };
    let mut options = options.with_root_settings(&cli.root, &registry)?;
    options.credentials = Some(creds.clone());
    registry::login(&registry, &options).with_context(|| format!("login to {registry}"))?;
    std::fs::create_dir_all(&cli.root)
        .with_context(|| format!("creating {}", cli.root.display()))?;
    CredentialStore::new(&cli.root).set(&registry, &creds)?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(cli: &Cli, args: &LogoutArgs) -> Result<()> {
    let registry = normalize_registry(&args.registry);
    if CredentialStore::new(&cli.root).remove(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(())
}

/// Asks on the terminal; the password without echo.
fn prompt(label: &str, echo: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "{} is required (-u/-p or --password-stdin) when stdin is not a terminal",
            label.trim_end_matches(": ").to_lowercase()
        );
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let saved = if echo {
        None
    } else {
        rustix::termios::tcgetattr(&stdin).ok()
    };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
        eprintln!();
    }
    read.context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
