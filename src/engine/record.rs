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
}

/// Writes `value` as JSON to `path` atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let data = serde_json::to_vec(value).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(&data).map_err(io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io("rename", path))
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

    /// Claims `name` for `id`; the O_EXCL create is the atomic step.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<()> {
        if !super::names::valid_name(name) {
            return Err(Error::BadName(name.to_string()));
        }
        self.ensure_dirs()?;
        let path = self.names_dir().join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => f.write_all(id.as_bytes()).map_err(io("write", &path)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(&path).unwrap_or_default();
                // A name whose container is gone (a crash between steps of
                // rm) is free again.
                if !owner.is_empty() && !self.paths(&owner).config().exists() {
                    fs::remove_file(&path).map_err(io("remove", &path))?;
                    return self.reserve_name(name, id);
                }
                Err(Error::NameInUse {
                    name: name.to_string(),
                    id: owner,
                })
            }
            Err(e) => Err(Error::Io {
                op: "create",
                path,
                source: e,
            }),
        }
    }

    pub fn release_name(&self, name: &str, id: &str) {
        let path = self.names_dir().join(name);
        if fs::read_to_string(&path).is_ok_and(|owner| owner == id) {
            let _ = fs::remove_file(path);
        }
    }

    /// Finds a container by name, full ID or unique ID prefix.
    pub fn resolve(&self, what: &str) -> Result<String> {
        let what = what.strip_prefix('/').unwrap_or(what);
        if super::names::valid_name(what)
            && let Ok(id) = fs::read_to_string(self.names_dir().join(what))
            && self.paths(&id).config().exists()
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
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    op: "read",
                    path: dir,
                    source,
                });
            }
        };
        Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit()))
            .collect())
    }

    /// Makes the container's directory (empty) and locks it.
    pub fn create_dir(&self, id: &str) -> Result<Lock> {
        self.ensure_dirs()?;
        let p = self.paths(id);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&p.dir)
            .map_err(io("create", &p.dir))?;
        self.lock(id)
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
        let p = self.paths(id);
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&p.dir)
            .map_err(io("open", &p.dir))?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(Lock { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(Error::Io {
                op: "lock",
                path: p.dir.clone(),
                source: e.into(),
            }),
        }
    }

    pub fn read(&self, id: &str) -> Result<Record> {
        let p = self.paths(id).config();
        if !p.exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        read_json(&p)
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

/// Held while a command works on a container.
pub struct Lock {
    _lock: Flock<fs::File>,
}
