//! What the engine knows about networks, on disk under `ROOT/networks`:
//!
//! ```text
//! ROOT/networks/defs/NAME.json   a network's definition (Network)
//! ROOT/networks/state.json       live bridges and attachments (State)
//! /run/berth-network.lock        held while either changes
//! ```
//!
//! The lock is host-wide, not per engine root: bridges, routes and subnets
//! are host-wide, and two engines choosing a subnet at once must not pick
//! the same one. Files are replaced atomically (temp + rename).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::ipam::Ipv4Net;
use super::ports::Mapping;

pub const LOCK_PATH: &str = "/run/berth-network.lock";

#[derive(Debug, thiserror::Error)]
pub enum Error {
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

/// A bridge network's definition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub id: String,
    /// The bridge interface.
    pub bridge: String,
    /// None: chosen when the bridge is made (the default network).
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
    /// Containers resolve each other by name (user-defined networks).
    #[serde(default)]
    pub dns: bool,
    #[serde(default)]
    pub created: String,
}

/// A bridge that exists now, with the subnet it was given.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bridge {
    pub bridge: String,
    pub subnet: Ipv4Net,
}

/// A container's share of the network: everything to undo when it stops.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: String,
    pub container_name: String,
    pub hostname: String,
    /// The namespace's bind mount.
    pub netns: PathBuf,
    pub hosts_file: PathBuf,
    /// None: loopback only (`--network none`).
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// The host end of the veth pair (the other is eth0 inside).
    #[serde(default)]
    pub veth: String,
    #[serde(default)]
    pub ports: Vec<Mapping>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Network name → its bridge, while one exists.
    #[serde(default)]
    pub bridges: BTreeMap<String, Bridge>,
    /// Container ID → its attachment.
    #[serde(default)]
    pub attachments: BTreeMap<String, Attachment>,
    /// Network name → the address handed out last (allocation goes round).
    #[serde(default)]
    pub last_ip: BTreeMap<String, Ipv4Addr>,
}

impl State {
    /// Attachments to network `name`.
    pub fn members<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attachment> + 'a {
        self.attachments
            .values()
            .filter(move |a| a.network.as_deref() == Some(name))
    }
}

/// The host-wide network lock, held until dropped.
pub struct Lock {
    _lock: Flock<std::fs::File>,
}

pub fn lock() -> Result<Lock> {
    let path = Path::new(LOCK_PATH);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(io("open", path))?;
    let lock = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
        op: "lock",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok(Lock { _lock: lock })
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// None if the file does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| Error::Corrupt {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    let data = serde_json::to_vec_pretty(value).map_err(|source| Error::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(&data).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename", path))
}
