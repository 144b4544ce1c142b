//! Named fault points, for the tests that kill berth on purpose
//! (`tests/fault_injection.rs`).
//!
//! `BERTH_FAULT=NAME` makes the process SIGKILL itself when it reaches the
//! point `NAME`; `NAME:pause` stops it there (SIGSTOP) so a test can look at
//! the half-done state before it kills it; `NAME@N` acts the N-th time the
//! point is reached (layers, log lines). Several are comma-separated.
//! `BERTH_FAULT_TRACE=FILE` appends the name of every point reached to FILE,
//! so a test learns the steps of a command and then kills it at each one.
//!
//! Compiled in always, because the binaries under test are the ones users
//! get; when neither variable is set a point costs one atomic load.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Kill,
    Pause,
}

#[derive(Debug)]
struct Fault {
    name: String,
    action: Action,
    /// Act on this arrival (1 = the first).
    nth: u32,
    seen: AtomicU32,
}

#[derive(Debug, Default)]
struct Config {
    faults: Vec<Fault>,
    trace: Option<std::path::PathBuf>,
}

static CONFIG: OnceLock<Option<Config>> = OnceLock::new();

/// Parses `NAME[@N][:kill|:pause]`, comma-separated. Malformed entries are
/// ignored: this is a test hook, and a typo must not change what berth does.
fn parse(spec: &str) -> Vec<Fault> {
    spec.split(',')
        .filter_map(|item| {
            let item = item.trim();
            let (rest, action) = match item.rsplit_once(':') {
                Some((r, "pause")) => (r, Action::Pause),
                Some((r, "kill")) => (r, Action::Kill),
                Some(_) => return None,
                None => (item, Action::Kill),
            };
            let (name, nth) = match rest.split_once('@') {
                Some((n, k)) => (n, k.parse::<u32>().ok().filter(|k| *k > 0)?),
                None => (rest, 1),
            };
            (!name.is_empty()).then(|| Fault {
                name: name.to_string(),
                action,
                nth,
                seen: AtomicU32::new(0),
            })
        })
        .collect()
}

fn config() -> Option<&'static Config> {
    CONFIG
        .get_or_init(|| {
            let faults = std::env::var("BERTH_FAULT")
                .map(|s| parse(&s))
                .unwrap_or_default();
            let trace = std::env::var_os("BERTH_FAULT_TRACE").map(std::path::PathBuf::from);
            (!faults.is_empty() || trace.is_some()).then_some(Config { faults, trace })
        })
        .as_ref()
}

/// A step boundary named `name` (`area.step`, e.g. `rm.record-removed`).
#[inline]
pub fn point(name: &'static str) {
    if let Some(c) = config() {
        reached(c, name);
    }
}

#[cold]
fn reached(c: &Config, name: &str) {
    if let Some(path) = &c.trace
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        // One write per line: several processes (CLI, shim) share the file.
        let _ = f.write_all(format!("{name}\n").as_bytes());
    }
    for f in c.faults.iter().filter(|f| f.name == name) {
        if f.seen.fetch_add(1, Ordering::SeqCst) + 1 != f.nth {
            continue;
        }
        let sig = match f.action {
            Action::Kill => nix::sys::signal::Signal::SIGKILL,
            Action::Pause => nix::sys::signal::Signal::SIGSTOP,
        };
        // Killing the whole process (not just this thread) is the point.
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let f = parse("a.b, c@3:pause ,d:kill,e:bogus,f@0,@2,g@x");
        let got: Vec<(&str, Action, u32)> = f
            .iter()
            .map(|f| (f.name.as_str(), f.action, f.nth))
            .collect();
        assert_eq!(
            got,
            [
                ("a.b", Action::Kill, 1),
                ("c", Action::Pause, 3),
                ("d", Action::Kill, 1)
            ]
        );
    }
}
