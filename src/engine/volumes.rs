//! Named volumes: directories under `ROOT/volumes/NAME/_data` that outlive
//! containers, with docker's rules (created on first use, `rm` refuses one a
//! container references, `prune` removes the unreferenced).

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("invalid volume name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("volume {name} is in use by container(s) {users}: remove them first")]
    InUse { name: String, users: String },
    #[error("volume {0} already exists")]
    Exists(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The prefix of a volume directory being deleted.
const REMOVING: &str = ".removing-";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub scope: String,
}

pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub fn new(root: &Path) -> Volumes {
        Volumes {
            dir: root.join("volumes"),
        }
    }

    fn vol_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.vol_dir(name).join("_data")
    }

    /// Creates a volume; `exist_ok` for `-v name:/path` (created on first use).
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        exist_ok: bool,
    ) -> Result<Volume> {
        if !super::names::valid_name(name) {
            return Err(Error::BadName(name.to_string()));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| Error::Io {
                op: "create",
                path: self.dir.clone(),
                source,
            })?;
        // Concurrent `run -v NAME:…` make the same volume: one makes it,
        // the others find it whole, never half made.
        let _lock = self.lock()?;
        self.sweep();
        let dir = self.vol_dir(name);
        let made_dir = match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
            Err(source) => {
                return Err(Error::Io {
                    op: "create",
                    path: dir,
                    source,
                });
            }
        };
        if !made_dir && let Ok(v) = self.inspect(name) {
            return if exist_ok {
                Ok(v)
            } else {
                Err(Error::Exists(name.to_string()))
            };
        }
        // New, or half made by a process that was killed: finish it.
        let data = self.data_dir(name);
        match fs::DirBuilder::new().mode(0o755).create(&data) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Io {
                    op: "create",
                    path: data,
                    source,
                });
            }
        }
        let v = Volume {
            name: name.to_string(),
            driver: "local".into(),
            mountpoint: data,
            created_at: crate::runtime::state::now_rfc3339(),
            labels,
            scope: "local".into(),
        };
        // The metadata appears last, by rename: a volume without it is
        // half made and is not listed.
        super::record::write_json(&dir.join("volume.json"), &v).map_err(|e| Error::Io {
            op: "write",
            path: dir.join("volume.json"),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(v)
    }

    /// Serializes creates and removals (flock on the volumes directory).
    fn lock(&self) -> Result<nix::fcntl::Flock<fs::File>> {
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.dir)
            .map_err(|source| Error::Io {
                op: "open",
                path: self.dir.clone(),
                source,
            })?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            Error::Io {
                op: "lock",
                path: self.dir.clone(),
                source: e.into(),
            }
        })
    }

    /// Deletes what a removal killed half way left (under the lock).
    fn sweep(&self) {
        for e in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(REMOVING) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    pub fn inspect(&self, name: &str) -> Result<Volume> {
        super::record::read_json(&self.vol_dir(name).join("volume.json"))
            .map_err(|_| Error::NotFound(name.to_string()))
    }

    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = crate::dirs::entries(&self.dir).map_err(|source| Error::Io {
            op: "read",
            path: self.dir.clone(),
            source,
        })?;
        let mut out: Vec<Volume> = entries
            .into_iter()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| super::names::valid_name(n))
            .filter_map(|n| self.inspect(&n).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume and its data; `users` are the containers that
    /// reference it (the caller knows them).
    pub fn remove(&self, name: &str, users: &[String]) -> Result<()> {
        self.inspect(name)?;
        if !users.is_empty() {
            return Err(Error::InUse {
                name: name.to_string(),
                users: users.join(", "),
            });
        }
        let _lock = self.lock()?;
        // Out of sight in one step, then deleted: a removal cut short never
        // leaves a volume with part of its data.
        let dir = self.vol_dir(name);
        let doomed = self.dir.join(format!("{REMOVING}{name}"));
        fs::rename(&dir, &doomed).map_err(|source| Error::Io {
            op: "rename",
            path: dir,
            source,
        })?;
        crate::fault::point("volume.retired");
        fs::remove_dir_all(&doomed).map_err(|source| Error::Io {
            op: "remove",
            path: doomed,
            source,
        })
    }
}
