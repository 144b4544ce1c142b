//! A container's files under the engine root:
//!
//! ```text
//! ROOT/containers/ID/config.json   what it was asked to be (Record), under the lock
//! ROOT/containers/ID/state.json    what it is doing (State), written by its shim
//! ROOT/containers/ID/bundle/       the OCI bundle the runtime gets
//! ROOT/containers/ID/upper, work   the overlay's writable layer
//! ROOT/containers/ID/rootfs        the overlay mount point
//! ROOT/containers/ID/container.log json-file logs
//! ROOT/containers/ID/hosts, hostname, resolv.conf
//! ROOT/names/NAME                  -> ID, made with O_EXCL: names are unique
//! STATE/shims/ID12/attach.sock     the shim's socket (root only)
//! ```
//!
//! Every file is replaced atomically (temp + rename), so a kill at any
//! moment leaves the old or the new version.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::config::{Config, HostConfig};
use super::restart::RestartState;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error(
        "the container name \"/{name}\" is already in use by container \"{id}\": remove or rename that container, or choose another name"
    )]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("{0:?} matches more than one container: use more of the ID")]
    Ambiguous(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What a container is: written at create, changed only by rename.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// sha256:… of the image config.
    pub image_id: String,
    pub config: Config,
    pub host_config: HostConfig,
    /// The layer directories, lowest first (kept so a start needs no
    /// image lookup).
    pub layers: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        })
    }
}

/// What a container is doing; the shim owns this file while it lives.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct State {
    pub status: Status,
    /// The container's init on the host.
    pub pid: i32,
    /// -1 when unknown (the shim died before it could record the exit).
    pub exit_code: i32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub oom_killed: bool,
    pub error: String,
    pub restart: RestartState,
    /// A manual stop suspends the restart policy.
    pub stopped_by_user: bool,
    pub shim_pid: i32,
    pub shim_start: u64,
}

/// Paths of one container.
#[derive(Clone, Debug)]
pub struct Paths {
    pub dir: PathBuf,
    pub shim_dir: PathBuf,
}

impl Paths {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("container.log")
    }
    pub fn socket_dir(&self) -> &Path {
        &self.shim_dir
    }
    /// Made by `pause` before it freezes the container, removed by
    /// `unpause`: a hint that spares `ps` a look at the runtime's state and
    /// freezer for every running container. Gone with the shim's dir.
    pub fn paused_mark(&self) -> PathBuf {
        self.shim_dir.join("paused")
    }
}

/// Writes `value` as JSON to `path` atomically. The temp file's name is
/// the writer's own, so concurrent writers (a shim and a command) never
/// tear each other's file; a failed write leaves no temp file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.{n}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let data = serde_json::to_vec(value).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        source: e,
    })?;
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        f.write_all(&data).map_err(io("write", &tmp))?;
        fs::rename(&tmp, path).map_err(io("rename", path))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read(path).map_err(io("read", path))?;
    serde_json::from_slice(&text).map_err(|source| Error::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

/// The containers of an engine root.
#[derive(Clone, Debug)]
pub struct Containers {
    root: PathBuf,
    state: PathBuf,
}

impl Containers {
    pub fn new(root: &Path, state: &Path) -> Containers {
        Containers {
            root: root.to_path_buf(),
            state: state.to_path_buf(),
        }
    }

    fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    fn names_dir(&self) -> PathBuf {
        self.root.join("names")
    }

    pub fn paths(&self, id: &str) -> Paths {
        Paths {
            dir: self.containers_dir().join(id),
            shim_dir: self.state.join("shims").join(&id[..id.len().min(12)]),
        }
    }

    pub fn ensure_dirs(&self) -> Result<()> {
        for d in [
            self.containers_dir(),
            self.names_dir(),
            self.state.join("shims"),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(io("create", &d))?;
        }
        Ok(())
    }

    /// Claims `name` for `id`, whose directory the caller made and holds
    /// locked. The name is a symlink to the ID: `symlink` is atomic and
    /// exclusive, so a reader never sees a half-written owner. A name whose
    /// owner is gone (a crash between steps of create, rm or rename) is
    /// taken over under the names lock, so two takers cannot both win.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<()> {
        if !super::names::valid_name(name) {
            return Err(Error::BadName(name.to_string()));
        }
        self.ensure_dirs()?;
        let path = self.names_dir().join(name);
        let claim = || match std::os::unix::fs::symlink(id, &path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(Error::Io {
                op: "create",
                path: path.clone(),
                source,
            }),
        };
        if claim()? {
            return Ok(());
        }
        let _names = self.lock_names()?;
        let owner = read_owner(&path);
        if self.name_is_stale(name, &owner) {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        op: "remove",
                        path,
                        source,
                    });
                }
            }
            if claim()? {
                return Ok(());
            }
        }
        Err(Error::NameInUse {
            name: name.to_string(),
            id: read_owner(&path),
        })
    }

    /// Whether the container a name points at no longer holds it: it does
    /// not exist, or it is not being made or renamed (its lock is free) and
    /// its record is missing or carries another name.
    fn name_is_stale(&self, name: &str, owner: &str) -> bool {
        if !super::names::valid_id(owner) {
            return true;
        }
        let dir = self.paths(owner).dir;
        if !dir.exists() {
            return true;
        }
        match self.try_lock(owner) {
            Ok(Some(_lock)) => self.read(owner).map_or(true, |rec| rec.name != name),
            Ok(None) => false,
            Err(_) => !dir.exists(),
        }
    }

    fn lock_names(&self) -> Result<Flock<fs::File>> {
        let dir = self.names_dir();
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir)
            .map_err(io("open", &dir))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
            op: "lock",
            path: dir,
            source: e.into(),
        })
    }

    pub fn release_name(&self, name: &str, id: &str) {
        let path = self.names_dir().join(name);
        if read_owner(&path) == id {
            let _ = fs::remove_file(path);
        }
    }

    /// Removes what crashed commands left: containers whose removal was
    /// cut short (`.removing-ID`), containers whose creation was (a
    /// directory with no record that no command holds), and names that
    /// point at nothing. Returns the IDs of those containers, for the
    /// caller to drop their other traces (image marks).
    pub fn reap(&self) -> Result<Vec<String>> {
        let dir = self.containers_dir();
        let entries = crate::dirs::entries(&dir).map_err(io("read", &dir))?;
        let mut gone = Vec::new();
        for e in entries {
            let Ok(n) = e.file_name().into_string() else {
                continue;
            };
            if let Some(rest) = n.strip_prefix(CREATING) {
                // A create killed before its directory got its name: it
                // holds nothing else yet.
                let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
                let dead = pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists());
                if dead && let Ok(Some(_lock)) = try_lock_dir(&e.path()) {
                    remove_tree(&e.path())?;
                }
            } else if let Some(id) = n.strip_prefix(REMOVING) {
                // The rm that retired it keeps its lock until it is done;
                // a free lock means that rm was killed.
                if let Ok(Some(_lock)) = try_lock_dir(&e.path()) {
                    remove_tree(&e.path())?;
                    if super::names::valid_id(id) {
                        gone.push(id.to_string());
                    }
                }
            } else if super::names::valid_id(&n)
                && !self.paths(&n).config().exists()
                && let Ok(Some(_lock)) = self.try_lock(&n)
                && !self.paths(&n).config().exists()
            {
                remove_tree(&e.path())?;
                gone.push(n);
            }
        }
        // Names whose container is gone. One that points at a container
        // under another name (a rename cut short) is left to the checks
        // where it matters, reserve_name and resolve: reading every record
        // here made each create cost O(containers).
        let names = self.names_dir();
        let orphans: Vec<(String, PathBuf)> = fs::read_dir(&names)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                let owner = read_owner(&e.path());
                let gone = !super::names::valid_id(&owner) || !self.paths(&owner).dir.exists();
                (gone && super::names::valid_name(&n)).then(|| (n, e.path()))
            })
            .collect();
        if !orphans.is_empty() {
            let _names = self.lock_names()?;
            for (n, path) in orphans {
                if self.name_is_stale(&n, &read_owner(&path)) {
                    let _ = fs::remove_file(path);
                }
            }
        }
        Ok(gone)
    }

    /// Takes a container's directory out of the way in one step (the
    /// container stops existing), for the caller to delete; the caller
    /// holds its lock. A crash before the delete leaves a `.removing-ID`
    /// that [`Containers::reap`] finishes.
    pub fn retire_dir(&self, id: &str) -> Result<PathBuf> {
        let p = self.paths(id);
        let trash = self.containers_dir().join(format!("{REMOVING}{id}"));
        fs::rename(&p.dir, &trash).map_err(io("rename", &p.dir))?;
        Ok(trash)
    }

    /// Finds a container by name, full ID or unique ID prefix.
    pub fn resolve(&self, what: &str) -> Result<String> {
        let what = what.strip_prefix('/').unwrap_or(what);
        // The record has the last word: a name left by a rename cut short
        // still points at the renamed container.
        if super::names::valid_name(what)
            && let id = read_owner(&self.names_dir().join(what))
            && super::names::valid_id(&id)
            && self.read(&id).is_ok_and(|rec| rec.name == what)
        {
            return Ok(id);
        }
        if what.is_empty() || !what.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::NotFound(what.to_string()));
        }
        let matches: Vec<String> = self
            .ids()?
            .into_iter()
            .filter(|id| id.starts_with(what))
            .collect();
        match matches.len() {
            0 => Err(Error::NotFound(what.to_string())),
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            _ => Err(Error::Ambiguous(what.to_string())),
        }
    }

    pub fn ids(&self) -> Result<Vec<String>> {
        let dir = self.containers_dir();
        let entries = crate::dirs::entries(&dir).map_err(io("read", &dir))?;
        Ok(entries
            .into_iter()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| super::names::valid_id(n))
            .collect())
    }

    /// Makes the container's directory (empty) and locks it.
    pub fn create_dir(&self, id: &str) -> Result<Lock> {
        self.ensure_dirs()?;
        let p = self.paths(id);
        // Made under another name and locked before it gets its own: a
        // reaper (or a name's taker) that found it without a record and
        // unlocked would take it for a crashed create's and delete it.
        // The temp name holds our pid: the reaper leaves it alone while we
        // live, as mkdir and flock are two steps.
        let tmp = self
            .containers_dir()
            .join(format!("{CREATING}{}-{id}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(io("create", &tmp))?;
        let lock = match try_lock_dir(&tmp) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                return Err(Error::Io {
                    op: "lock",
                    path: tmp,
                    source: std::io::ErrorKind::WouldBlock.into(),
                });
            }
            Err(e) => {
                let _ = fs::remove_dir(&tmp);
                return Err(e);
            }
        };
        // The flock is the inode's: it moves with the rename.
        if let Err(source) = fs::rename(&tmp, &p.dir) {
            let _ = fs::remove_dir(&tmp);
            return Err(Error::Io {
                op: "rename",
                path: tmp,
                source,
            });
        }
        Ok(lock)
    }

    /// Serializes commands on one container (flock on its directory).
    pub fn lock(&self, id: &str) -> Result<Lock> {
        let p = self.paths(id);
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&p.dir)
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::NotFound(id.to_string())
                } else {
                    Error::Io {
                        op: "open",
                        path: p.dir.clone(),
                        source: e,
                    }
                }
            })?;
        let lock = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
            op: "lock",
            path: p.dir.clone(),
            source: e.into(),
        })?;
        if !p.dir.exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(Lock { _lock: lock })
    }

    /// The lock if no other command holds it now.
    pub fn try_lock(&self, id: &str) -> Result<Option<Lock>> {
        try_lock_dir(&self.paths(id).dir)
    }

    pub fn read(&self, id: &str) -> Result<Record> {
        // No exists() first: the missing record is the open's ENOENT.
        read_json(&self.paths(id).config()).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == ErrorKind::NotFound => {
                Error::NotFound(id.to_string())
            }
            e => e,
        })
    }

    pub fn write(&self, rec: &Record) -> Result<()> {
        write_json(&self.paths(&rec.id).config(), rec)
    }

    pub fn read_state(&self, id: &str) -> State {
        read_json(&self.paths(id).state()).unwrap_or_default()
    }

    pub fn write_state(&self, id: &str, st: &State) -> Result<()> {
        write_json(&self.paths(id).state(), st)
    }
}

/// The prefix of a container directory being deleted.
const REMOVING: &str = ".removing-";
/// The prefix of a container directory being made (`.creating-PID-ID`,
/// until it is locked and renamed).
const CREATING: &str = ".creating-";

/// The ID a name points at: a symlink's target, or (names made by older
/// versions) a file's content. Empty if unreadable.
fn read_owner(path: &Path) -> String {
    match fs::read_link(path) {
        Ok(t) => t.to_string_lossy().into_owned(),
        Err(_) => fs::read_to_string(path).unwrap_or_default(),
    }
}

/// A directory's flock if no other process holds it now.
fn try_lock_dir(dir: &Path) -> Result<Option<Lock>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(io("open", dir))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(Lock { _lock: lock })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(Error::Io {
            op: "lock",
            path: dir.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// Deletes a directory tree; gone already is fine.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            op: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Held while a command works on a container.
pub struct Lock {
    _lock: Flock<fs::File>,
}
