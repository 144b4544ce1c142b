//! The shim: one small supervisor per container, forked from `berth` and
//! detached from it (its own session; it survives the CLI and the terminal).
//!
//! It is the parent of the container's init (created in process through
//! [`crate::runtime`], with the init set to die with it), holds its stdio
//! (pipes, or the pty master), writes the json-file log, records the exit
//! status atomically, notices OOM kills, and applies the restart policy.
//! Clients (`attach`, `run` in the foreground, `stop`, `kill`, `wait`) reach
//! it through a unix socket in a root-only directory ([`protocol`]).

mod memory;
pub mod protocol;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::record::{Paths, Record, State, Status};
use super::restart::{self, Exit};
use super::{Engine, logs};
use crate::runtime::container::{Console, CreateOpts};
use protocol::{from_shim, to_shim};

/// What the shim tells the CLI that forked it, once, on a pipe.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    pub ok: bool,
    pub pid: i32,
    pub error: String,
}

/// How long a client may take to accept our output before it is dropped.
const CLIENT_SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// The socket path, through a directory fd so it fits sockaddr_un.
pub fn socket_path(paths: &Paths) -> PathBuf {
    paths.socket_dir().join("attach.sock")
}

struct Client {
    stream: UnixStream,
    decoder: protocol::Decoder,
    attached: bool,
    stdin: bool,
    waiting: bool,
}

struct Running {
    init: Pid,
    stdout: Option<File>,
    stderr: Option<File>,
    stdin: Option<File>,
    master: Option<File>,
    started: Instant,
}

struct Shim {
    engine: Engine,
    rec: Record,
    paths: Paths,
    state: State,
    listener: UnixListener,
    clients: Vec<Client>,
    log: logs::Writer,
    ctr: Option<Running>,
    stop_deadline: Option<Instant>,
    restart_at: Option<Instant>,
    /// Start on the first ATTACH (foreground run), not at once.
    pending_start: bool,
    /// The client's window size, for a pty made later (restarts, or a
    /// resize that came before the start).
    size: Option<(u16, u16)>,
    finished: bool,
}

/// Forks the shim for container `rec`, detached, and waits for it to say
/// it started the container (or, with `attach_first`, that it listens and
/// waits for an attach to start it). Must be called from a single-threaded
/// process.
pub fn spawn(engine: &Engine, rec: &Record, attach_first: bool) -> super::Result<Ready> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| shim_err(rec, format!("pipe: {e}")))?;
    // SAFETY: the caller is single-threaded (the berth CLI), so the child
    // may run arbitrary code.
    match unsafe { nix::unistd::fork() }.map_err(|e| shim_err(rec, format!("fork: {e}")))? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            // The CLI dies of a closed stdout (`berth ps | head`); the shim
            // must live through its clients hanging up.
            // SAFETY: setting a disposition, no handler.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
            // A new session: no controlling terminal, no signals from the
            // CLI's terminal. Then fork again so the shim is not a session
            // leader and is re-parented away from the CLI.
            let _ = nix::unistd::setsid();
            // SAFETY: single-threaded child of a single-threaded process.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => {
                    let code = run_detached(engine.clone(), rec.clone(), attach_first, w);
                    // SAFETY: leave without the CLI's destructors or atexit.
                    unsafe { libc::_exit(code) }
                }
                // SAFETY: as above.
                _ => unsafe { libc::_exit(0) },
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let _ = waitpid(child, None);
            let mut text = String::new();
            let _ = File::from(r).read_to_string(&mut text);
            serde_json::from_str(&text).map_err(|_| {
                shim_err(
                    rec,
                    "the shim exited before it started the container".into(),
                )
            })
        }
    }
}

fn shim_err(rec: &Record, msg: String) -> super::Error {
    super::Error::Shim {
        name: rec.name.clone(),
        msg,
    }
}

/// The shim process: stdio on /dev/null, every inherited fd but the ready
/// pipe closed (the CLI's locks among them).
fn run_detached(engine: Engine, rec: Record, attach_first: bool, ready: OwnedFd) -> i32 {
    const READY_FD: RawFd = 3;
    if ready.as_raw_fd() != READY_FD {
        // SAFETY: dup2 onto a fixed number; the original is closed below.
        if unsafe { libc::dup2(ready.as_raw_fd(), READY_FD) } < 0 {
            return 1;
        }
    }
    std::mem::forget(ready);
    // SAFETY: closes every fd above the ready pipe; nothing else owns them
    // in this fresh process.
    unsafe { libc::close_range(4, libc::c_uint::MAX, 0) };
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto stdio.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    // SAFETY: fd 3 is the ready pipe we placed there.
    let ready = unsafe { File::from_raw_fd(READY_FD) };
    let _ = nix::fcntl::fcntl(
        READY_FD,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    match Shim::new(engine, rec, attach_first, ready) {
        Ok(mut shim) => {
            memory::release_startup_memory();
            let code = shim.run();
            // Exit with every client connection still open: a client that
            // waits for our hang-up then knows we are gone, not just closing.
            // SAFETY: the process ends here; nothing needs dropping.
            unsafe { libc::_exit(code) }
        }
        Err((mut ready, msg)) => {
            let _ = ready.write_all(
                serde_json::to_string(&Ready {
                    ok: false,
                    pid: 0,
                    error: msg,
                })
                .unwrap_or_default()
                .as_bytes(),
            );
            1
        }
    }
}

impl Shim {
    fn new(
        engine: Engine,
        rec: Record,
        attach_first: bool,
        mut ready: File,
    ) -> Result<Shim, (File, String)> {
        let paths = engine.containers.paths(&rec.id);
        let setup = || -> Result<(UnixListener, logs::Writer), String> {
            nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("subreaper: {e}"))?;
            let dir = paths.socket_dir();
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("create {}: {e}", dir.display()))?;
            let sock = socket_path(&paths);
            let _ = std::fs::remove_file(&sock);
            let listener =
                UnixListener::bind(&sock).map_err(|e| format!("bind {}: {e}", sock.display()))?;
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            let log = logs::Writer::open(&paths.log(), rec.host_config.log_config.rotation())
                .map_err(|e| e.to_string())?;
            Ok((listener, log))
        };
        let (listener, log) = match setup() {
            Ok(v) => v,
            Err(e) => return Err((ready, e)),
        };
        crate::fault::point("shim.listening");
        let mut state = engine.containers.read_state(&rec.id);
        state.shim_pid = std::process::id() as i32;
        state.shim_start = crate::runtime::state::proc_stat(state.shim_pid)
            .map(|(_, s)| s)
            .unwrap_or(0);
        state.stopped_by_user = false;
        state.error.clear();
        let mut shim = Shim {
            engine,
            rec,
            paths,
            state,
            listener,
            clients: Vec::new(),
            log,
            ctr: None,
            stop_deadline: None,
            restart_at: None,
            pending_start: attach_first,
            size: None,
            finished: false,
        };
        if attach_first {
            let _ = ready.write_all(
                serde_json::to_string(&Ready {
                    ok: true,
                    pid: 0,
                    error: String::new(),
                })
                .unwrap_or_default()
                .as_bytes(),
            );
            return Ok(shim);
        }
        match shim.start_container() {
            Ok(pid) => {
                let _ = ready.write_all(
                    serde_json::to_string(&Ready {
                        ok: true,
                        pid,
                        error: String::new(),
                    })
                    .unwrap_or_default()
                    .as_bytes(),
                );
                Ok(shim)
            }
            Err(e) => {
                shim.fail_start(&e);
                Err((ready, e))
            }
        }
    }

    fn save_state(&self) {
        if let Err(e) = self
            .engine
            .containers
            .write_state(&self.rec.id, &self.state)
        {
            tracing::warn!("save state of {}: {e}", self.rec.name);
        }
    }

    /// A start that failed: the container is exited with the error, and
    /// nothing of it stays mounted.
    fn fail_start(&mut self, msg: &str) {
        let _ = self.engine.runtime().delete(&self.rec.id, true);
        self.detach_network();
        let _ = crate::overlay::unmount(&self.paths.rootfs());
        self.state.status = Status::Exited;
        self.state.exit_code =
            if msg.contains("executable file not found") || msg.contains("no such file") {
                127
            } else {
                126
            };
        self.state.error = msg.to_string();
        self.state.finished_at = Some(crate::runtime::state::now_rfc3339());
        self.state.pid = 0;
        self.save_state();
        let _ = std::fs::remove_file(socket_path(&self.paths));
    }

    /// Creates and starts the container with our pipes as its stdio.
    fn start_container(&mut self) -> Result<i32, String> {
        let rt = self.engine.runtime();
        // A leftover from a previous run under this id (a crash) goes first.
        let _ = rt.delete(&self.rec.id, true);
        let tty = self.rec.config.tty;
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| e.to_string())?;
        let pipe =
            || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
        let (mut stdout, mut stderr, mut stdin, mut console, mut console_ours) =
            (None, None, None, Console::None, None);
        let mut child_fds: Vec<OwnedFd> = Vec::new();
        let stdio: [RawFd; 3];
        if tty {
            let (a, b) = UnixStream::pair().map_err(|e| e.to_string())?;
            console = Console::Fd(b.into());
            console_ours = Some(OwnedFd::from(a));
            stdio = [null.as_raw_fd(); 3];
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            stdout = Some(File::from(out_r));
            stderr = Some(File::from(err_r));
            let in_fd = if self.rec.config.open_stdin {
                let (in_r, in_w) = pipe()?;
                stdin = Some(File::from(in_w));
                let raw = in_r.as_raw_fd();
                child_fds.push(in_r);
                raw
            } else {
                null.as_raw_fd()
            };
            stdio = [in_fd, out_w.as_raw_fd(), err_w.as_raw_fd()];
            child_fds.push(out_w);
            child_fds.push(err_w);
        }
        // The runtime hands our own stdio to the container: point 0-2 at
        // the pipes for the create, then back at /dev/null.
        for (target, fd) in stdio.iter().enumerate() {
            // SAFETY: dup2 onto our stdio numbers.
            unsafe { libc::dup2(*fd, target as RawFd) };
        }
        let created = rt.create(CreateOpts {
            id: self.rec.id.clone(),
            bundle: self.paths.bundle(),
            pid_file: None,
            console,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            die_with_parent: true,
        });
        for target in 0..3 {
            // SAFETY: as above.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
        drop(child_fds);
        let created = created.map_err(|e| crate::logging::error_chain(&e))?;
        crate::fault::point("shim.runtime-created");
        let master = match console_ours {
            Some(sock) => Some(File::from(
                crate::runtime::console::recv_fd(&sock).map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        if let (Some(m), Some((rows, cols))) = (&master, self.size) {
            let _ = crate::runtime::console::set_size(m.as_raw_fd(), rows, cols);
        }
        rt.start(&self.rec.id)
            .map_err(|e| crate::logging::error_chain(&e))?;
        for f in [&stdout, &stderr, &master].into_iter().flatten() {
            let _ = nix::fcntl::fcntl(
                f.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
        }
        self.ctr = Some(Running {
            init: Pid::from_raw(created.pid),
            stdout,
            stderr,
            stdin,
            master,
            started: Instant::now(),
        });
        self.state.status = Status::Running;
        self.state.pid = created.pid;
        self.state.exit_code = 0;
        self.state.oom_killed = false;
        self.state.started_at = Some(crate::runtime::state::now_rfc3339());
        self.save_state();
        crate::fault::point("shim.running");
        Ok(created.pid)
    }

    fn run(&mut self) -> i32 {
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGPIPE,
        ] {
            mask.add(s);
        }
        if nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).is_err() {
            return 1;
        }
        let mut only_chld = SigSet::empty();
        only_chld.add(Signal::SIGCHLD);
        let Ok(sigfd) =
            SignalFd::with_flags(&only_chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        else {
            return 1;
        };
        // An exit may have happened before the signalfd existed.
        self.reap();
        while !self.finished {
            self.poll_once(&sigfd);
        }
        let _ = std::fs::remove_file(socket_path(&self.paths));
        let _ = std::fs::remove_dir(self.paths.socket_dir());
        0
    }

    fn poll_once(&mut self, sigfd: &SignalFd) {
        let now = Instant::now();
        let next = [self.stop_deadline, self.restart_at]
            .into_iter()
            .flatten()
            .min();
        let timeout = match next {
            Some(t) => PollTimeout::try_from(
                t.saturating_duration_since(now).as_millis().min(60_000) as i32,
            )
            .unwrap_or(PollTimeout::ZERO),
            None => PollTimeout::NONE,
        };
        // Poll set: signals, new clients, each client, the container's output.
        let out_fds: Vec<(u8, RawFd)> = match &self.ctr {
            Some(c) => [(1u8, &c.stdout), (2, &c.stderr), (3, &c.master)]
                .into_iter()
                .filter_map(|(k, f)| f.as_ref().map(|f| (k, f.as_raw_fd())))
                .collect(),
            None => Vec::new(),
        };
        let client_fds: Vec<RawFd> = self.clients.iter().map(|c| c.stream.as_raw_fd()).collect();
        let mut fds: Vec<PollFd> = Vec::with_capacity(2 + out_fds.len() + client_fds.len());
        // SAFETY (for the borrows below): every fd outlives this poll call.
        let b = |fd: RawFd| unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        for fd in &client_fds {
            fds.push(PollFd::new(b(*fd), PollFlags::POLLIN));
        }
        for (_, fd) in &out_fds {
            fds.push(PollFd::new(b(*fd), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);

        // Output first, so it is logged before an exit is handled.
        for (i, (kind, _)) in out_fds.iter().enumerate() {
            if ready[2 + client_fds.len() + i] {
                self.read_output(*kind);
            }
        }
        if ready[0] {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            self.reap();
        }
        if ready[1] {
            self.accept_clients();
        }
        for (i, fd) in client_fds.iter().enumerate() {
            if ready[2 + i] {
                self.read_client(*fd);
            }
        }
        let now = Instant::now();
        if self.stop_deadline.is_some_and(|d| now >= d) {
            self.stop_deadline = None;
            let _ = self
                .engine
                .runtime()
                .kill(&self.rec.id, Signal::SIGKILL, true);
        }
        if self.restart_at.is_some_and(|t| now >= t) {
            self.restart_at = None;
            if let Err(e) = self.start_container() {
                self.fail_start(&e);
                self.broadcast_exit();
                self.finished = true;
            }
        }
    }

    /// Reads what one stream has: logs it and sends it to attached
    /// clients. True if bytes were read.
    fn read_output(&mut self, kind: u8) -> bool {
        let Some(c) = self.ctr.as_mut() else {
            return false;
        };
        let file = match kind {
            1 => &mut c.stdout,
            2 => &mut c.stderr,
            _ => &mut c.master,
        };
        let Some(f) = file.as_mut() else { return false };
        let mut buf = [0u8; 32 * 1024];
        match f.read(&mut buf) {
            Ok(0) => {
                *file = None;
                false
            }
            Ok(n) => {
                let (stream, frame) = if kind == 2 {
                    ("stderr", from_shim::STDERR)
                } else {
                    ("stdout", from_shim::STDOUT)
                };
                if let Err(e) = self.log.write(stream, &buf[..n]) {
                    tracing::warn!("{e}");
                }
                self.send_attached(frame, &buf[..n]);
                true
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::Interrupted =>
            {
                false
            }
            // EIO: the pty's last holder closed it.
            Err(_) => {
                *file = None;
                false
            }
        }
    }

    /// After the init exited: what is still buffered in the pipes.
    fn drain_output(&mut self) {
        for kind in [1u8, 2, 3] {
            for _ in 0..4096 {
                if !self.read_output(kind) {
                    break;
                }
            }
        }
        let _ = self.log.flush();
    }

    fn reap(&mut self) {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.child_exited(pid, code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => self.child_exited(pid, 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    fn child_exited(&mut self, pid: Pid, code: i32) {
        let Some(c) = &self.ctr else { return };
        if c.init != pid {
            return;
        }
        let ran = c.started.elapsed();
        self.drain_output();
        crate::fault::point("shim.init-exited");
        self.state.oom_killed = self.oom_killed();
        let _ = self.engine.runtime().delete(&self.rec.id, true);
        self.ctr = None;
        self.stop_deadline = None;
        self.state.exit_code = code;
        self.state.pid = 0;
        self.state.finished_at = Some(crate::runtime::state::now_rfc3339());
        let exit = Exit {
            code,
            ran,
            stopped_by_user: self.state.stopped_by_user,
        };
        if let Some(delay) = restart::next_delay(
            self.rec.host_config.restart_policy,
            exit,
            &mut self.state.restart,
        ) {
            self.state.status = Status::Restarting;
            self.restart_at = Some(Instant::now() + delay);
            self.save_state();
            return;
        }
        self.finish();
    }

    /// The container has exited for good.
    fn finish(&mut self) {
        self.state.status = Status::Exited;
        self.detach_network();
        self.save_state();
        crate::fault::point("shim.exit-saved");
        if let Err(e) = crate::overlay::unmount(&self.paths.rootfs()) {
            tracing::warn!("{e}");
        }
        if self.rec.host_config.auto_remove {
            // Under the container's lock, as every command removes; a
            // command that holds it waits for us to be gone, not the lock.
            match self.engine.containers.lock(&self.rec.id) {
                Ok(_lock) => {
                    if let Err(e) = self.engine.remove_files(&self.rec, true) {
                        tracing::warn!("remove {}: {e}", self.rec.name);
                    }
                }
                Err(e) => tracing::warn!("remove {}: {e}", self.rec.name),
            }
        }
        self.broadcast_exit();
        self.finished = true;
    }

    /// The container's network goes with it (a restart keeps it: the
    /// namespace is bound, so it outlives the container's processes).
    /// A failure is kept in the state's error (the shim has no stderr).
    fn detach_network(&mut self) {
        if let Err(e) = self.engine.networks().detach(&self.rec.id) {
            tracing::warn!("take {} off its network: {e}", self.rec.name);
            self.state.error = format!("take the container off its network: {e}");
        }
    }

    fn broadcast_exit(&mut self) {
        let payload = serde_json::to_vec(&protocol::ExitStatus {
            code: self.state.exit_code,
        })
        .unwrap_or_default();
        let frame = protocol::encode(from_shim::EXIT, &payload);
        for c in self.clients.iter_mut().filter(|c| c.attached || c.waiting) {
            let _ = c.stream.write_all(&frame);
        }
    }

    /// Whether the kernel OOM-killed something in the container's cgroup.
    fn oom_killed(&self) -> bool {
        let Ok(rec) = self.engine.runtime().root.read(&self.rec.id) else {
            return false;
        };
        let Some(cg) = rec.cgroup else { return false };
        cg.dirs.iter().any(|d| {
            ["memory.events", "memory.oom_control"].iter().any(|f| {
                std::fs::read_to_string(d.dir.join(f))
                    .map(|t| {
                        t.lines().any(|l| {
                            l.strip_prefix("oom_kill ")
                                .and_then(|n| n.trim().parse::<u64>().ok())
                                .unwrap_or(0)
                                > 0
                        })
                    })
                    .unwrap_or(false)
            })
        })
    }

    fn accept_clients(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(CLIENT_SEND_TIMEOUT));
            self.clients.push(Client {
                stream,
                decoder: Default::default(),
                attached: false,
                stdin: false,
                waiting: false,
            });
        }
    }

    fn read_client(&mut self, fd: RawFd) {
        let Some(idx) = self.clients.iter().position(|c| c.stream.as_raw_fd() == fd) else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        let n = nix::sys::socket::recv(fd, &mut buf, nix::sys::socket::MsgFlags::MSG_DONTWAIT);
        match n {
            Ok(0) | Err(Errno::ECONNRESET) => {
                self.clients.remove(idx);
                return;
            }
            Ok(n) => self.clients[idx].decoder.push(&buf[..n]),
            Err(_) => return,
        }
        loop {
            let frame = match self.clients[idx].decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    self.clients.remove(idx);
                    return;
                }
            };
            self.handle_frame(idx, frame.0, &frame.1);
            if idx >= self.clients.len() {
                return;
            }
        }
    }

    fn reply(&mut self, idx: usize, kind: u8, payload: &[u8]) {
        if let Some(c) = self.clients.get_mut(idx) {
            let _ = protocol::write_frame(&mut c.stream, kind, payload);
        }
    }

    fn handle_frame(&mut self, idx: usize, kind: u8, payload: &[u8]) {
        match kind {
            to_shim::ATTACH => {
                let a: protocol::Attach = serde_json::from_slice(payload).unwrap_or_default();
                self.clients[idx].attached = true;
                self.clients[idx].stdin = a.stdin;
                if self.pending_start {
                    self.pending_start = false;
                    match self.start_container() {
                        Ok(pid) => self.reply(
                            idx,
                            from_shim::STARTED,
                            &serde_json::to_vec(&protocol::Started { pid }).unwrap_or_default(),
                        ),
                        Err(e) => {
                            self.fail_start(&e);
                            self.reply(idx, from_shim::ERROR, e.as_bytes());
                            self.finished = true;
                        }
                    }
                } else if self.state.status == Status::Exited {
                    self.broadcast_exit();
                }
            }
            to_shim::STDIN => {
                if !self.clients[idx].stdin {
                    return;
                }
                if let Some(c) = self.ctr.as_mut() {
                    let target = c.master.as_mut().or(c.stdin.as_mut());
                    if let Some(f) = target {
                        let _ = f.write_all(payload);
                    }
                }
            }
            to_shim::STDIN_CLOSE => {
                // The pipe's end is EOF for the program. A terminal has no
                // such thing: its input just stops, as with docker.
                if let Some(c) = self.ctr.as_mut() {
                    c.stdin = None;
                }
            }
            to_shim::RESIZE => {
                if let Ok(r) = serde_json::from_slice::<protocol::Resize>(payload) {
                    self.size = Some((r.rows, r.cols));
                    if let Some(m) = self.ctr.as_ref().and_then(|c| c.master.as_ref()) {
                        let _ = crate::runtime::console::set_size(m.as_raw_fd(), r.rows, r.cols);
                    }
                }
            }
            to_shim::STOP => {
                let timeout = serde_json::from_slice::<protocol::Stop>(payload)
                    .map(|s| s.timeout_secs)
                    .unwrap_or(10);
                self.clients[idx].waiting = true;
                self.stop(timeout);
            }
            to_shim::KILL => {
                let sig = serde_json::from_slice::<protocol::Kill>(payload)
                    .map(|k| k.signal)
                    .unwrap_or(9);
                let Ok(sig) = Signal::try_from(sig) else {
                    self.reply(idx, from_shim::ERROR, b"invalid signal");
                    return;
                };
                if self.ctr.is_none() {
                    self.reply(idx, from_shim::ERROR, b"the container is not running");
                    return;
                }
                // Killing by hand is a manual stop, as with docker.
                self.state.stopped_by_user = true;
                self.save_state();
                match self.engine.runtime().kill(&self.rec.id, sig, false) {
                    Ok(()) => self.reply(idx, from_shim::OK, b""),
                    Err(e) => self.reply(idx, from_shim::ERROR, e.to_string().as_bytes()),
                }
            }
            to_shim::WAIT => self.clients[idx].waiting = true,
            _ => {}
        }
    }

    /// The stop signal now, SIGKILL after `timeout` seconds; a pending
    /// restart is cancelled.
    fn stop(&mut self, timeout: u64) {
        self.state.stopped_by_user = true;
        self.save_state();
        if self.ctr.is_none() {
            self.restart_at = None;
            self.finish();
            return;
        }
        let sig = parse_signal(&self.rec.config.stop_signal).unwrap_or(Signal::SIGTERM);
        let rt = self.engine.runtime();
        if timeout == 0 || rt.kill(&self.rec.id, sig, false).is_err() {
            let _ = rt.kill(&self.rec.id, Signal::SIGKILL, true);
        } else {
            self.stop_deadline = Some(Instant::now() + Duration::from_secs(timeout));
        }
        crate::fault::point("shim.stopping");
    }

    fn send_attached(&mut self, kind: u8, data: &[u8]) {
        let frame = protocol::encode(kind, data);
        self.clients
            .retain_mut(|c| !c.attached || c.stream.write_all(&frame).is_ok());
    }
}

/// `SIGTERM`, `TERM` or `15`.
pub fn parse_signal(s: &str) -> Option<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse().ok()
}
