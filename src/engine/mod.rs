//! The engine behind `berth`: containers made from images, each run under
//! its own shim, with all state on disk so every command is a short-lived
//! process (daemonless, like podman).
//!
//! Data flows one way: a [`create::Request`] and an image become a
//! [`record::Record`]; `start` mounts the overlay rootfs, writes the OCI
//! bundle ([`spec`]) and forks a [`shim`] that creates and supervises the
//! container through [`crate::runtime`], in process.

pub mod config;
pub mod create;
pub mod lifecycle;
pub mod logs;
pub mod mounts;
pub mod names;
pub mod record;
pub mod restart;
pub mod seccomp_default;
pub mod shim;
pub mod spec;
pub mod units;
pub mod users;
pub mod volumes;

use std::path::{Path, PathBuf};

use record::{Containers, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Record(#[from] record::Error),
    #[error(transparent)]
    Volume(#[from] volumes::Error),
    #[error(transparent)]
    Image(Box<crate::image::store::Error>),
    #[error(transparent)]
    Registry(Box<crate::image::registry::Error>),
    #[error(transparent)]
    Reference(#[from] crate::image::reference::Error),
    #[error(transparent)]
    Runtime(Box<crate::runtime::container::Error>),
    #[error(transparent)]
    Spec(#[from] spec::Error),
    #[error(transparent)]
    Mounts(#[from] mounts::Error),
    #[error(transparent)]
    User(#[from] users::Error),
    #[error(transparent)]
    Overlay(#[from] crate::overlay::Error),
    #[error(transparent)]
    Logs(#[from] logs::Error),
    #[error(transparent)]
    Restart(#[from] restart::ParseError),
    #[error(transparent)]
    Units(#[from] units::Error),
    #[error(transparent)]
    Network(Box<crate::network::Error>),
    #[error("container {name} is {status}: {what}")]
    WrongState {
        name: String,
        status: String,
        what: String,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("shim of {name}: {msg}")]
    Shim { name: String, msg: String },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;

// The big error types of other layers are boxed, so every Result of ours
// stays small.
impl From<crate::image::store::Error> for Error {
    fn from(e: crate::image::store::Error) -> Error {
        Error::Image(Box::new(e))
    }
}

impl From<crate::image::registry::Error> for Error {
    fn from(e: crate::image::registry::Error) -> Error {
        Error::Registry(Box::new(e))
    }
}

impl From<crate::network::Error> for Error {
    fn from(e: crate::network::Error) -> Error {
        Error::Network(Box::new(e))
    }
}

impl From<crate::runtime::container::Error> for Error {
    fn from(e: crate::runtime::container::Error) -> Error {
        Error::Runtime(Box::new(e))
    }
}

pub(crate) fn io<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// An engine root (images, containers, volumes) and a state directory
/// (runtime state, shim sockets).
#[derive(Clone, Debug)]
pub struct Engine {
    pub root: PathBuf,
    pub state: PathBuf,
    pub containers: Containers,
}

impl Engine {
    pub fn new(root: &Path, state: &Path) -> Engine {
        Engine {
            root: root.to_path_buf(),
            state: state.to_path_buf(),
            containers: Containers::new(root, state),
        }
    }

    pub fn images(&self) -> Result<crate::image::Store> {
        Ok(crate::image::Store::open(&self.root)?)
    }

    pub fn volumes(&self) -> volumes::Volumes {
        volumes::Volumes::new(&self.root)
    }

    /// The networks: definitions and attachments under the root,
    /// namespaces bound under the state dir.
    pub fn networks(&self) -> crate::network::Networks {
        crate::network::Networks::new(&self.root.join("networks"), &self.state.join("netns"))
    }

    /// The OCI runtime, with its state under ours.
    pub fn runtime(&self) -> crate::runtime::container::Runtime {
        crate::runtime::container::Runtime::new(&self.state.join("runtime"))
    }

    /// The cgroup path of a container: under its `--cgroup-parent`, or the
    /// runtime's default parent.
    pub fn cgroups_path(rec: &record::Record) -> String {
        match rec.host_config.cgroup_parent.trim_end_matches('/') {
            "" => format!("/berth/{}", rec.id),
            parent => format!("{parent}/{}", rec.id),
        }
    }

    /// Containers (ids) whose config references the named volume.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        let mut users = Vec::new();
        for id in self.containers.ids()? {
            if let Ok(rec) = self.containers.read(&id)
                && rec
                    .host_config
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.source == name)
            {
                users.push(rec.name.clone());
            }
        }
        Ok(users)
    }
}

/// The status `ps` shows for a state, with how long ago.
pub fn status_line(st: &record::State) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .to_std()
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    };
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", units::human_duration(since(&st.started_at))),
        Status::Paused => format!(
            "Up {} (Paused)",
            units::human_duration(since(&st.started_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            units::human_duration(since(&st.finished_at))
        ),
        Status::Exited => {
            let code = if st.exit_code < 0 {
                "unknown".to_string()
            } else {
                st.exit_code.to_string()
            };
            format!(
                "Exited ({code}) {} ago",
                units::human_duration(since(&st.finished_at))
            )
        }
        Status::Dead => "Dead".into(),
    }
}
