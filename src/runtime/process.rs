//! The container process's identity and limits: rlimits, user and groups,
//! capabilities, no_new_privs, and finding the program to exec.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability};
use nix::errno::Errno;
use oci_spec::runtime::PosixRlimitType;

use super::plan::{CapSets, ProcessPlan, Rlimit};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("set rlimit {name}: {errno}")]
    Rlimit { name: &'static str, errno: Errno },
    #[error("{op}: {errno}")]
    Sys { op: String, errno: Errno },
    #[error("capabilities: {op}: {msg}")]
    Caps { op: String, msg: String },
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: {path:?}: {why}")]
    NotExecutable { path: String, why: String },
}

pub type Result<T> = std::result::Result<T, Error>;

fn rlimit_resource(r: PosixRlimitType) -> (libc::__rlimit_resource_t, &'static str) {
    use PosixRlimitType::*;
    match r {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

pub fn set_rlimits(limits: &[Rlimit]) -> Result<()> {
    for l in limits {
        let (res, name) = rlimit_resource(l.resource);
        let r = libc::rlimit {
            rlim_cur: l.soft,
            rlim_max: l.hard,
        };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(res, &r) } != 0 {
            return Err(Error::Rlimit {
                name,
                errno: Errno::last(),
            });
        }
    }
    Ok(())
}

/// Becomes the configured user, keeping the capabilities the config grants
/// across the uid change. `setgroups_allowed` is false in a user namespace
/// whose setgroups is "deny".
pub fn switch_user(p: &ProcessPlan, setgroups_allowed: bool) -> Result<()> {
    let sys = |op: &str| {
        let op = op.to_string();
        move |errno| Error::Sys { op, errno }
    };
    if setgroups_allowed {
        let groups: Vec<nix::unistd::Gid> = p
            .additional_gids
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).map_err(sys("setgroups"))?;
    } else if !p.additional_gids.is_empty() {
        return Err(Error::Sys {
            op: "setgroups (denied in this user namespace)".into(),
            errno: Errno::EPERM,
        });
    }
    let gid = nix::unistd::Gid::from_raw(p.gid);
    let uid = nix::unistd::Uid::from_raw(p.uid);
    nix::unistd::setresgid(gid, gid, gid).map_err(sys(&format!("setgid {}", p.gid)))?;
    if p.uid != 0 {
        // Keep the permitted set across the change away from uid 0.
        nix::sys::prctl::set_keepcaps(true).map_err(sys("keepcaps"))?;
    }
    nix::unistd::setresuid(uid, uid, uid).map_err(sys(&format!("setuid {}", p.uid)))?;
    if p.uid != 0 {
        nix::sys::prctl::set_keepcaps(false).map_err(sys("keepcaps"))?;
    }
    Ok(())
}

fn caps_err(op: &str) -> impl FnOnce(caps::errors::CapsError) -> Error + '_ {
    move |e| Error::Caps {
        op: op.to_string(),
        msg: e.to_string(),
    }
}

/// Drops from the bounding set everything the config does not list. Done
/// before the user switch, while we still hold CAP_SETPCAP.
pub fn drop_bounding(c: &CapSets) -> Result<()> {
    let keep: HashSet<Capability> = c.bounding.iter().copied().collect();
    let supported = caps::runtime::thread_all_supported();
    for cap in supported {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(caps_err("drop from bounding set"))?;
        }
    }
    Ok(())
}

/// Sets the effective, permitted, inheritable and ambient sets exactly.
pub fn apply_caps(c: &CapSets) -> Result<()> {
    let set = |v: &[Capability]| v.iter().copied().collect::<caps::CapsHashSet>();
    // Inheritable first, while the permitted set still covers it; then
    // effective (each capset must keep effective within permitted); then
    // permitted.
    caps::set(None, CapSet::Inheritable, &set(&c.inheritable))
        .map_err(caps_err("set inheritable"))?;
    caps::set(None, CapSet::Effective, &set(&c.effective)).map_err(caps_err("set effective"))?;
    caps::set(None, CapSet::Permitted, &set(&c.permitted)).map_err(caps_err("set permitted"))?;
    caps::clear(None, CapSet::Ambient).map_err(caps_err("clear ambient"))?;
    for cap in &c.ambient {
        // Ambient caps must also be permitted and inheritable; runc warns and
        // goes on when they are not (its own default config lists ambient
        // caps with an empty inheritable set), and so do we.
        if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
            tracing::debug!("cannot raise ambient capability {cap}: {e}");
        }
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().map_err(|errno| Error::Sys {
        op: "no_new_privs".into(),
        errno,
    })
}

/// Gives the program a clean signal state, as crun does: nothing blocked and
/// every disposition default. An exec keeps the mask and ignored signals, and
/// ours are not the container's: Rust ignores SIGPIPE, and `run` blocks the
/// signals it forwards.
pub fn reset_signals() -> Result<()> {
    // SAFETY: raw rt_sigprocmask/rt_sigaction with kernel-layout buffers
    // that live across the calls; SIG_DFL installs no handler of ours.
    // Raw, because the C library hides and refuses its own signals (32,
    // 33), and a blocked or ignored one of those would reach the program.
    unsafe {
        let empty: u64 = 0;
        if libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        ) != 0
        {
            return Err(Error::Sys {
                op: "unblock signals".into(),
                errno: Errno::last(),
            });
        }
        // The kernel's struct sigaction: handler, flags, restorer, mask.
        let dfl: [u64; 4] = [libc::SIG_DFL as u64, 0, 0, 0];
        for sig in 1..=64 {
            // SIGKILL and SIGSTOP refuse (EINVAL): they are default anyway.
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
    Ok(())
}

/// The value of `key` in a KEY=value list.
pub fn env_get<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds the program as execvp would, in the container's filesystem (we are
/// past pivot_root), with the container's PATH. Checked here so that a
/// missing program is an error at create, as with runc.
pub fn find_program(arg0: &str, env: &[String], cwd: &Path) -> Result<String> {
    if arg0.contains('/') {
        let p = if arg0.starts_with('/') {
            PathBuf::from(arg0)
        } else {
            cwd.join(arg0)
        };
        check_executable(&p, arg0)?;
        return Ok(arg0.to_string());
    }
    let path = env_get(env, "PATH").unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if check_executable(&cand, arg0).is_ok() {
            return Ok(cand.to_string_lossy().into_owned());
        }
    }
    Err(Error::NotFound(arg0.to_string()))
}

fn check_executable(p: &Path, shown: &str) -> Result<()> {
    let meta = std::fs::metadata(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotExecutable {
                path: shown.to_string(),
                why: "no such file or directory".into(),
            }
        } else {
            Error::NotExecutable {
                path: shown.to_string(),
                why: e.to_string(),
            }
        }
    })?;
    use std::os::unix::fs::PermissionsExt;
    if meta.is_dir() {
        return Err(Error::NotExecutable {
            path: shown.to_string(),
            why: "is a directory".into(),
        });
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(Error::NotExecutable {
            path: shown.to_string(),
            why: "permission denied".into(),
        });
    }
    Ok(())
}

/// HOME from the container's /etc/passwd when the config leaves it out, as
/// runc does.
pub fn home_for(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
        })
        .next()
        .unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lookup_takes_the_last() {
        let env = vec![
            "PATH=/a".to_string(),
            "X=1".to_string(),
            "PATH=/b".to_string(),
        ];
        assert_eq!(env_get(&env, "PATH"), Some("/b"));
        assert_eq!(env_get(&env, "PAT"), None);
    }

    #[test]
    fn finds_programs_on_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        let p = find_program("sh", &env, Path::new("/")).unwrap();
        assert!(p.ends_with("/sh"));
        assert!(matches!(
            find_program("no-such-program-xyz", &env, Path::new("/")),
            Err(Error::NotFound(_))
        ));
        assert!(find_program("/etc/passwd", &env, Path::new("/")).is_err());
    }
}
