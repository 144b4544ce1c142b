//! A container's record on disk: `<root>/<id>/state.json`, written atomically,
//! and the lock that serializes commands on one container.

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "container id {0:?} is invalid: use letters, digits, '_', '-', '+' and '.' (not starting with '.')"
    )]
    BadId(String),
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container \"{0}\" already exists")]
    Exists(String),
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

/// The runtime-spec statuses, plus `paused` as runc reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What is saved about a container between commands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub oci_version: String,
    pub id: String,
    /// The init process as the host sees it; 0 before it exists.
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat), so a recycled pid is
    /// never mistaken for the container.
    pub pid_start: u64,
    /// Status as last recorded; the live status also looks at the process.
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Option<Cgroup>,
    #[serde(default)]
    pub hooks: Hooks,
    /// Whether the container has its own pid namespace: without one, its
    /// processes outlive init and `kill`/`delete` must reach them all.
    #[serde(default)]
    pub own_pid_ns: bool,
}

/// runc's `state` output (and the state hooks receive).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

/// The spec's state object for hooks (no rootfs/created/owner).
#[derive(Clone, Debug, Serialize)]
pub struct HookState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

impl Record {
    /// The status now: the recorded one, corrected by whether init lives.
    pub fn live_status(&self) -> Status {
        if self.pid <= 0 {
            return if self.status == Status::Creating {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !process_alive(self.pid, self.pid_start) {
            return Status::Stopped;
        }
        match self.status {
            Status::Created | Status::Creating => self.status,
            _ if self.is_frozen() => Status::Paused,
            _ => Status::Running,
        }
    }

    fn is_frozen(&self) -> bool {
        self.cgroup
            .as_ref()
            .map(crate::cgroups::is_frozen)
            .unwrap_or(false)
    }

    pub fn oci_state(&self) -> OciState {
        let status = self.live_status();
        OciState {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }

    pub fn hook_state(&self, status: Status) -> HookState<'_> {
        HookState {
            oci_version: &self.oci_version,
            id: &self.id,
            status,
            pid: self.pid,
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }
}

/// Field 22 of /proc/PID/stat (start time in clock ticks), and the state
/// letter. None when the process is gone.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    // One read into a buffer that holds any stat line (52 numeric fields
    // and a 16-byte name): `ps` does this twice per container, and
    // read_to_string's statx and second read were a third of its syscalls.
    let mut buf = [0u8; 2048];
    let mut f = fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let n = std::io::Read::read(&mut f, &mut buf).ok()?;
    if n == buf.len() {
        return None;
    }
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past
    // the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3; start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether `pid` is still the process that started at `start` and has not
/// exited (a zombie has).
pub fn process_alive(pid: i32, start: u64) -> bool {
    match proc_stat(pid) {
        Some((state, s)) => s == start && state != 'Z' && state != 'X',
        None => false,
    }
}

/// The state directory of all containers.
#[derive(Clone, Debug)]
pub struct StateRoot {
    pub path: PathBuf,
}

/// A container's state directory, held locked.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    _lock: Flock<fs::File>,
}

pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.to_string()))
    }
}

impl StateRoot {
    pub fn new(path: &Path) -> StateRoot {
        StateRoot {
            path: path.to_path_buf(),
        }
    }

    fn ensure(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(|source| Error::Io {
                op: "create",
                path: self.path.clone(),
                source,
            })
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Makes the container's directory; the mkdir is the atomic step that
    /// lets exactly one of two concurrent creates of an id win.
    pub fn create(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        self.ensure()?;
        let path = self.dir_of(id);
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()));
            }
            Err(source) => {
                return Err(Error::Io {
                    op: "create",
                    path,
                    source,
                });
            }
        }
        let lock = lock_dir(&path)?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: lock,
        })
    }

    /// Opens and locks an existing container's directory. Blocks while
    /// another command holds it.
    pub fn open(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = self.dir_of(id);
        let lock = match lock_dir(&path) {
            Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()));
            }
            other => other?,
        };
        // A delete that finished while we waited for the lock leaves the
        // directory unlinked; treat it as gone.
        if !path.join("state.json").exists() && !path.exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: lock,
        })
    }

    /// Reads a record without locking (state and list); the file is replaced
    /// atomically, so a reader sees the old or the new version.
    pub fn read(&self, id: &str) -> Result<Record> {
        validate_id(id)?;
        read_record(&self.dir_of(id), id)
    }

    /// Ids of every container, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = crate::dirs::entries(&self.path).map_err(|source| Error::Io {
            op: "read",
            path: self.path.clone(),
            source,
        })?;
        let mut ids: Vec<String> = entries
            .into_iter()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(path: &Path) -> Result<Flock<fs::File>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| Error::Io {
            op: "open",
            path: path.to_path_buf(),
            source,
        })?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
        op: "lock",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

fn read_record(dir: &Path, id: &str) -> Result<Record> {
    let path = dir.join("state.json");
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::NotFound(id.to_string())),
        Err(source) => {
            return Err(Error::Io {
                op: "read",
                path,
                source,
            });
        }
    };
    serde_json::from_slice(&text).map_err(|source| Error::Corrupt { path, source })
}

impl ContainerDir {
    pub fn read(&self) -> Result<Record> {
        read_record(&self.path, &self.id)
    }

    /// Writes the record: temp file, then rename over the old one.
    pub fn write(&self, rec: &Record) -> Result<()> {
        let path = self.path.join("state.json");
        let tmp = self.path.join(".state.json.tmp");
        let data = serde_json::to_vec(rec).expect("a record always serializes");
        let io = |op, source| Error::Io {
            op,
            path: tmp.clone(),
            source,
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| io("create", e))?;
        f.write_all(&data).map_err(|e| io("write", e))?;
        fs::rename(&tmp, &path).map_err(|source| Error::Io {
            op: "rename",
            path,
            source,
        })
    }

    /// An fd of the directory, for paths too long for sockaddr_un.
    pub fn open_fd(&self) -> Result<OwnedFd> {
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|source| Error::Io {
                op: "open",
                path: self.path.clone(),
                source,
            })?;
        Ok(f.into())
    }

    /// Removes the directory and everything in it. The lock stays held on
    /// the (now unlinked) directory until this value is dropped.
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                op: "remove",
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub fn raw_lock_fd(&self) -> i32 {
        self._lock.as_raw_fd()
    }
}

/// Now, as RFC 3339 with nanoseconds in UTC, as runc writes `created`.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("../x").is_err());
        assert!(validate_id(".hidden").is_err());
        assert!(validate_id("a/b").is_err());
    }

    #[test]
    fn own_stat_parses() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
        assert!(process_alive(std::process::id() as i32, start));
        assert!(!process_alive(std::process::id() as i32, start + 1));
    }

    #[test]
    fn create_twice_conflicts() {
        let t = tempfile::tempdir().unwrap();
        let root = StateRoot::new(t.path());
        let d = root.create("c1").unwrap();
        assert!(matches!(root.create("c1"), Err(Error::Exists(_))));
        drop(d);
        assert_eq!(root.ids().unwrap(), vec!["c1".to_string()]);
    }
}
