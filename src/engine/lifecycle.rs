//! start, stop, kill, restart, pause, rm, wait, and the live status of a
//! container (what `ps` shows), recovering from dead shims.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::config::RuntimeContext;
use super::record::{Record, State, Status};
use super::shim::{self, protocol};
use super::{Engine, Error, Result, io};
use crate::inroot::Root;
use crate::overlay::{self, Overlay};

static BERTH_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

/// How a client connection to a shim ends.
pub enum Attached {
    Exited(i32),
    Detached,
}

impl Engine {
    /// The state as it really is: a running container whose shim is gone
    /// has exited (with an unknown code: no one was there to see it).
    pub fn live_state(&self, id: &str) -> State {
        let mut st = self.containers.read_state(id);
        if matches!(
            st.status,
            Status::Running | Status::Restarting | Status::Paused
        ) {
            if !crate::runtime::state::process_alive(st.shim_pid, st.shim_start) {
                st.status = Status::Exited;
                if st.pid != 0 {
                    st.exit_code = -1;
                }
                st.pid = 0;
            } else if st.status == Status::Running
                && self.containers.paths(id).paused_mark().exists()
                && let Ok(rs) = self.runtime().state(id)
                && rs.status == crate::runtime::state::Status::Paused
            {
                st.status = Status::Paused;
            }
        }
        st
    }

    fn wrong_state(&self, rec: &Record, st: &State, what: &str) -> Error {
        Error::WrongState {
            name: rec.name.clone(),
            status: st.status.to_string(),
            what: what.to_string(),
        }
    }

    /// Puts a dead shim's container to rest: runtime state, mounts, state
    /// file. Safe to call on a container that is already clean.
    fn recover(&self, rec: &Record) -> Result<State> {
        let st = self.live_state(&rec.id);
        let on_disk = self.containers.read_state(&rec.id);
        if on_disk.status != st.status {
            let _ = self.runtime().delete(&rec.id, true);
            self.remove_cgroup_parent(rec);
            // What the dead shim could not take down: veth, rules, netns.
            if let Err(e) = self.networks().detach(&rec.id) {
                tracing::warn!("reclaim the network of {}: {e}", rec.name);
            }
            overlay::unmount(&self.containers.paths(&rec.id).rootfs())?;
            let mut fixed = st.clone();
            fixed
                .finished_at
                .get_or_insert_with(crate::runtime::state::now_rfc3339);
            self.containers.write_state(&rec.id, &fixed)?;
            let _ = std::fs::remove_dir_all(self.containers.paths(&rec.id).socket_dir());
        }
        Ok(st)
    }

    /// Mounts the rootfs and writes the bundle: everything the shim needs.
    pub fn prepare(&self, rec: &Record) -> Result<()> {
        let p = self.containers.paths(&rec.id);
        self.note_cgroup_parent(rec)?;
        let rootfs = p.rootfs();
        // A leftover mount (a crash) is replaced by a fresh one.
        overlay::unmount(&rootfs)?;
        for l in &rec.layers {
            if !l.is_dir() {
                return Err(Error::Usage(format!(
                    "layer {} of image {} is missing: pull or load the image again",
                    l.display(),
                    rec.image
                )));
            }
        }
        Overlay {
            layers: rec.layers.clone(),
            upper: p.upper(),
            work: p.work(),
            target: rootfs.clone(),
            volatile: rec.host_config.auto_remove,
        }
        .mount()?;
        crate::fault::point("start.rootfs-mounted");
        match self.write_bundle(rec, &rootfs) {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Err(ne) = self.networks().detach(&rec.id) {
                    tracing::warn!("undo the network of {}: {ne}", rec.name);
                }
                let _ = overlay::unmount(&rootfs);
                Err(e)
            }
        }
    }

    fn write_bundle(&self, rec: &Record, rootfs: &Path) -> Result<()> {
        let p = self.containers.paths(&rec.id);
        let root = Root::open(rootfs).map_err(|e| Error::Usage(e.to_string()))?;
        let read = |path: &str| {
            root.open_file(Path::new(path), nix::fcntl::OFlag::O_RDONLY)
                .ok()
                .and_then(|mut f| {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut f, &mut s)
                        .ok()
                        .map(|_| s)
                })
                .unwrap_or_default()
        };
        let user =
            super::users::resolve(&rec.config.user, &read("/etc/passwd"), &read("/etc/group"))?;

        let mut ctx = RuntimeContext {
            rootfs: rootfs.to_path_buf(),
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            home: user.home,
            cgroups_path: Engine::cgroups_path(rec),
            ..Default::default()
        };
        ctx.etc_files = self.join_network(rec, &mut ctx)?;
        crate::fault::point("start.network-attached");
        self.ensure_volumes(rec)?;
        let vols = self.volumes();
        for m in &rec.host_config.mounts {
            let opts = if m.rw { vec![] } else { vec!["ro".to_string()] };
            match m.kind.as_str() {
                "bind" => ctx
                    .binds
                    .push((PathBuf::from(&m.source), m.destination.clone(), opts)),
                "volume" => ctx
                    .binds
                    .push((vols.data_dir(&m.source), m.destination.clone(), opts)),
                _ => {
                    let mut o = m.options.clone();
                    if !m.rw && !o.iter().any(|x| x == "ro") {
                        o.push("ro".into());
                    }
                    ctx.tmpfs.push((m.destination.clone(), o));
                }
            }
        }
        if rec.host_config.init {
            ctx.init_binary = Some(self.install_init()?);
        }
        ctx.default_seccomp = Some(super::seccomp_default::profile(&super::spec::capabilities(
            &rec.host_config,
        )?));
        let spec = super::spec::build(&rec.config, &rec.host_config, &ctx)?;
        let bundle = p.bundle();
        std::fs::create_dir_all(&bundle).map_err(io("create", &bundle))?;
        super::record::write_json(&bundle.join("config.json"), &spec)?;
        Ok(())
    }

    /// The container's network namespace (a new one, another container's,
    /// or the host's) and the /etc files that go with it.
    fn join_network(
        &self,
        rec: &Record,
        ctx: &mut RuntimeContext,
    ) -> Result<Vec<(PathBuf, &'static str)>> {
        use crate::network::{Join, Mode, ports};
        let mode = Mode::parse(&rec.host_config.network_mode)?;
        match mode {
            Mode::Host => {
                ctx.host_network = true;
                self.write_etc_files(rec, true)
            }
            Mode::Container(target) => {
                let tid = self.containers.resolve(&target)?;
                let trec = self.containers.read(&tid)?;
                let tst = self.live_state(&tid);
                if !matches!(tst.status, Status::Running | Status::Paused) {
                    return Err(Error::Usage(format!(
                        "cannot join the network of container {}: it is {}",
                        trec.name, tst.status
                    )));
                }
                let mut files = self.write_etc_files(rec, false)?;
                if Mode::parse(&trec.host_config.network_mode)? == Mode::Host {
                    ctx.host_network = true;
                } else {
                    let att = self.networks().attachment(&tid).ok_or_else(|| {
                        Error::Usage(format!(
                            "cannot join the network of container {}: it has no network namespace of its own",
                            trec.name
                        ))
                    })?;
                    ctx.netns_path = Some(att.netns);
                }
                // One namespace, one view of it: the target's hosts and
                // resolv.conf (its own host name stays).
                let tp = self.containers.paths(&tid);
                files.retain(|(_, dest)| *dest == "/etc/hostname");
                files.push((tp.dir.join("hosts"), "/etc/hosts"));
                files.push((tp.dir.join("resolv.conf"), "/etc/resolv.conf"));
                Ok(files)
            }
            Mode::None | Mode::Bridge(_) => {
                let files = self.write_etc_files(rec, false)?;
                let network = match &mode {
                    Mode::Bridge(n) => Some(n.as_str()),
                    _ => None,
                };
                let specs = ports::specs(
                    &rec.host_config.port_bindings,
                    rec.host_config.publish_all_ports,
                    rec.config.exposed_ports.keys().cloned(),
                )
                .map_err(crate::network::Error::from)?;
                let hosts_file = self.containers.paths(&rec.id).dir.join("hosts");
                let att = self.networks().attach(
                    network,
                    &Join {
                        id: &rec.id,
                        name: &rec.name,
                        hostname: &rec.config.hostname,
                        hosts_file: &hosts_file,
                        ports: &specs,
                    },
                )?;
                ctx.netns_path = Some(att.netns);
                Ok(files)
            }
        }
    }

    /// /etc/hostname, /etc/hosts and /etc/resolv.conf for the container.
    fn write_etc_files(
        &self,
        rec: &Record,
        host_network: bool,
    ) -> Result<Vec<(PathBuf, &'static str)>> {
        let p = self.containers.paths(&rec.id);
        let hostname = p.dir.join("hostname");
        let hosts = p.dir.join("hosts");
        let resolv = p.dir.join("resolv.conf");
        let write =
            |path: &Path, text: String| std::fs::write(path, text).map_err(io("write", path));
        if host_network {
            write(
                &hostname,
                format!(
                    "{}\n",
                    nix::unistd::gethostname()
                        .map(|h| h.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
            )?;
            write(
                &hosts,
                std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            )?;
        } else {
            write(&hostname, format!("{}\n", rec.config.hostname))?;
            write(
                &hosts,
                format!(
                    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
                    rec.config.hostname
                ),
            )?;
        }
        write(
            &resolv,
            resolv_conf(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
                host_network,
            ),
        )?;
        Ok(vec![
            (hostname, "/etc/hostname"),
            (hosts, "/etc/hosts"),
            (resolv, "/etc/resolv.conf"),
        ])
    }

    /// berth-init under the engine root, written once (and again if a new
    /// berth carries a different one).
    fn install_init(&self) -> Result<PathBuf> {
        let dir = self.root.join("bin");
        let path = dir.join("berth-init");
        if std::fs::read(&path).is_ok_and(|b| b == BERTH_INIT) {
            return Ok(path);
        }
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let tmp = dir.join(format!(".berth-init.{}", std::process::id()));
        std::fs::write(&tmp, BERTH_INIT).map_err(io("write", &tmp))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .map_err(io("chmod", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        Ok(path)
    }

    /// Starts a created or exited container under a new shim. With
    /// `attach_first` the shim waits for an attach before it starts the
    /// program (foreground `run`, `start -a`).
    pub fn start(&self, id: &str, attach_first: bool) -> Result<shim::Ready> {
        let _lock = self.containers.lock(id)?;
        let rec = self.containers.read(id)?;
        let st = self.recover(&rec)?;
        match st.status {
            Status::Created | Status::Exited | Status::Dead => {}
            _ => return Err(self.wrong_state(&rec, &st, "it is already running")),
        }
        crate::fault::point("start.recovered");
        self.prepare(&rec)?;
        crate::fault::point("start.prepared");
        let ready = shim::spawn(self, &rec, attach_first);
        let failed = match ready {
            Ok(r) if r.ok => {
                crate::fault::point("start.shim-ready");
                return Ok(r);
            }
            Ok(r) => Error::Shim {
                name: rec.name.clone(),
                msg: r.error,
            },
            Err(e) => e,
        };
        // A shim that died before it said how the start went (killed) left
        // the runtime's half: that goes too.
        let _ = self.runtime().delete(id, true);
        let _ = self.networks().detach(id);
        let _ = overlay::unmount(&self.containers.paths(id).rootfs());
        Err(failed)
    }

    /// Connects to the shim of a running container.
    pub fn connect(&self, id: &str) -> Result<UnixStream> {
        let p = self.containers.paths(id);
        let sock = shim::socket_path(&p);
        UnixStream::connect(&sock).map_err(io("connect to the shim at", &sock))
    }

    /// Stops a container: its stop signal, SIGKILL after `timeout`.
    pub fn stop(&self, id: &str, timeout: Option<u64>) -> Result<()> {
        let rec = self.containers.read(id)?;
        let st = self.live_state(id);
        if !matches!(
            st.status,
            Status::Running | Status::Restarting | Status::Paused
        ) {
            self.recover(&rec)?;
            return Ok(());
        }
        if st.status == Status::Paused {
            self.runtime().resume(id)?;
        }
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        // The shim may finish (the container exiting on its own) between
        // our look and our request: then there is nothing left to stop.
        let Ok(mut conn) = self.connect(id) else {
            self.wait_shim_gone(id);
            self.recover(&rec)?;
            return Ok(());
        };
        let stop = protocol::Stop {
            timeout_secs: timeout,
        };
        if protocol::write_json(&mut conn, protocol::to_shim::STOP, &stop).is_ok() {
            crate::fault::point("stop.requested");
            wait_exit(&mut conn)?;
        }
        self.wait_shim_gone(id);
        Ok(())
    }

    pub fn kill(&self, id: &str, sig: Signal) -> Result<()> {
        let rec = self.containers.read(id)?;
        let st = self.live_state(id);
        if st.status != Status::Running && st.status != Status::Paused {
            return Err(self.wrong_state(&rec, &st, "it is not running"));
        }
        let mut conn = self.connect(id)?;
        protocol::write_json(
            &mut conn,
            protocol::to_shim::KILL,
            &protocol::Kill { signal: sig as i32 },
        )?;
        match protocol::read_frame(&mut conn)? {
            Some((protocol::from_shim::OK, _)) => Ok(()),
            Some((protocol::from_shim::ERROR, msg)) => Err(Error::Shim {
                name: rec.name,
                msg: String::from_utf8_lossy(&msg).into(),
            }),
            _ => Err(Error::Shim {
                name: rec.name,
                msg: "no answer to kill".into(),
            }),
        }
    }

    /// Blocks until the container has exited for good; its exit code.
    pub fn wait(&self, id: &str) -> Result<i32> {
        let st = self.live_state(id);
        if !matches!(
            st.status,
            Status::Running | Status::Restarting | Status::Paused
        ) {
            return Ok(st.exit_code);
        }
        let mut conn = match self.connect(id) {
            Ok(c) => c,
            // The shim finished between our look and the connect.
            Err(_) => return Ok(self.live_state(id).exit_code),
        };
        protocol::write_frame(&mut conn, protocol::to_shim::WAIT, b"")?;
        match wait_exit(&mut conn)? {
            Some(code) => Ok(code),
            None => Ok(self.live_state(id).exit_code),
        }
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let rec = self.containers.read(id)?;
        let st = self.live_state(id);
        if st.status != Status::Running {
            return Err(self.wrong_state(&rec, &st, "only a running container can be paused"));
        }
        // The mark first: a container frozen without it would show as
        // running.
        let mark = self.containers.paths(id).paused_mark();
        std::fs::write(&mark, b"").map_err(super::io("create", &mark))?;
        self.runtime().pause(id).inspect_err(|_| {
            let _ = std::fs::remove_file(&mark);
        })?;
        Ok(())
    }

    pub fn unpause(&self, id: &str) -> Result<()> {
        let rec = self.containers.read(id)?;
        let st = self.live_state(id);
        if st.status != Status::Paused {
            return Err(self.wrong_state(&rec, &st, "it is not paused"));
        }
        self.runtime().resume(id)?;
        let _ = std::fs::remove_file(self.containers.paths(id).paused_mark());
        Ok(())
    }

    /// Removes a container. A running one needs `force` (it is killed).
    /// `volumes` removes its anonymous volumes too.
    pub fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let rec = self.containers.read(id)?;
        let st = self.live_state(id);
        if matches!(
            st.status,
            Status::Running | Status::Restarting | Status::Paused
        ) {
            if !force {
                return Err(self.wrong_state(
                    &rec,
                    &st,
                    "you cannot remove a running container: stop it first, or use rm -f",
                ));
            }
            if st.status == Status::Paused {
                let _ = self.runtime().resume(id);
            }
            if let Ok(mut conn) = self.connect(id) {
                let _ = protocol::write_json(
                    &mut conn,
                    protocol::to_shim::STOP,
                    &protocol::Stop { timeout_secs: 0 },
                );
                let _ = wait_exit(&mut conn);
            }
            self.wait_shim_gone(id);
        }
        crate::fault::point("rm.shim-gone");
        let _lock = self.containers.lock(id)?;
        self.recover(&rec)?;
        self.remove_files(&rec, volumes)?;
        // Leftovers of earlier crashed commands go too.
        self.reap();
        Ok(())
    }

    /// Takes off their networks the containers that are gone or whose shim
    /// died (a crash), leaving alone any that a command is starting now
    /// (it holds the container's lock). Their IDs.
    pub fn reclaim_networks(&self) -> Result<Vec<String>> {
        let nets = self.networks();
        let mut done = Vec::new();
        for id in nets.state()?.attachments.keys() {
            let lock = match self.containers.try_lock(id) {
                Ok(Some(l)) => Some(l),
                Ok(None) => continue,
                // No directory: the container is gone.
                Err(_) => None,
            };
            if lock.is_some()
                && self.containers.read(id).is_ok()
                && matches!(
                    self.live_state(id).status,
                    Status::Running | Status::Restarting | Status::Paused
                )
            {
                continue;
            }
            nets.detach(id)?;
            done.push(id.clone());
        }
        Ok(done)
    }

    /// The file naming the hierarchies (one mount point a line) where a
    /// `--cgroup-parent` was made for the engine's containers rather than
    /// by the user. Kept: the parent may be made again by a later start.
    fn cgroup_parent_mark(&self, parent: &str) -> PathBuf {
        self.root.join("cgroup-parents").join(hex::encode(parent))
    }

    /// Before a start: notes the hierarchies where the `--cgroup-parent`
    /// does not exist yet (the runtime is about to make it there). Only
    /// those are removed once empty; a parent the user made stays theirs,
    /// as with docker.
    fn note_cgroup_parent(&self, rec: &Record) -> Result<()> {
        let parent = rec.host_config.cgroup_parent.trim_matches('/');
        if parent.is_empty() {
            return Ok(());
        }
        let Ok(hier) = crate::cgroups::Hierarchies::detect() else {
            return Ok(());
        };
        let mark = self.cgroup_parent_mark(parent);
        let known = std::fs::read_to_string(&mark).unwrap_or_default();
        let missing: String = hier
            .all()
            .iter()
            .map(|h| h.mount_point.to_string_lossy().into_owned())
            .filter(|mp| !Path::new(mp).join(parent).exists() && !known.lines().any(|l| l == mp))
            .map(|mp| mp + "\n")
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if let Some(dir) = mark.parent() {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        // Appends of a few lines: concurrent starts do not lose each
        // other's.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&mark)
            .and_then(|mut f| f.write_all(missing.as_bytes()))
            .map_err(io("write", &mark))
    }

    /// A `--cgroup-parent` left empty goes where the engine made it, as the
    /// runtime's default parent does. The runtime removes the parents it
    /// made itself, but not one that a container killed before its delete
    /// made (its record of having made it died with it).
    fn remove_cgroup_parent(&self, rec: &Record) {
        let parent = rec.host_config.cgroup_parent.trim_matches('/');
        if parent.is_empty() {
            return;
        }
        let made = std::fs::read_to_string(self.cgroup_parent_mark(parent)).unwrap_or_default();
        for mp in made.lines() {
            // Busy or not empty: a sibling uses it, which is fine.
            let _ = std::fs::remove_dir(Path::new(mp).join(parent));
        }
    }

    /// Waits (a bounded time) for a finishing shim to exit, so the next
    /// step sees its final state.
    fn wait_shim_gone(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut s = self.containers.read_state(id);
        while crate::runtime::state::process_alive(s.shim_pid, s.shim_start)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
            s = self.containers.read_state(id);
        }
    }

    /// Everything of a stopped container, under its lock. Each step can be
    /// repeated, and the container exists until its directory is retired
    /// in one rename, so an rm killed at any point is finished by the next
    /// rm (before the rename) or by the reaper (after it).
    pub(crate) fn remove_files(&self, rec: &Record, volumes: bool) -> Result<()> {
        let p = self.containers.paths(&rec.id);
        self.runtime().delete(&rec.id, true)?;
        self.remove_cgroup_parent(rec);
        crate::fault::point("rm.runtime-deleted");
        self.networks().detach(&rec.id)?;
        crate::fault::point("rm.network-detached");
        overlay::unmount(&p.rootfs())?;
        crate::fault::point("rm.unmounted");
        if volumes {
            self.remove_anonymous_volumes(rec);
        }
        let trash = self.containers.retire_dir(&rec.id)?;
        crate::fault::point("rm.dir-retired");
        self.containers.release_name(&rec.name, &rec.id);
        crate::fault::point("rm.name-released");
        if let Ok(images) = self.images()
            && let Ok(digest) = rec.image_id.parse()
        {
            let _ = images.remove_user(&digest, &rec.id);
        }
        super::record::remove_tree(&trash)?;
        let _ = std::fs::remove_dir_all(p.socket_dir());
        Ok(())
    }

    /// Attaches to a running container's shim: output goes to `out`/`err`,
    /// and `stdin` (if given) is sent until EOF. Returns how it ended.
    pub fn attach(
        &self,
        conn: &mut UnixStream,
        stdin: bool,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<Attached> {
        protocol::write_json(conn, protocol::to_shim::ATTACH, &protocol::Attach { stdin })?;
        loop {
            match protocol::read_frame(conn)? {
                None => return Ok(Attached::Detached),
                Some((protocol::from_shim::STDOUT, data)) => {
                    let _ = out.write_all(&data);
                    let _ = out.flush();
                }
                Some((protocol::from_shim::STDERR, data)) => {
                    let _ = err.write_all(&data);
                    let _ = err.flush();
                }
                Some((protocol::from_shim::EXIT, data)) => {
                    let e: protocol::ExitStatus =
                        serde_json::from_slice(&data).unwrap_or(protocol::ExitStatus { code: -1 });
                    return Ok(Attached::Exited(e.code));
                }
                Some((protocol::from_shim::ERROR, msg)) => {
                    return Err(Error::Usage(String::from_utf8_lossy(&msg).into_owned()));
                }
                Some(_) => {}
            }
        }
    }
}

/// Reads frames until EXIT; None if the shim hung up first.
fn wait_exit(conn: &mut UnixStream) -> Result<Option<i32>> {
    loop {
        // The shim exits right after EXIT: a reset connection is a hang-up.
        let frame = match protocol::read_frame(conn) {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        match frame {
            None => return Ok(None),
            Some((protocol::from_shim::EXIT, data)) => {
                protocol::wait_hangup(conn);
                return Ok(serde_json::from_slice::<protocol::ExitStatus>(&data)
                    .ok()
                    .map(|e| e.code));
            }
            Some(_) => {}
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io {
            op: "talk to",
            path: PathBuf::from("the shim"),
            source: e,
        }
    }
}

/// The container's resolv.conf: the host's nameservers, unless they are
/// loopback resolvers (unreachable from a network namespace of its own),
/// in which case public ones.
pub fn resolv_conf(host: &str, host_network: bool) -> String {
    if host_network {
        return host.to_string();
    }
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if ns.starts_with("127.") || ns == "::1" {
                continue;
            }
            servers += 1;
        } else if !(t.starts_with("search") || t.starts_with("options") || t.starts_with("domain"))
        {
            continue;
        }
        out.push_str(t);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_resolvers() {
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\nsearch lan\n", false),
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf("nameserver 10.0.0.1\n# c\n", false),
            "nameserver 10.0.0.1\n"
        );
    }
}
