//! Named volumes: directories under `ROOT/volumes/NAME/_data` that outlive
//! containers, with docker's rules (created on first use, `rm` refuses one a
//! container references, `prune` removes the unreferenced).

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
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
        let dir = self.vol_dir(name);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if exist_ok {
                    return self.inspect(name);
                }
                return Err(Error::Exists(name.to_string()));
            }
            Err(source) => {
                return Err(Error::Io {
                    op: "create",
                    path: dir,
                    source,
                });
            }
        }
        let data = self.data_dir(name);
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&data)
            .map_err(|source| Error::Io {
                op: "create",
                path: data.clone(),
                source,
            })?;
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

    pub fn inspect(&self, name: &str) -> Result<Volume> {
        super::record::read_json(&self.vol_dir(name).join("volume.json"))
            .map_err(|_| Error::NotFound(name.to_string()))
    }

    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    op: "read",
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut out: Vec<Volume> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
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
        let dir = self.vol_dir(name);
        fs::remove_dir_all(&dir).map_err(|source| Error::Io {
            op: "remove",
            path: dir,
            source,
        })
    }
}
