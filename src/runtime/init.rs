//! The container's init before it becomes the user's program: the code that
//! runs in the child of `create`, in the new namespaces.
//!
//! Steps, with the runtime (the parent) in lockstep over the sync channel:
//! 1. (only when namespaces must be joined before a new user namespace, or a
//!    user namespace is joined) join, unshare and fork the real init;
//! 2. wait until the parent has written id maps and joined the cgroups;
//! 3. cgroup namespace, joined namespaces, hostname, keyring, mounts;
//! 4. `Mounted`: the parent runs prestart/createRuntime hooks; we run
//!    createContainer hooks, then pivot_root and finish the filesystem;
//! 5. console, rlimits, user, capabilities; `Created`;
//! 6. wait on the exec socket for `start`, run startContainer hooks,
//!    no_new_privs, seccomp, and exec the program through the sealed stub.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;

use super::exec_stub::{self, Stub};
use super::namespaces;
use super::plan::{NsKind, Plan, ProcessPlan};
use super::rootfs;
use super::seccomp;
use super::state::{HookState, Status};
use super::sync::{Channel, FromChild, FromParent};
use crate::cgroups::{Cgroup, Hierarchies};
use crate::inroot::{Create, Root};

/// What the init needs, all prepared by the parent before clone.
pub struct Args<'a> {
    pub id: &'a str,
    pub plan: &'a Plan,
    pub process: &'a ProcessPlan,
    pub chan: Channel,
    pub exec_listener: UnixListener,
    pub console_socket: Option<OwnedFd>,
    pub hierarchies: Option<&'a Hierarchies>,
    pub cgroup: Option<&'a Cgroup>,
    /// The init moves itself into `cgroup` (see [`Cgroup::join_self`]);
    /// otherwise the parent moves it. `.1`: it was cloned into the v2
    /// directory already.
    pub join_cgroup: Option<bool>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Fds 3..3+n stay open in the container.
    pub preserve_fds: i32,
    /// Keep the parent-death signal (see `CreateOpts::die_with_parent`).
    pub die_with_parent: bool,
    /// Extra environment (LISTEN_FDS) for the program.
    pub extra_env: Vec<String>,
    /// Namespace work the child does itself (see [`Stage1`]).
    pub stage1: Stage1,
    pub parent_pid: i32,
    /// The compiled seccomp filter, if the config has one.
    pub seccomp: Option<&'a seccomp::Setup>,
}

/// Namespace steps the child takes before the init proper.
pub struct Stage1 {
    /// Join these before anything else (as the host's root).
    pub join_first: Vec<(NsKind, OwnedFd, PathBuf)>,
    /// Then this user namespace (joined) ...
    pub join_user: Option<(OwnedFd, PathBuf)>,
    /// ... or a new one, mapped by the parent.
    pub unshare_user: bool,
    /// Then create these.
    pub unshare: CloneFlags,
    /// And fork so the init is inside a new pid (or time) namespace.
    pub fork: bool,
    /// Namespaces joined after clone, in the fast path.
    pub join_after: Vec<(NsKind, OwnedFd, PathBuf)>,
    /// A new cgroup namespace, made after the parent has put us in our
    /// cgroups so that it is rooted there.
    pub new_cgroupns: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ns(#[from] namespaces::Error),
    #[error(transparent)]
    Rootfs(#[from] rootfs::Error),
    #[error(transparent)]
    Sync(#[from] super::sync::Error),
    #[error(transparent)]
    Process(#[from] super::process::Error),
    #[error(transparent)]
    Hook(#[from] super::hooks::Error),
    #[error(transparent)]
    Console(#[from] super::console::Error),
    #[error(transparent)]
    Stub(#[from] super::exec_stub::Error),
    #[error(transparent)]
    Path(#[from] crate::inroot::Error),
    #[error(transparent)]
    Seccomp(#[from] seccomp::Error),
    #[error(transparent)]
    Lsm(#[from] super::lsm::Error),
    #[error("join the container's cgroup: {0}")]
    Cgroup(#[from] crate::cgroups::Error),
    #[error("{op}: {errno}")]
    Sys { op: String, errno: Errno },
    #[error("process.cwd {path:?}: {why}")]
    Cwd { path: PathBuf, why: String },
    #[error("exec {program}: {source}")]
    Exec {
        program: String,
        source: super::exec_stub::Error,
    },
    #[error("the parent process went away")]
    Orphaned,
}

type Result<T> = std::result::Result<T, Error>;

fn sys(op: &str) -> impl FnOnce(Errno) -> Error + '_ {
    move |errno| Error::Sys {
        op: op.to_string(),
        errno,
    }
}

/// The child's entry point. Never returns: it becomes the program or exits.
pub fn main(a: Args<'_>) -> ! {
    let err = match run(&a) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Tell whoever listens (the parent during create, `start` afterwards
    // through the exec socket) what failed. The parent may be gone already.
    let _ = a.chan.send(&FromChild::Error(err.to_string()));
    // SAFETY: _exit skips atexit handlers and destructors that belong to the
    // parent's copy of the process state.
    unsafe { libc::_exit(1) }
}

fn run(a: &Args<'_>) -> Result<std::convert::Infallible> {
    // Die with the parent while it is still setting us up; cleared once
    // created, since `create` exits and the container must not.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(sys("pdeathsig"))?;
    // In a new pid namespace our parent is outside it and getppid says 0.
    let ppid = nix::unistd::getppid().as_raw();
    if ppid != a.parent_pid && ppid != 0 {
        return Err(Error::Orphaned);
    }
    // Keep /proc/PID/exe (the host runtime binary) out of reach of the
    // container's processes until the exec (see exec_stub). An unprivileged
    // parent must still open our /proc files to write the id maps, which a
    // non-dumpable process's are closed to: then we turn it off once
    // mapped, before any process of the container can exist.
    let unprivileged_maps =
        a.plan.namespaces.creates(NsKind::User) && !nix::unistd::geteuid().is_root();
    if !unprivileged_maps {
        nix::sys::prctl::set_dumpable(false).map_err(sys("dumpable"))?;
    }

    stage1(a)?;
    // Our pid as the host sees it, for the hooks' state: /proc is still the
    // host's here.
    let host_pid = crate::linux::proc_self_pid().unwrap_or_else(|| nix::unistd::getpid().as_raw());

    match a.chan.recv::<FromParent>()? {
        FromParent::Continue => {}
        other => {
            return Err(Error::Sys {
                op: format!("unexpected message {other:?}"),
                errno: Errno::EPROTO,
            });
        }
    }
    if unprivileged_maps {
        nix::sys::prctl::set_dumpable(false).map_err(sys("dumpable"))?;
    }
    if let (Some(cg), Some(skip_v2)) = (a.cgroup, a.join_cgroup) {
        cg.join_self(skip_v2)?;
    }
    let plan = a.plan;
    let in_userns = plan.namespaces.has(NsKind::User);
    if plan.namespaces.creates(NsKind::User) {
        // We were mapped by the parent: become root of the new namespace.
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .map_err(sys("setgid 0 in the user namespace"))?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .map_err(sys("setuid 0 in the user namespace"))?;
    }
    for (kind, fd, path) in &a.stage1.join_after {
        namespaces::join(*kind, fd, path)?;
    }

    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(sys("sethostname"))?;
    }
    if let Some(d) = &plan.domainname {
        set_domainname(d)?;
    }
    if !a.no_new_keyring {
        join_session_keyring(a.id);
    }

    let joined = CgroupGate {
        chan: &a.chan,
        new_ns: a.stage1.new_cgroupns,
        passed: std::cell::Cell::new(false),
    };
    let ctx = rootfs::Context {
        plan,
        in_userns,
        hierarchies: a.hierarchies,
        cgroup: a.cgroup,
        cgroups_joined: &|| joined.pass(),
    };
    let (root, anchors) = rootfs::prepare(&ctx)?;
    joined
        .pass()
        .map_err(sys("wait for the cgroups to be joined"))?;

    a.chan.send(&FromChild::Mounted)?;
    match a.chan.recv::<FromParent>()? {
        FromParent::Continue => {}
        other => {
            return Err(Error::Sys {
                op: format!("unexpected message {other:?}"),
                errno: Errno::EPROTO,
            });
        }
    }
    // createContainer hooks: in the container's namespaces, before
    // pivot_root, paths resolved in the runtime's mount namespace.
    let state = hook_state_json(a, host_pid, Status::Created);
    super::hooks::run_all(
        "createContainer",
        plan.hooks.create_container().as_ref(),
        &state,
    )?;
    // The cwd is made (as runc does) while the rootfs is still reachable by fd.
    let p = a.process;
    root.resolve_or_create(&p.cwd, Create::Dir(0o755))
        .map_err(|e| Error::Cwd {
            path: p.cwd.clone(),
            why: e.to_string(),
        })?;
    drop(root);

    rootfs::pivot(&plan.rootfs, a.no_pivot)?;
    rootfs::apply_sysctls(&plan.sysctl)?;
    rootfs::finalize(plan, &anchors)?;
    drop(anchors);

    let seccomp = a.seccomp.map(|setup| SeccompStep {
        setup,
        pid: host_pid,
        // Without no_new_privs the filter goes in now, during create;
        // otherwise at start.
        state: hook_state(
            a,
            host_pid,
            if p.no_new_privileges {
                Status::Created
            } else {
                Status::Creating
            },
        ),
    });
    let ready = become_process(
        p,
        a.console_socket.as_ref(),
        &a.extra_env,
        a.preserve_fds,
        seccomp,
    )?;

    // Set again after the user switch, which clears it.
    let pdeathsig = if a.die_with_parent {
        Some(Signal::SIGKILL)
    } else {
        None
    };
    nix::sys::prctl::set_pdeathsig(pdeathsig).map_err(sys("pdeathsig"))?;
    a.chan.send(&FromChild::Created)?;

    // Created. Wait for `start`.
    let mut conn = accept_start(&a.exec_listener)?;
    let state = hook_state_json(a, host_pid, Status::Running);
    if let Err(e) = super::hooks::run_all(
        "startContainer",
        plan.hooks.start_container().as_ref(),
        &state,
    ) {
        let _ = conn.write_all(e.to_string().as_bytes());
        return Err(e.into());
    }
    let err = exec_program(&ready, p);
    let _ = conn.write_all(err.to_string().as_bytes());
    Err(err)
}

/// A seccomp filter to install in this process, and what its listener is
/// told about us.
pub struct SeccompStep<'a> {
    pub setup: &'a seccomp::Setup,
    /// This process as the host sees it.
    pub pid: i32,
    pub state: HookState<'a>,
}

/// What is left to do once the process is who it should be: the exec.
pub struct Ready<'a> {
    command: exec_stub::Command,
    stub: Stub,
    /// The filter, when it goes in right before the exec (no_new_privs).
    seccomp: Option<SeccompStep<'a>>,
}

/// Turns this process into the container process `p` describes, short of
/// the exec: terminal, rlimits, cwd, LSM label, capabilities, user,
/// environment, fds; and the seccomp filter when it must go in while we
/// still hold CAP_SYS_ADMIN. Shared by the init and by `exec`. Runs inside
/// the container's root.
pub fn become_process<'a>(
    p: &ProcessPlan,
    console_socket: Option<&OwnedFd>,
    extra_env: &[String],
    preserve_fds: i32,
    seccomp: Option<SeccompStep<'a>>,
) -> Result<Ready<'a>> {
    if p.terminal {
        let Some(sock) = console_socket else {
            return Err(Error::Sys {
                op: "process.terminal needs a console socket".into(),
                errno: Errno::EINVAL,
            });
        };
        super::console::setup(sock, p.console_size)?;
    }

    super::process::set_rlimits(&p.rlimits)?;

    // The cwd as an fd inside the new root: a cwd like /proc/self/fd/N can
    // only resolve to something in the container (CVE-2024-21626).
    let new_root = Root::open(Path::new("/"))?;
    let cwd_fd = new_root.resolve(&p.cwd).map_err(|e| Error::Cwd {
        path: p.cwd.clone(),
        why: e.to_string(),
    })?;
    drop(new_root);

    // The label for the next exec, written while we are still privileged.
    super::lsm::apply(p)?;
    // Made before any filter is in place: a profile may well refuse
    // memfd_create to the container.
    let stub = Stub::new()?;
    let mut seccomp = seccomp;
    if !p.no_new_privileges
        && let Some(step) = seccomp.take()
    {
        // Without no_new_privs, seccomp(2) needs CAP_SYS_ADMIN: install
        // before the user switch drops it (runc's order).
        install_seccomp(&step)?;
    }

    if let Some(c) = &p.caps {
        super::process::drop_bounding(c)?;
    }
    if let Some(mask) = p.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    super::process::switch_user(p, setgroups_allowed())?;
    if let Some(c) = &p.caps {
        super::process::apply_caps(c)?;
    }
    nix::unistd::fchdir(cwd_fd.as_raw_fd()).map_err(|errno| Error::Cwd {
        path: p.cwd.clone(),
        why: errno.to_string(),
    })?;
    drop(cwd_fd);
    check_cwd_inside(&p.cwd)?;

    let mut env = p.env.clone();
    if super::process::env_get(&env, "HOME").is_none() {
        env.push(format!("HOME={}", super::process::home_for(p.uid)));
    }
    env.extend(extra_env.iter().cloned());
    let program = super::process::find_program(&p.args[0], &env, &p.cwd)?;
    let command =
        exec_stub::Command::new(&program, &p.args, &env).map_err(|source| Error::Exec {
            program: program.clone(),
            source,
        })?;

    prepare_fds(preserve_fds)?;
    Ok(Ready {
        command,
        stub,
        seccomp,
    })
}

/// Installs the filter and, for SCMP_ACT_NOTIFY, hands the listener fd to
/// the agent.
fn install_seccomp(step: &SeccompStep<'_>) -> Result<()> {
    // Everything is prepared before the filter is in: after it, only the
    // syscalls the profile allows.
    let message = match &step.setup.listener {
        Some((_, metadata)) => serde_json::to_vec(&seccomp::ProcessState::new(
            step.pid,
            metadata,
            step.state.clone(),
        ))
        .map_err(|e| Error::Sys {
            op: format!("serialize the seccomp listener message: {e}"),
            errno: Errno::EINVAL,
        })?,
        None => Vec::new(),
    };
    let listener_fd = seccomp::install(&step.setup.program)?;
    if let (Some(fd), Some((socket, _))) = (listener_fd, &step.setup.listener) {
        seccomp::send_listener(socket, &fd, &message)?;
    }
    Ok(())
}

/// The last steps, as late as possible so our own setup is not filtered:
/// no_new_privs, the seccomp filter (unless it went in before the user
/// switch), then the exec through the sealed stub. Returns only on failure.
pub fn exec_program(ready: &Ready<'_>, p: &ProcessPlan) -> Error {
    // Before seccomp, which may deny rt_sigaction.
    if let Err(e) = super::process::reset_signals() {
        return e.into();
    }
    if p.no_new_privileges
        && let Err(e) = super::process::set_no_new_privs()
    {
        return e.into();
    }
    if let Some(step) = &ready.seccomp
        && let Err(e) = install_seccomp(step)
    {
        return e;
    }
    let source = ready.stub.exec(&ready.command);
    Error::Exec {
        program: p.args[0].clone(),
        source,
    }
}

/// Where the init waits for the parent to have moved it into its cgroups
/// (once): the moves overlap the mounts made before it. A new cgroup
/// namespace is made here, so that it is rooted in the container's cgroup.
struct CgroupGate<'a> {
    chan: &'a Channel,
    new_ns: bool,
    passed: std::cell::Cell<bool>,
}

impl CgroupGate<'_> {
    fn pass(&self) -> std::result::Result<(), Errno> {
        if self.passed.get() {
            return Ok(());
        }
        match self.chan.recv::<FromParent>() {
            Ok(FromParent::CgroupsJoined) => {}
            Ok(_) => return Err(Errno::EPROTO),
            Err(_) => return Err(Errno::EPIPE),
        }
        if self.new_ns {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)?;
        }
        self.passed.set(true);
        Ok(())
    }
}

/// Joins/unshares namespaces that cannot be set up by clone flags.
fn stage1(a: &Args<'_>) -> Result<()> {
    let s = &a.stage1;
    for (kind, fd, path) in &s.join_first {
        namespaces::join(*kind, fd, path)?;
    }
    if let Some((fd, path)) = &s.join_user {
        namespaces::join(NsKind::User, fd, path)?;
    }
    if s.unshare_user {
        namespaces::unshare(CloneFlags::CLONE_NEWUSER)?;
        a.chan.send(&FromChild::MapIds)?;
        match a.chan.recv::<FromParent>()? {
            FromParent::IdsMapped => {}
            other => {
                return Err(Error::Sys {
                    op: format!("unexpected message {other:?}"),
                    errno: Errno::EPROTO,
                });
            }
        }
    }
    namespaces::unshare(s.unshare)?;
    if s.fork {
        // A new pid namespace only applies to children: fork the init.
        match namespaces::clone3(CloneFlags::empty(), None)? {
            // The init: its parent (us) exits at once, so no parent-death
            // signal here; a dead runtime shows as EOF on the channel.
            None => {}
            Some(pid) => {
                a.chan.send(&FromChild::InitPid(pid.as_raw()))?;
                // SAFETY: the intermediate process ends here, without
                // running the parent's destructors.
                unsafe { libc::_exit(0) }
            }
        }
    }
    Ok(())
}

fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes.
    if unsafe { libc::setdomainname(name.as_ptr() as *const libc::c_char, name.len()) } != 0 {
        return Err(Error::Sys {
            op: "setdomainname".into(),
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// A session keyring of its own, so the container cannot read the host's
/// session keys. Not fatal: some kernels and seccomp profiles refuse keyctl.
fn join_session_keyring(id: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl reads the C string we pass.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        tracing::debug!("join session keyring: {}", Errno::last());
    }
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// After fchdir, the cwd must be reachable from our root (getcwd says
/// "(unreachable)" otherwise).
fn check_cwd_inside(cwd: &Path) -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        Ok(p) => Err(Error::Cwd {
            path: cwd.to_path_buf(),
            why: format!("resolves outside the container root ({})", p.display()),
        }),
        Err(errno) => Err(Error::Cwd {
            path: cwd.to_path_buf(),
            why: format!("is outside the container root ({errno})"),
        }),
    }
}

/// Only stdio and the preserved fds survive the exec (CVE-2024-21626: no
/// host fd may leak into the container).
fn prepare_fds(preserve: i32) -> Result<()> {
    let first_closed: RawFd = 3 + preserve;
    for fd in 3..first_closed {
        crate::linux::clear_cloexec(fd).map_err(|errno| Error::Sys {
            op: format!("preserve fd {fd}"),
            errno,
        })?;
    }
    crate::linux::cloexec_from(first_closed).map_err(sys("close fds"))
}

fn accept_start(listener: &UnixListener) -> Result<std::os::unix::net::UnixStream> {
    loop {
        match listener.accept() {
            Ok((mut conn, _)) => {
                let mut buf = [0u8; 16];
                let n = conn.read(&mut buf).unwrap_or(0);
                if &buf[..n] == b"start" {
                    return Ok(conn);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Sys {
                    op: "wait for start".into(),
                    errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                });
            }
        }
    }
}

fn hook_state<'a>(a: &Args<'a>, pid: i32, status: Status) -> HookState<'a> {
    HookState {
        oci_version: &a.plan.oci_version,
        id: a.id,
        status,
        pid,
        bundle: &a.plan.bundle,
        annotations: &a.plan.annotations,
    }
}

fn hook_state_json(a: &Args<'_>, pid: i32, status: Status) -> Vec<u8> {
    serde_json::to_vec(&hook_state(a, pid, status)).unwrap_or_default()
}
