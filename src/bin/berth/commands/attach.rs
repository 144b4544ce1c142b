//! The client side of a shim connection: output to our stdout/stderr, our
//! stdin to the container, the terminal in raw mode for `-t`, window size
//! changes and (without a terminal) signals passed on.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;

use anyhow::{Result, bail};
use berth::engine::Engine;
use berth::engine::shim::protocol::{self, from_shim, to_shim};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg};

use crate::Cli;

/// Restores the terminal when dropped.
struct Raw(Option<termios::Termios>);

impl Raw {
    fn enter() -> Raw {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return Raw(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        Raw(Some(saved))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn window_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the struct we pass.
    (unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0)
        .then_some((ws.ws_row, ws.ws_col))
}

/// Attaches to a shim that was asked to start on attach (or to a running
/// container): returns the container's exit code, or None if we detached.
pub fn attach_loop(conn: &mut UnixStream, stdin: bool, tty: bool) -> Result<Option<i32>> {
    // The size first: an ATTACH may start the program at once.
    if tty && let Some((rows, cols)) = window_size() {
        protocol::write_json(conn, to_shim::RESIZE, &protocol::Resize { rows, cols })?;
    }
    protocol::write_json(conn, to_shim::ATTACH, &protocol::Attach { stdin })?;
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGWINCH,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        mask.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let is_tty = nix::unistd::isatty(0).unwrap_or(false);
    let _raw = (tty && is_tty).then(Raw::enter);
    let mut decoder = protocol::Decoder::default();
    let mut stdin_open = stdin;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    loop {
        let sin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(conn.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(sin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[1] {
            while let Ok(Some(info)) = sigfd.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                if sig == Signal::SIGWINCH {
                    if let Some((rows, cols)) = window_size() {
                        protocol::write_json(
                            conn,
                            to_shim::RESIZE,
                            &protocol::Resize { rows, cols },
                        )?;
                    }
                } else if !tty {
                    // --sig-proxy: the container gets what we got.
                    protocol::write_json(
                        conn,
                        to_shim::KILL,
                        &protocol::Kill { signal: sig as i32 },
                    )?;
                }
            }
        }
        if stdin_open && ready.get(2).copied().unwrap_or(false) {
            let mut buf = [0u8; 16 * 1024];
            match nix::unistd::read(sin.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    protocol::write_frame(conn, to_shim::STDIN_CLOSE, b"")?;
                }
                Ok(n) => protocol::write_frame(conn, to_shim::STDIN, &buf[..n])?,
            }
        }
        if ready[0] {
            let mut buf = [0u8; 64 * 1024];
            let n = match std::io::Read::read(conn, &mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            decoder.push(&buf[..n]);
            while let Some((kind, data)) = decoder.next_frame()? {
                match kind {
                    from_shim::STDOUT => {
                        let mut o = stdout.lock();
                        let _ = o.write_all(&data);
                        let _ = o.flush();
                    }
                    from_shim::STDERR => {
                        let mut e = stderr.lock();
                        let _ = e.write_all(&data);
                        let _ = e.flush();
                    }
                    from_shim::EXIT => {
                        let e: protocol::ExitStatus = serde_json::from_slice(&data)
                            .unwrap_or(protocol::ExitStatus { code: -1 });
                        protocol::wait_hangup(conn);
                        return Ok(Some(e.code));
                    }
                    from_shim::ERROR => bail!("{}", String::from_utf8_lossy(&data)),
                    _ => {}
                }
            }
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Do not send our stdin
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    pub container: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let id = engine.containers.resolve(&args.container)?;
    let rec = engine.containers.read(&id)?;
    let mut conn = engine
        .connect(&id)
        .map_err(|_| anyhow::anyhow!("container {} is not running", rec.name))?;
    let stdin = !args.no_stdin && rec.config.open_stdin;
    Ok(attach_loop(&mut conn, stdin, rec.config.tty)?.unwrap_or(0))
}
