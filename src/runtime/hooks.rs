//! OCI hooks: programs run at lifecycle points with the container's state on
//! their stdin (runtime-spec "POSIX-platform Hooks").

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{stage} hook {path}: cannot start: {source}")]
    Start {
        stage: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{stage} hook {path}: {status}{output}")]
    Failed {
        stage: &'static str,
        path: PathBuf,
        status: String,
        output: String,
    },
    #[error("{stage} hook {path}: timed out after {secs} s")]
    Timeout {
        stage: &'static str,
        path: PathBuf,
        secs: i64,
    },
    #[error("{stage} hook {path}: timeout must be positive, not {secs}")]
    BadTimeout {
        stage: &'static str,
        path: PathBuf,
        secs: i64,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The hook stages we run, in lifecycle order (prestart is deprecated but
/// still run, with createRuntime).
pub const STAGES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Runs `hooks` in order; the first failure stops the rest.
pub fn run_all(stage: &'static str, hooks: Option<&Vec<Hook>>, state_json: &[u8]) -> Result<()> {
    for h in hooks.into_iter().flatten() {
        run(stage, h, state_json)?;
    }
    Ok(())
}

/// Runs every hook, logging failures instead of stopping (poststart and
/// poststop: "the runtime MUST log a warning, but the remaining hooks and
/// lifecycle continue").
pub fn run_all_warn(stage: &'static str, hooks: Option<&Vec<Hook>>, state_json: &[u8]) {
    for h in hooks.into_iter().flatten() {
        if let Err(e) = run(stage, h, state_json) {
            tracing::warn!("{e}");
        }
    }
}

pub fn run(stage: &'static str, hook: &Hook, state_json: &[u8]) -> Result<()> {
    let path = hook.path().clone();
    if let Some(t) = hook.timeout()
        && t <= 0
    {
        return Err(Error::BadTimeout {
            stage,
            path,
            secs: t,
        });
    }
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(&path);
    if let Some(first) = args.first() {
        cmd.arg0(first);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for e in hook.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Output goes to a memfd, not a pipe: a chatty hook cannot fill a pipe
    // and hang while we wait for it, and we keep its last words for the error.
    let out_file = output_file().map_err(|source| Error::Start {
        stage,
        path: path.clone(),
        source,
    })?;
    let err_file = out_file.try_clone().map_err(|source| Error::Start {
        stage,
        path: path.clone(),
        source,
    })?;
    let mut read_back = out_file.try_clone().map_err(|source| Error::Start {
        stage,
        path: path.clone(),
        source,
    })?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out_file))
        .stderr(Stdio::from(err_file));
    let mut child = cmd.spawn().map_err(|source| Error::Start {
        stage,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not fail the hook.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                return Err(Error::Start {
                    stage,
                    path,
                    source,
                });
            }
        }
        if let Some(d) = deadline
            && Instant::now() >= d
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout {
                stage,
                path,
                secs: hook.timeout().unwrap_or(0),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if status.success() {
        return Ok(());
    }
    let mut out = String::new();
    let _ = read_back.seek(std::io::SeekFrom::Start(0));
    let _ = read_back.read_to_string(&mut out);
    let out = out.trim();
    let output = if out.is_empty() {
        String::new()
    } else {
        format!(": {}", out.lines().last().unwrap_or_default())
    };
    Err(Error::Failed {
        stage,
        path,
        status: status.to_string(),
        output,
    })
}

fn output_file() -> std::io::Result<File> {
    // SAFETY: a valid C string and flags; the returned fd is checked.
    let fd = unsafe { libc::memfd_create(c"berth-hook-output".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}
