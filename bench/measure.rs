//! Timing: one child process per measurement, spawned the same way for every
//! contender (fork + exec, stdout to /dev/null, stderr to a file read only on
//! failure), and the statistics the table reports.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A command line to time. `mntns` makes the child enter that mount
/// namespace before exec (crun's private cgroup view, see `crun_ns`).
#[derive(Clone)]
pub struct Cmd {
    prog: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    mntns: Option<Rc<OwnedFd>>,
}

impl Cmd {
    pub fn new(prog: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            prog: prog.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            mntns: None,
        }
    }

    /// `sh -c SCRIPT`: for pipelines (`pigz -dc | tar -x`), whose run time
    /// (a second or more) dwarfs the shell's millisecond.
    pub fn shell(script: &str) -> Cmd {
        Cmd::new("/bin/sh").arg("-c").arg(script)
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    pub fn in_mntns(mut self, ns: Option<Rc<OwnedFd>>) -> Cmd {
        self.mntns = ns;
        self
    }

    pub fn display(&self) -> String {
        let mut s = self.prog.to_string_lossy().into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.prog);
        c.args(&self.args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let ns = self.mntns.as_ref().map(|fd| fd.as_raw_fd());
        // Every contender gets a pre_exec hook, so every one is started by
        // fork + exec (std uses posix_spawn without one): the same cost for all.
        // SAFETY: setns is async-signal-safe; nothing else runs in the child.
        unsafe {
            c.pre_exec(move || {
                if let Some(fd) = ns
                    && libc::setns(fd, libc::CLONE_NEWNS) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    /// Runs to completion and returns the wall time from spawn to reaped.
    /// A non-zero exit is an error carrying the command's stderr.
    pub fn time(&self, log: &Path) -> Result<Duration> {
        let err = File::create(log).with_context(|| format!("create {}", log.display()))?;
        let mut c = self.command();
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        interrupted()?;
        let t0 = Instant::now();
        let status = c
            .spawn()
            .with_context(|| format!("spawn {}", self.display()))?
            .wait()?;
        let dt = t0.elapsed();
        if !status.success() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{} failed ({status}): {}", self.display(), text.trim());
        }
        Ok(dt)
    }

    /// Runs off the clock and returns stdout.
    pub fn output(&self) -> Result<String> {
        interrupted()?;
        let mut c = self.command();
        c.stdin(Stdio::null());
        let out = c
            .output()
            .with_context(|| format!("spawn {}", self.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed ({}): {}",
                self.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs off the clock, for cleanup: failures are ignored.
    pub fn quiet(&self) {
        let mut c = self.command();
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = c.status();
    }
}

/// Durations of one measured thing, in milliseconds.
#[derive(Clone, Debug, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// Nearest-rank percentile, `p` in 0..=100.
    pub fn percentile(&self, p: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn p95(&self) -> f64 {
        self.percentile(95.0)
    }
}

/// The contenders' order in round `round`: rotated each round, so none is
/// always first (after the idle gap) or last.
pub fn order(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (k + round) % n.max(1))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT/SIGTERM/SIGHUP set a flag instead of killing the bench, so it
/// stops at the next measurement and cleans up what it made.
pub fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

pub fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// A fresh directory `base/name.N` that did not exist before: the unpack
/// runs write into new directories (ext4 without a journal is slow to
/// re-create a tree right where one was deleted).
pub fn fresh_dir(base: &Path, name: &str) -> Result<PathBuf> {
    let mut n = 0u64;
    loop {
        let p = base.join(format!("{name}.{n}"));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e).with_context(|| format!("mkdir {}", p.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95() {
        let s = Samples((1..=100).map(f64::from).collect());
        assert_eq!(s.median(), 50.5);
        assert_eq!(s.p95(), 95.0);
        let s = Samples(vec![3.0, 1.0, 2.0]);
        assert_eq!(s.median(), 2.0);
        assert_eq!(s.p95(), 3.0);
        assert!(Samples::default().median().is_nan());
    }
}
