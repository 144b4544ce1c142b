//! The container lifecycle as the runtime's commands drive it: create, start,
//! state, kill, delete, run, list. This is the parent side; the child side is
//! [`super::init`].

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::hooks;
use super::init::{self, Stage1};
use super::namespaces;
use super::plan::{self, NsKind, Plan};
use super::state::{self, ContainerDir, OciState, Record, StateRoot, Status};
use super::sync::{self, FromChild, FromParent};
use crate::cgroups::{self, Cgroup, Hierarchies};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Plan(#[from] plan::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    #[error(transparent)]
    Ns(#[from] namespaces::Error),
    #[error(transparent)]
    Sync(#[from] sync::Error),
    #[error(transparent)]
    Hook(#[from] hooks::Error),
    #[error(transparent)]
    Console(#[from] super::console::Error),
    #[error(transparent)]
    Seccomp(#[from] super::seccomp::Error),
    #[error(transparent)]
    Lsm(#[from] super::lsm::Error),
    #[error("{0}")]
    Init(String),
    #[error("container \"{id}\" is {status}: {what}")]
    WrongState {
        id: String,
        status: Status,
        what: &'static str,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op}: {errno}")]
    Sys { op: String, errno: Errno },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;

fn sys(op: &str) -> impl FnOnce(Errno) -> Error + '_ {
    move |errno| Error::Sys {
        op: op.to_string(),
        errno,
    }
}

/// Where the container's terminal goes, if it has one.
pub enum Console {
    /// No terminal: the init inherits our stdio.
    None,
    /// `--console-socket PATH`: the pty master is sent there.
    Socket(PathBuf),
    /// A connected socket of ours (for `run` in the foreground).
    Fd(OwnedFd),
}

pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console: Console,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// Kill the container when the process that created it dies (the
    /// engine's shim uses this; runc's `create` must not: it exits).
    pub die_with_parent: bool,
}

pub struct Runtime {
    pub root: StateRoot,
    /// Tolerate a cgroup we may not create, as runc's `--rootless`: the
    /// container runs without one unless its config sets limits. On by
    /// default when we are not root.
    pub rootless: bool,
}

/// Undoes a half-made container if create fails at any point.
struct CreateGuard {
    dir: Option<ContainerDir>,
    cgroup: Option<Cgroup>,
    child: Option<Pid>,
    init: Option<Pid>,
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        for pid in [self.init, self.child].into_iter().flatten() {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        }
        if let Some(pid) = self.child {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.signal_all(Signal::SIGKILL);
            if let Err(e) = cg.remove() {
                tracing::warn!("cleanup after failed create: {e}");
            }
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.remove()
        {
            tracing::warn!("cleanup after failed create: {e}");
        }
    }
}

impl CreateGuard {
    fn commit(mut self) {
        self.dir = None;
        self.cgroup = None;
        self.child = None;
        self.init = None;
    }
}

/// Makes `p` absolute without resolving symlinks (runc keeps the bundle
/// path as given, made absolute).
fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|source| Error::Io {
        op: "resolve",
        path: p.to_path_buf(),
        source,
    })
}

/// Binds the exec socket in the container's directory. The path goes
/// through /proc/self/fd so a long state root still fits in sockaddr_un.
fn exec_socket_path(dir_fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/exec.sock", dir_fd.as_raw_fd()))
}

impl Runtime {
    pub fn new(root: &Path) -> Runtime {
        Runtime {
            root: StateRoot::new(root),
            rootless: !nix::unistd::geteuid().is_root(),
        }
    }

    /// Compiled seccomp programs, beside the containers' directories (a
    /// name no container id can have).
    pub fn seccomp_cache(&self) -> super::seccomp::Cache {
        super::seccomp::Cache::new(self.root.path.join(".seccomp-cache"))
    }

    /// Creates the container: namespaces, cgroup, filesystem, process
    /// waiting for `start`. Returns its record.
    pub fn create(&self, mut opts: CreateOpts) -> Result<Record> {
        state::validate_id(&opts.id)?;
        let bundle = absolute(&opts.bundle)?;
        let spec = plan::load_spec(&bundle)?;
        let plan = Plan::from_spec(&spec, &bundle)?;
        let Some(process) = plan.process.as_ref() else {
            return Err(Error::Usage(
                "config.json has no process: create needs one to start".into(),
            ));
        };
        match (&opts.console, process.terminal) {
            (Console::None, true) => {
                return Err(Error::Usage(
                    "process.terminal is true: pass --console-socket (or set terminal to false)"
                        .into(),
                ));
            }
            (Console::Socket(_), false) => {
                return Err(Error::Usage(
                    "--console-socket was given but process.terminal is false".into(),
                ));
            }
            _ => {}
        }
        if !plan.rootfs.is_dir() {
            return Err(Error::Usage(format!(
                "root.path {} is not a directory",
                plan.rootfs.display()
            )));
        }
        super::lsm::check(process, &super::lsm::active())?;
        let euid = nix::unistd::geteuid().as_raw();
        if euid != 0 && !plan.namespaces.has(NsKind::User) {
            return Err(Error::Usage(format!(
                "running as uid {euid} (rootless), the config needs a user namespace mapping your uid (linux.namespaces, uidMappings, gidMappings; see `berth-runtime spec --rootless`)"
            )));
        }
        let id_mapper = if plan.namespaces.creates(NsKind::User) {
            Some(namespaces::choose_id_mapper(
                euid,
                nix::unistd::getegid().as_raw(),
                &plan.uid_mappings,
                &plan.gid_mappings,
                (
                    namespaces::find_helper("newuidmap"),
                    namespaces::find_helper("newgidmap"),
                ),
            )?)
        } else {
            None
        };
        // Compiled (and the listener connected) before anything exists, so
        // a bad profile leaves nothing behind.
        let seccomp = plan
            .seccomp
            .as_ref()
            .map(|p| super::seccomp::Setup::prepare(p, &self.seccomp_cache()))
            .transpose()?;

        let dir = self.root.create(&opts.id)?;
        let mut guard = CreateGuard {
            dir: None,
            cgroup: None,
            child: None,
            init: None,
        };
        let mut record = Record {
            oci_version: plan.oci_version.clone(),
            id: opts.id.clone(),
            pid: 0,
            pid_start: 0,
            status: Status::Creating,
            bundle: bundle.clone(),
            rootfs: plan.rootfs.clone(),
            created: state::now_rfc3339(),
            owner: String::new(),
            annotations: plan.annotations.clone(),
            cgroup: None,
            hooks: plan.hooks.clone(),
            own_pid_ns: plan.namespaces.has(NsKind::Pid),
        };
        let dir_fd = dir.open_fd()?;
        let dir_path = dir.path.clone();
        dir.write(&record)?;
        let saved = dir_path.join(super::exec::SAVED_CONFIG);
        let config = serde_json::to_vec(&spec)
            .map_err(|e| Error::Usage(format!("serialize the config: {e}")))?;
        std::fs::write(&saved, config).map_err(|source| Error::Io {
            op: "write",
            path: saved,
            source,
        })?;
        guard.dir = Some(dir);

        let hierarchies = Hierarchies::detect()?;
        // Recorded before it is made and again after (with the parents it
        // made): a create killed in between leaves a cgroup `delete` finds.
        if let (Ok(planned), Some(d)) = (
            Cgroup::plan(&hierarchies, plan.cgroups_path.as_deref(), &opts.id),
            &guard.dir,
        ) {
            record.cgroup = Some(planned);
            d.write(&record)?;
        }
        let cg = self.make_cgroup(&hierarchies, &plan, &opts.id)?;
        guard.cgroup = cg.clone();
        record.cgroup = cg.clone();
        if let Some(d) = &guard.dir {
            d.write(&record)?;
        }
        crate::fault::point("runtime.cgroup-made");
        let cg_ref = cg.as_ref();

        let listener =
            UnixListener::bind(exec_socket_path(&dir_fd)).map_err(|source| Error::Io {
                op: "bind exec socket in",
                path: dir_path.clone(),
                source,
            })?;
        let console_socket = match std::mem::replace(&mut opts.console, Console::None) {
            Console::None => None,
            Console::Socket(p) => Some(super::console::connect(&p)?),
            Console::Fd(fd) => Some(fd),
        };

        let (extra_env, listen_fds) = listen_fds_env();
        let preserve_fds = opts.preserve_fds + listen_fds;

        let ns = &plan.namespaces;
        let mut stage1 = Stage1 {
            join_first: Vec::new(),
            join_user: None,
            unshare_user: false,
            unshare: CloneFlags::empty(),
            fork: false,
            join_after: Vec::new(),
            new_cgroupns: ns.creates(NsKind::Cgroup),
        };
        // difference, not `& !`: bitflags' `!` drops the bits nix does not
        // name, CLONE_NEWTIME among them.
        let mut clone_flags = ns.new_flags().difference(CloneFlags::CLONE_NEWCGROUP);
        // Joined pid namespaces take effect for children: join in the
        // parent, which affects only the processes it forks next.
        let mut joined: Vec<(NsKind, OwnedFd, PathBuf)> = Vec::new();
        for (kind, path) in &ns.join {
            joined.push((*kind, namespaces::open_ns(*kind, path)?, path.clone()));
        }
        if let Some(pos) = joined.iter().position(|(k, _, _)| *k == NsKind::Pid) {
            let (k, fd, path) = joined.remove(pos);
            namespaces::join(k, &fd, &path)?;
        }
        if ns.creates(NsKind::Time) && !plan.time_offsets.is_empty() {
            // Offsets can only be written before a process enters the
            // namespace: unshare it for our children, write, then clone.
            namespaces::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))?;
            namespaces::write_time_offsets(&plan.time_offsets)?;
            clone_flags.remove(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME));
        }
        let slow =
            ns.joins(NsKind::User).is_some() || (ns.creates(NsKind::User) && !joined.is_empty());
        if slow {
            // Joins need our host privileges, so they come before the user
            // namespace; what is new is made after it, by the child.
            let user_pos = joined.iter().position(|(k, _, _)| *k == NsKind::User);
            if let Some(pos) = user_pos {
                let (_, fd, path) = joined.remove(pos);
                stage1.join_user = Some((fd, path));
            }
            stage1.join_first = joined;
            stage1.unshare_user = ns.creates(NsKind::User);
            stage1.unshare = clone_flags.difference(CloneFlags::CLONE_NEWUSER);
            // A joined pid namespace was entered by our clone already (the
            // parent joined it for its children); new ones need a fork.
            stage1.fork = clone_flags.intersects(
                CloneFlags::CLONE_NEWPID | CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
            );
            clone_flags = CloneFlags::empty();
            // The forked init must stay our child for `run` to wait on it.
            nix::sys::prctl::set_child_subreaper(true).map_err(sys("set child subreaper"))?;
        } else {
            stage1.join_after = joined;
        }

        let forks = stage1.fork;
        let v2_fd = match cg_ref {
            Some(cg) if !slow => cg.v2_dir_fd()?,
            _ => None,
        };
        let (parent_chan, child_chan) = sync::pair()?;
        let parent_pid = nix::unistd::getpid().as_raw();
        // A privileged init moves itself into the v1 hierarchies: without
        // the RCU grace period (~10 ms) our cgroup.procs writes would wait.
        let join_cgroup =
            (cg_ref.is_some() && !slow && !ns.has(NsKind::User)).then_some(v2_fd.is_some());

        let child = match namespaces::clone3(clone_flags, v2_fd.as_ref().map(|f| f.as_fd()))? {
            None => init::main(init::Args {
                id: &opts.id,
                plan: &plan,
                process,
                chan: child_chan,
                exec_listener: listener,
                console_socket,
                hierarchies: Some(&hierarchies),
                cgroup: cg_ref,
                join_cgroup,
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds,
                die_with_parent: opts.die_with_parent,
                extra_env,
                stage1,
                parent_pid,
                seccomp: seccomp.as_ref(),
            }),
            Some(pid) => pid,
        };
        drop(child_chan);
        drop(listener);
        drop(console_socket);
        drop(stage1);
        drop(seccomp);
        guard.child = Some(child);
        let result = self.finish_create(
            &opts,
            &plan,
            &mut record,
            cg_ref,
            id_mapper.as_ref(),
            &parent_chan,
            child,
            slow,
            forks,
            v2_fd.is_some(),
            join_cgroup.is_some(),
            &mut guard,
        );
        match result {
            // The init hung up: it says why in its last message.
            Err(Error::Sync(e)) => match parent_chan.try_recv::<FromChild>() {
                Some(FromChild::Error(msg)) => Err(Error::Init(msg)),
                // No last words: say how it died.
                _ => match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => {
                        guard.child = None;
                        Err(Error::Init(format!(
                            "the container's init was killed by {sig} while being set up"
                        )))
                    }
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => {
                        guard.child = None;
                        Err(Error::Init(format!(
                            "the container's init exited with status {code} while being set up"
                        )))
                    }
                    _ => Err(Error::Sync(e)),
                },
            },
            Err(e) => Err(e),
            Ok(()) => {
                guard.commit();
                Ok(record)
            }
        }
    }

    /// The container's cgroup, created, with the config's limits. Rootless,
    /// a cgroup we may not create is skipped, as runc does, unless the
    /// config sets limits that need it (device rules are moot: a rootless
    /// container cannot make device nodes).
    fn make_cgroup(&self, hier: &Hierarchies, plan: &Plan, id: &str) -> Result<Option<Cgroup>> {
        let mut cg = Cgroup::plan(hier, plan.cgroups_path.as_deref(), id)?;
        match cg.create() {
            Ok(()) => {}
            Err(e) if self.rootless && cgroup_permission_error(&e) => {
                // Whatever part was made goes again.
                let _ = cg.remove();
                if let Some(what) = limits_needing_a_cgroup(plan.resources.as_ref()) {
                    return Err(Error::Usage(format!(
                        "rootless: linux.resources sets {what}, which needs a cgroup we may write ({e})"
                    )));
                }
                tracing::debug!("rootless: running without a cgroup: {e}");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(res) = &plan.resources
            && let Err(e) = cg.apply(res)
        {
            let _ = cg.remove();
            return Err(e.into());
        }
        Ok(Some(cg))
    }

    /// The parent's half of the create protocol, after clone.
    #[allow(clippy::too_many_arguments)]
    fn finish_create(
        &self,
        opts: &CreateOpts,
        plan: &Plan,
        record: &mut Record,
        cg: Option<&Cgroup>,
        id_mapper: Option<&namespaces::IdMapper>,
        parent_chan: &sync::Channel,
        child: Pid,
        slow: bool,
        forks: bool,
        cloned_into_v2: bool,
        init_joins_cgroup: bool,
        guard: &mut CreateGuard,
    ) -> Result<()> {
        let Some(process) = plan.process.as_ref() else {
            return Ok(());
        };

        // Stage 1 traffic (slow path), then ids, cgroups, oom score.
        let mut init_pid = child;
        if slow {
            if let Some(mapper) = id_mapper {
                expect(parent_chan, FromChild::MapIds)?;
                namespaces::write_id_maps(child, &plan.uid_mappings, &plan.gid_mappings, mapper)?;
                parent_chan.send(&FromParent::IdsMapped)?;
            }
            if forks {
                match parent_chan.recv::<FromChild>()? {
                    FromChild::InitPid(p) => init_pid = Pid::from_raw(p),
                    FromChild::Error(e) => return Err(Error::Init(e)),
                    other => {
                        return Err(Error::Init(format!(
                            "unexpected message from init: {other:?}"
                        )));
                    }
                }
                guard.init = Some(init_pid);
                let _ = nix::sys::wait::waitpid(child, None);
                guard.child = None;
            }
        } else if let Some(mapper) = id_mapper {
            namespaces::write_id_maps(child, &plan.uid_mappings, &plan.gid_mappings, mapper)?;
        }
        // Unless the init moved itself (join_cgroup), it mounts its
        // filesystems while our cgroup.procs writes wait out the kernel's
        // RCU grace period (~10 ms on v1 after idle); it waits for
        // CgroupsJoined before anything that needs them.
        parent_chan.send(&FromParent::Continue)?;
        if let Some(cg) = cg
            && !init_joins_cgroup
        {
            cg.add_task(init_pid, cloned_into_v2)?;
        }
        if let Some(adj) = process.oom_score_adj {
            let path = PathBuf::from(format!("/proc/{init_pid}/oom_score_adj"));
            std::fs::write(&path, adj.to_string()).map_err(|source| Error::Io {
                op: "write",
                path,
                source,
            })?;
        }
        parent_chan.send(&FromParent::CgroupsJoined)?;

        record.pid = init_pid.as_raw();
        record.pid_start = state::proc_stat(init_pid.as_raw())
            .map(|(_, s)| s)
            .unwrap_or(0);

        // Mounts done: prestart and createRuntime hooks, in our namespaces.
        match parent_chan.recv::<FromChild>()? {
            FromChild::Mounted => {}
            FromChild::Error(e) => return Err(Error::Init(e)),
            other => {
                return Err(Error::Init(format!(
                    "unexpected message from init: {other:?}"
                )));
            }
        }
        let state_json =
            serde_json::to_vec(&record.hook_state(Status::Creating)).unwrap_or_default();
        hooks::run_all("prestart", plan.hooks.prestart().as_ref(), &state_json)?;
        hooks::run_all(
            "createRuntime",
            plan.hooks.create_runtime().as_ref(),
            &state_json,
        )?;
        parent_chan.send(&FromParent::Continue)?;

        match parent_chan.recv::<FromChild>()? {
            FromChild::Created => {}
            FromChild::Error(e) => return Err(Error::Init(e)),
            other => {
                return Err(Error::Init(format!(
                    "unexpected message from init: {other:?}"
                )));
            }
        }
        record.status = Status::Created;
        let dir = guard
            .dir
            .as_ref()
            .expect("the guard holds the dir until commit");
        dir.write(record)?;
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, init_pid.as_raw())?;
        }
        Ok(())
    }

    /// Starts a created container: its init execs the program. Poststart
    /// hooks run once it has.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = self.root.open(id)?;
        let mut rec = dir.read()?;
        let status = rec.live_status();
        if status != Status::Created {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                what: "only a created container can be started",
            });
        }
        let dir_fd = dir.open_fd()?;
        let mut conn =
            UnixStream::connect(exec_socket_path(&dir_fd)).map_err(|source| Error::Io {
                op: "connect to the init of",
                path: dir.path.clone(),
                source,
            })?;
        conn.write_all(b"start").map_err(|source| Error::Io {
            op: "start",
            path: dir.path.clone(),
            source,
        })?;
        // The init closes the connection by exec'ing (close-on-exec), or
        // writes why it could not.
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply);
        if !reply.is_empty() {
            return Err(Error::Init(reply));
        }
        rec.status = Status::Running;
        dir.write(&rec)?;
        let _ = std::fs::remove_file(dir.path.join("exec.sock"));
        let state_json = serde_json::to_vec(&rec.hook_state(Status::Running)).unwrap_or_default();
        hooks::run_all_warn("poststart", rec.hooks.poststart().as_ref(), &state_json);
        Ok(())
    }

    pub fn state(&self, id: &str) -> Result<OciState> {
        Ok(self.root.read(id)?.oci_state())
    }

    pub fn list(&self) -> Result<Vec<OciState>> {
        let mut out = Vec::new();
        for id in self.root.ids()? {
            match self.root.read(&id) {
                Ok(rec) => out.push(rec.oci_state()),
                // A create in progress before its first write, or a delete
                // racing us: not a container to show.
                Err(state::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Sends `sig` to the init, or with `all` to every process of the
    /// container.
    pub fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()> {
        let rec = self.root.read(id)?;
        let status = rec.live_status();
        if all {
            // As runc: --all reaches what is left in the cgroup even after
            // init exited (containers without their own pid namespace).
            if let Some(cg) = rec
                .cgroup
                .as_ref()
                .filter(|cg| status != Status::Stopped || cg.exists())
            {
                cg.signal_all(sig)?;
                return Ok(());
            }
        }
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                what: "it is not running",
            });
        }
        signal_init(&rec, sig).map(drop)
    }

    /// Removes a stopped container (or a created one, as runc does; any
    /// container with `force`).
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let dir = match self.root.open(id) {
            Ok(d) => d,
            Err(state::Error::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let rec = match dir.read() {
            Ok(r) => r,
            // A create that died before writing anything: nothing else exists.
            Err(state::Error::NotFound(_) | state::Error::Corrupt { .. }) if force => {
                dir.remove()?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let status = rec.live_status();
        match status {
            Status::Stopped | Status::Created => {}
            _ if force => {}
            _ => {
                return Err(Error::WrongState {
                    id: id.into(),
                    status,
                    what: "stop it first, or use delete --force",
                });
            }
        }
        self.destroy(&dir, &rec)
    }

    /// create + start, then (unless `detach`) wait for the program, forward
    /// signals and the terminal, and delete the container (unless `keep`).
    /// Returns the exit status a shell would show.
    pub fn run(&self, mut opts: CreateOpts, detach: bool, keep: bool) -> Result<i32> {
        let bundle = absolute(&opts.bundle)?;
        let terminal = plan::load_spec(&bundle)?
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let mut ours = None;
        if terminal && matches!(opts.console, Console::None) {
            if detach {
                return Err(Error::Usage(
                    "process.terminal is true: a detached run needs --console-socket to hand the terminal to".into(),
                ));
            }
            let (a, b) = UnixStream::pair().map_err(|source| Error::Io {
                op: "socketpair for",
                path: bundle.clone(),
                source,
            })?;
            opts.console = Console::Fd(b.into());
            ours = Some(OwnedFd::from(a));
        }
        let id = opts.id.clone();
        // Our child's exit must reach us even if it is quick.
        let blocked = if detach {
            None
        } else {
            Some(super::foreground::block_signals().map_err(|e| Error::Usage(e.to_string()))?)
        };
        let rec = match self.create(opts) {
            Ok(r) => r,
            Err(e) => {
                if let Some(b) = &blocked {
                    super::foreground::unblock_signals(b);
                }
                return Err(e);
            }
        };
        let master = match ours {
            Some(sock) => Some(super::console::recv_fd(&sock)?),
            None => None,
        };
        // The program must see our window size from its first instruction.
        if let (Some(m), Some((rows, cols))) = (&master, super::console::get_size(0)) {
            let _ = super::console::set_size(m.as_raw_fd(), rows, cols);
        }
        if let Err(e) = self.start(&id) {
            let _ = self.delete(&id, true);
            return Err(e);
        }
        let Some(blocked) = blocked else { return Ok(0) };
        let code = super::foreground::wait(Pid::from_raw(rec.pid), &blocked, master)
            .map_err(|e| Error::Usage(e.to_string()));
        super::foreground::unblock_signals(&blocked);
        if !keep {
            self.delete(&id, true)?;
        }
        code
    }

    /// Freezes every process of the container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let dir = self.root.open(id)?;
        let rec = dir.read()?;
        let status = rec.live_status();
        if status != Status::Running {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                what: "only a running container can be paused",
            });
        }
        let cg = rec
            .cgroup
            .as_ref()
            .ok_or_else(|| Error::Usage(format!("container \"{id}\" has no cgroup")))?;
        cgroups::set_frozen(cg, true)?;
        Ok(())
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let dir = self.root.open(id)?;
        let rec = dir.read()?;
        let status = rec.live_status();
        if status != Status::Paused {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                what: "only a paused container can be resumed",
            });
        }
        let cg = rec
            .cgroup
            .as_ref()
            .ok_or_else(|| Error::Usage(format!("container \"{id}\" has no cgroup")))?;
        cgroups::set_frozen(cg, false)?;
        Ok(())
    }

    /// Host pids of the container's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let rec = self.root.read(id)?;
        match &rec.cgroup {
            Some(cg) => Ok(cg.pids()?.into_iter().map(|p| p.as_raw()).collect()),
            None => Ok(Vec::new()),
        }
    }

    fn destroy(&self, dir: &ContainerDir, rec: &Record) -> Result<()> {
        if let Some(cg) = &rec.cgroup {
            let _ = cgroups::thaw(cg);
        }
        if rec.pid > 0 {
            // Checks the init is still ours through its pidfd.
            kill_init_and_wait(rec);
        }
        if let Some(cg) = &rec.cgroup {
            // Processes outside a pid namespace of the container's own
            // outlive its init; and the init's death may still be in flight.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                cg.signal_all(Signal::SIGKILL)?;
                if cg.pids()?.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Sys {
                        op: format!("processes of {} would not die", rec.id),
                        errno: Errno::EBUSY,
                    });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            cg.remove()?;
        }
        let state_json = serde_json::to_vec(&rec.hook_state(Status::Stopped)).unwrap_or_default();
        hooks::run_all_warn("poststop", rec.hooks.poststop().as_ref(), &state_json);
        dir.remove()?;
        Ok(())
    }
}

fn cgroup_permission_error(e: &cgroups::Error) -> bool {
    match e {
        cgroups::Error::Io { err, .. } => {
            err.kind() == std::io::ErrorKind::PermissionDenied
                || matches!(err.raw_os_error(), Some(libc::EROFS | libc::EPERM))
        }
        _ => false,
    }
}

/// What in `r` only a cgroup can enforce, for the rootless error.
pub fn limits_needing_a_cgroup(r: Option<&oci_spec::runtime::LinuxResources>) -> Option<String> {
    let r = r?;
    let mut what = Vec::new();
    let set = |o: bool, name: &str, what: &mut Vec<String>| {
        if o {
            what.push(name.to_string());
        }
    };
    set(r.memory().is_some(), "memory", &mut what);
    set(r.cpu().is_some(), "cpu", &mut what);
    set(r.pids().is_some(), "pids", &mut what);
    set(r.block_io().is_some(), "blockIO", &mut what);
    set(
        r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
        "hugepageLimits",
        &mut what,
    );
    set(r.network().is_some(), "network", &mut what);
    set(
        r.rdma().as_ref().is_some_and(|h| !h.is_empty()),
        "rdma",
        &mut what,
    );
    set(
        r.unified().as_ref().is_some_and(|h| !h.is_empty()),
        "unified",
        &mut what,
    );
    (!what.is_empty()).then(|| what.join(", "))
}

fn expect(chan: &sync::Channel, want: FromChild) -> Result<()> {
    match chan.recv::<FromChild>()? {
        m if m == want => Ok(()),
        FromChild::Error(e) => Err(Error::Init(e)),
        other => Err(Error::Init(format!(
            "unexpected message from init: {other:?} (expected {want:?})"
        ))),
    }
}

/// Signals the init through a pidfd, after checking it is still the process
/// we started (pid reuse).
/// Signals the init through a pidfd, which it returns (to wait on).
fn signal_init(rec: &Record, sig: Signal) -> Result<OwnedFd> {
    let fd = crate::linux::pidfd_open(rec.pid).map_err(|errno| match errno {
        Errno::ESRCH => Error::WrongState {
            id: rec.id.clone(),
            status: Status::Stopped,
            what: "it is not running",
        },
        e => Error::Sys {
            op: format!("pidfd_open {}", rec.pid),
            errno: e,
        },
    })?;
    if !state::process_alive(rec.pid, rec.pid_start) {
        return Err(Error::WrongState {
            id: rec.id.clone(),
            status: Status::Stopped,
            what: "it is not running",
        });
    }
    crate::linux::pidfd_send_signal(fd.as_fd(), sig as i32).map_err(|errno| Error::Sys {
        op: format!("kill {}", rec.pid),
        errno,
    })?;
    Ok(fd)
}

/// SIGKILLs the init and waits (bounded) until it has exited, so that a
/// container without a cgroup to watch (rootless) is gone, not dying, when
/// delete returns.
fn kill_init_and_wait(rec: &Record) {
    let Ok(fd) = signal_init(rec, Signal::SIGKILL) else {
        return;
    };
    // A pidfd polls readable once the process has exited.
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// Writes the pid file atomically (temp + rename), as runc does, so readers
/// never see it half written.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = absolute(path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).map_err(|source| Error::Io {
        op: "write",
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| Error::Io {
        op: "rename",
        path,
        source,
    })
}

/// systemd socket activation: fds handed to us are passed on, with
/// LISTEN_FDS and LISTEN_PID=1 in the container's environment, as runc does.
fn listen_fds_env() -> (Vec<String>, i32) {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !ours || n <= 0 {
        return (Vec::new(), 0);
    }
    (
        vec![format!("LISTEN_FDS={n}"), "LISTEN_PID=1".to_string()],
        n,
    )
}
