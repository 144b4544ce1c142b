//! `exec`: a new process in a running container. It joins every namespace
//! and the cgroups of the container's init, and gets the same treatment as
//! the init (capabilities, user, no_new_privs, seccomp, the sealed exec
//! stub).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use super::container::{Console, Error, Result, Runtime};
use super::init;
use super::namespaces;
use super::plan::{self, NsKind, ProcessPlan};
use super::state::{self, Status};
use super::sync::{self, FromChild, FromParent};

/// The process to run: a process.json as containerd and podman write it, or
/// the container's own process with command-line overrides.
pub enum ExecProcess {
    Json(Box<Process>),
    Args(ExecArgs),
}

#[derive(Default)]
pub struct ExecArgs {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub tty: bool,
    pub no_new_privs: bool,
}

pub struct ExecOpts {
    pub id: String,
    pub process: ExecProcess,
    pub console: Console,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
}

/// The container's config, saved at create so `exec` knows its defaults
/// even if the bundle has changed since.
pub const SAVED_CONFIG: &str = "config.json";

fn load_saved_spec(rt: &Runtime, id: &str) -> Result<Spec> {
    let path = rt.root.dir_of(id).join(SAVED_CONFIG);
    let text = std::fs::read(&path).map_err(|source| Error::Io {
        op: "read",
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| Error::Plan(plan::Error::Parse { path, source }))
}

fn process_plan(spec: &Spec, p: &ExecProcess) -> Result<ProcessPlan> {
    match p {
        ExecProcess::Json(proc) => Ok(plan::plan_process(proc)?),
        ExecProcess::Args(a) => {
            let base = spec.process().as_ref().ok_or_else(|| {
                Error::Usage("the container's config has no process to start from".into())
            })?;
            let mut proc = base.clone();
            if a.args.is_empty() {
                return Err(Error::Usage(
                    "exec needs a command (or --process FILE)".into(),
                ));
            }
            proc.set_args(Some(a.args.clone()));
            let mut env = proc.env().clone().unwrap_or_default();
            env.extend(a.env.iter().cloned());
            proc.set_env(Some(env));
            if let Some(cwd) = &a.cwd {
                proc.set_cwd(cwd.clone());
            }
            let mut p = plan::plan_process(&proc)?;
            p.terminal = a.tty;
            if let Some((uid, gid)) = a.user {
                p.uid = uid;
                p.gid = gid.unwrap_or(p.gid);
            }
            if !a.additional_gids.is_empty() {
                p.additional_gids = a.additional_gids.clone();
            }
            if a.no_new_privs {
                p.no_new_privileges = true;
            }
            if !a.caps.is_empty() {
                // As runc: --cap adds to every set but inheritable.
                let caps = p.caps.get_or_insert_with(Default::default);
                for name in &a.caps {
                    let full = if name.starts_with("CAP_") {
                        name.clone()
                    } else {
                        format!("CAP_{name}")
                    };
                    let cap: caps::Capability = full
                        .parse()
                        .map_err(|_| Error::Usage(format!("unknown capability {full:?}")))?;
                    for set in [
                        &mut caps.bounding,
                        &mut caps.effective,
                        &mut caps.permitted,
                        &mut caps.ambient,
                    ] {
                        if !set.contains(&cap) {
                            set.push(cap);
                        }
                    }
                }
            }
            Ok(p)
        }
    }
}

/// Namespaces of `pid` that differ from ours, by comparing the ns links.
/// A link we may not read is an error, not "shared": guessing would run the
/// process outside the container.
fn namespaces_of(pid: i32) -> Result<Vec<NsKind>> {
    let mut out = Vec::new();
    for k in NsKind::ALL {
        let ours = std::fs::read_link(format!("/proc/self/ns/{}", k.proc_name()));
        let path = PathBuf::from(format!("/proc/{pid}/ns/{}", k.proc_name()));
        match (std::fs::read_link(&path), ours) {
            (Ok(t), Ok(o)) if t != o => out.push(k),
            (Ok(_), _) => {}
            // A kernel without this namespace kind.
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => {}
            (Err(source), _) => {
                return Err(Error::Io {
                    op: "read the namespace of the container's init at",
                    path,
                    source,
                });
            }
        }
    }
    Ok(out)
}

impl Runtime {
    /// Runs a process in a running container. Returns its exit status (0
    /// once started with `detach`).
    pub fn exec(&self, mut opts: ExecOpts) -> Result<i32> {
        let rec = self.root.read(&opts.id)?;
        let status = rec.live_status();
        if !matches!(status, Status::Running | Status::Created) {
            return Err(Error::WrongState {
                id: opts.id.clone(),
                status,
                what: "exec needs a running container",
            });
        }
        let spec = load_saved_spec(self, &opts.id)?;
        let p = process_plan(&spec, &opts.process)?;
        super::lsm::check(&p, &super::lsm::active())?;
        let linux = spec.linux().clone().unwrap_or_default();
        let seccomp = plan::plan_seccomp(&linux)?
            .as_ref()
            .map(|p| super::seccomp::Setup::prepare(p, &self.seccomp_cache()))
            .transpose()?;
        let pidfd = crate::linux::pidfd_open(rec.pid).map_err(|errno| Error::Sys {
            op: format!("pidfd_open {}", rec.pid),
            errno,
        })?;
        if !state::process_alive(rec.pid, rec.pid_start) {
            return Err(Error::WrongState {
                id: opts.id.clone(),
                status: Status::Stopped,
                what: "exec needs a running container",
            });
        }

        let mut ours = None;
        match (&opts.console, p.terminal) {
            (Console::None, true) if opts.detach => {
                return Err(Error::Usage(
                    "--tty with --detach needs --console-socket".into(),
                ));
            }
            (Console::None, true) => {
                let (a, b) = UnixStream::pair().map_err(|source| Error::Io {
                    op: "socketpair for",
                    path: PathBuf::from(&opts.id),
                    source,
                })?;
                opts.console = Console::Fd(b.into());
                ours = Some(OwnedFd::from(a));
            }
            (Console::Socket(_) | Console::Fd(_), false) => {
                return Err(Error::Usage(
                    "--console-socket was given but the process has no terminal".into(),
                ));
            }
            _ => {}
        }
        let console_socket = match std::mem::replace(&mut opts.console, Console::None) {
            Console::None => None,
            Console::Socket(path) => Some(super::console::connect(&path)?),
            Console::Fd(fd) => Some(fd),
        };

        // The pid and time namespaces apply to children. Root joins them
        // here, for the process we are about to clone. An unprivileged
        // caller may enter them only from inside the container's user
        // namespace: its child joins everything and forks the process.
        let kinds = namespaces_of(rec.pid)?;
        let via_intermediate = !nix::unistd::geteuid().is_root() && kinds.contains(&NsKind::User);
        if !via_intermediate {
            for k in [NsKind::Pid, NsKind::Time] {
                if kinds.contains(&k) {
                    let path = PathBuf::from(format!("/proc/{}/ns/{}", rec.pid, k.proc_name()));
                    let fd = namespaces::open_ns(k, &path)?;
                    namespaces::join(k, &fd, &path)?;
                }
            }
        } else {
            // The process is our grandchild: it must come back to us.
            nix::sys::prctl::set_child_subreaper(true).map_err(|errno| Error::Sys {
                op: "set child subreaper".into(),
                errno,
            })?;
        }
        let join_flags = kinds
            .iter()
            .filter(|k| via_intermediate || !matches!(k, NsKind::Pid | NsKind::Time))
            .fold(0, |f, k| f | k.clone_flag().bits());

        let cg = rec.cgroup.clone();
        let v2_fd = match &cg {
            Some(cg) => cg.v2_dir_fd()?,
            None => None,
        };
        let blocked = if opts.detach {
            None
        } else {
            Some(super::foreground::block_signals().map_err(|e| Error::Usage(e.to_string()))?)
        };
        let (parent_chan, child_chan) = sync::pair()?;
        let child = namespaces::clone3(
            nix::sched::CloneFlags::empty(),
            v2_fd.as_ref().map(|f| f.as_fd()),
        )?;
        let Some(child) = child else {
            let joined = if via_intermediate {
                exec_intermediate(&pidfd, join_flags, &child_chan);
                0
            } else {
                join_flags
            };
            exec_child(
                &pidfd,
                joined,
                !via_intermediate,
                &child_chan,
                &p,
                console_socket.as_ref(),
                opts.preserve_fds,
                seccomp.as_ref().map(|s| (s, &rec)),
            )
        };
        drop(child_chan);
        drop(console_socket);
        drop(seccomp);
        let child = if via_intermediate {
            let got = parent_chan.recv::<FromChild>();
            let _ = nix::sys::wait::waitpid(child, None);
            match got {
                Ok(FromChild::InitPid(pid)) => Pid::from_raw(pid),
                other => {
                    if let Some(b) = &blocked {
                        super::foreground::unblock_signals(b);
                    }
                    return Err(match other {
                        Ok(FromChild::Error(e)) => Error::Init(e),
                        Ok(m) => Error::Init(format!(
                            "unexpected message from the exec'd process: {m:?}"
                        )),
                        Err(e) => e.into(),
                    });
                }
            }
        } else {
            child
        };

        let started = self.finish_exec(&parent_chan, child, cg.as_ref(), v2_fd.is_some());
        if let Err(e) = started {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            if let Some(b) = &blocked {
                super::foreground::unblock_signals(b);
            }
            return Err(e);
        }
        if let Some(pf) = &opts.pid_file {
            super::container::write_pid_file(pf, child.as_raw())?;
        }
        let master = match ours {
            Some(sock) => Some(super::console::recv_fd(&sock)?),
            None => None,
        };
        let Some(blocked) = blocked else { return Ok(0) };
        let code = super::foreground::wait(child, &blocked, master)
            .map_err(|e| Error::Usage(e.to_string()));
        super::foreground::unblock_signals(&blocked);
        code
    }

    fn finish_exec(
        &self,
        chan: &sync::Channel,
        child: Pid,
        cg: Option<&crate::cgroups::Cgroup>,
        cloned_into_v2: bool,
    ) -> Result<()> {
        if let Some(cg) = cg {
            cg.add_task(child, cloned_into_v2)?;
        }
        chan.send(&FromParent::Continue)?;
        match chan.recv::<FromChild>() {
            Ok(FromChild::Created) => {}
            Ok(FromChild::Error(e)) => return Err(Error::Init(e)),
            Ok(other) => {
                return Err(Error::Init(format!(
                    "unexpected message from the exec'd process: {other:?}"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        // Then EOF (the channel closed on exec) or why the exec failed.
        match chan.recv::<FromChild>() {
            Err(sync::Error::Closed) => Ok(()),
            Ok(FromChild::Error(e)) => Err(Error::Init(e)),
            Ok(other) => Err(Error::Init(format!(
                "unexpected message from the exec'd process: {other:?}"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

/// The intermediate process of an unprivileged exec: joins all the
/// container's namespaces (the user namespace first, which gives the
/// capabilities to enter the others), forks the process into the pid
/// namespace, reports its pid and exits. Returns only in that process.
fn exec_intermediate(pidfd: &OwnedFd, join_flags: i32, chan: &sync::Channel) {
    let fail = |msg: String| -> ! {
        let _ = chan.send(&FromChild::Error(msg));
        // SAFETY: leave without running the parent's destructors.
        unsafe { libc::_exit(126) }
    };
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        fail(format!("pdeathsig: {e}"));
    }
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        fail(format!("dumpable: {e}"));
    }
    // SAFETY: setns with a pidfd and a namespace mask.
    if unsafe { libc::setns(pidfd.as_raw_fd(), join_flags) } != 0 {
        fail(format!(
            "join the container's namespaces: {}",
            Errno::last()
        ));
    }
    match namespaces::clone3(nix::sched::CloneFlags::empty(), None) {
        Ok(None) => {}
        Ok(Some(pid)) => {
            let _ = chan.send(&FromChild::InitPid(pid.as_raw()));
            // SAFETY: the intermediate ends here, without destructors.
            unsafe { libc::_exit(0) }
        }
        Err(e) => fail(e.to_string()),
    }
}

/// The exec'd process before it execs. Never returns. `die_with_parent`
/// is false when our parent is an intermediate that exits at once.
#[allow(clippy::too_many_arguments)]
fn exec_child(
    pidfd: &OwnedFd,
    join_flags: i32,
    die_with_parent: bool,
    chan: &sync::Channel,
    p: &ProcessPlan,
    console_socket: Option<&OwnedFd>,
    preserve_fds: i32,
    seccomp: Option<(&super::seccomp::Setup, &state::Record)>,
) -> ! {
    let result = (|| -> std::result::Result<std::convert::Infallible, String> {
        if die_with_parent {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(|e| format!("pdeathsig: {e}"))?;
        }
        // Our host pid, while /proc is still the host's (past an
        // intermediate, only the container's view is left).
        let host_pid = crate::linux::proc_self_pid().unwrap_or(0);
        let seccomp = seccomp.map(|(setup, rec)| init::SeccompStep {
            setup,
            pid: host_pid,
            state: rec.hook_state(Status::Running),
        });
        nix::sys::prctl::set_dumpable(false).map_err(|e| format!("dumpable: {e}"))?;
        if join_flags != 0 {
            // All namespaces at once through the init's pidfd (Linux 5.8):
            // the user namespace first is implied, and no half-joined state.
            // SAFETY: setns with a pidfd and a namespace mask.
            if unsafe { libc::setns(pidfd.as_raw_fd(), join_flags) } != 0 {
                return Err(format!(
                    "join the container's namespaces: {}",
                    Errno::last()
                ));
            }
        }
        match chan.recv::<FromParent>() {
            Ok(FromParent::Continue) => {}
            Ok(other) => return Err(format!("unexpected message {other:?}")),
            Err(e) => return Err(e.to_string()),
        }
        let ready = init::become_process(p, console_socket, &[], preserve_fds, seccomp)
            .map_err(|e| e.to_string())?;
        nix::sys::prctl::set_pdeathsig(None).map_err(|e| format!("pdeathsig: {e}"))?;
        chan.send(&FromChild::Created).map_err(|e| e.to_string())?;
        Err(init::exec_program(&ready, p).to_string())
    })();
    let msg = match result {
        Ok(never) => match never {},
        Err(m) => m,
    };
    let _ = chan.send(&FromChild::Error(msg));
    // SAFETY: leave without running the parent's destructors.
    unsafe { libc::_exit(126) }
}

/// Reads a process.json.
pub fn load_process(path: &Path) -> Result<Process> {
    let text = std::fs::read(path).map_err(|source| Error::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| {
        Error::Plan(plan::Error::Parse {
            path: path.to_path_buf(),
            source,
        })
    })
}
