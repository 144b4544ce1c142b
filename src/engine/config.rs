//! What a container was asked to be: the image's config merged with the
//! flags of `run`/`create`. Saved in the container's record and shown by
//! `inspect` in docker's shape (Config and HostConfig).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::restart::RestartPolicy;

/// docker's `Config`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub image: String,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stop_signal: String,
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    #[serde(default)]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
}

/// One mount asked for with -v, --mount or --tmpfs (or an image volume).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct MountSpec {
    /// bind, volume or tmpfs.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Host path (bind) or volume name (volume); empty for tmpfs.
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// tmpfs options (size=…, mode=…).
    #[serde(default)]
    pub options: Vec<String>,
    /// An anonymous volume (from the image, or `-v /path`): `rm -v` removes it.
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ulimit {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Soft")]
    pub soft: u64,
    #[serde(rename = "Hard")]
    pub hard: u64,
}

/// How the seccomp profile is chosen (`--security-opt seccomp=…`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum SeccompChoice {
    #[default]
    Default,
    Unconfined,
    /// The profile's JSON, read when the container was created.
    Profile(String),
}

/// docker's `HostConfig`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub mounts: Vec<MountSpec>,
    pub readonly_rootfs: bool,
    /// Bytes; 0 = unlimited.
    pub memory: i64,
    /// Memory + swap in bytes; -1 = unlimited swap; 0 = unset.
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: u64,
    pub cpuset_cpus: String,
    /// 0 = unset.
    pub pids_limit: i64,
    pub ulimits: Vec<Ulimit>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub init: bool,
    /// none, host, bridge (or ""), container:NAME, or a network's name.
    pub network_mode: String,
    /// `-p`, in docker's shape: "80/tcp" → host bindings.
    #[serde(default)]
    pub port_bindings: crate::network::ports::PortBindings,
    /// `-P`: publish every exposed port on a free host port.
    #[serde(default)]
    pub publish_all_ports: bool,
    /// `--cgroup-parent`: the cgroup (from each hierarchy's root) the
    /// container's own is made under; empty is `/berth`.
    #[serde(default)]
    pub cgroup_parent: String,
    /// `--log-opt`: the json-file driver's rotation.
    #[serde(default)]
    pub log_config: LogConfig,
}

/// docker's `LogConfig`: the driver (json-file, the only one) and its
/// options as given (`max-size`, `max-file`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Config")]
    pub config: BTreeMap<String, String>,
}

impl LogConfig {
    /// The options of `--log-opt KEY=VALUE`, checked.
    pub fn from_opts(opts: &[String]) -> Result<LogConfig, String> {
        let mut config = BTreeMap::new();
        for o in opts {
            let Some((k, v)) = o.split_once('=') else {
                return Err(format!("invalid --log-opt {o:?}: use KEY=VALUE"));
            };
            match k {
                "max-size" => {
                    let n = super::units::parse_size(v)
                        .map_err(|e| format!("--log-opt max-size: {e}"))?;
                    if n == 0 {
                        return Err("--log-opt max-size must be more than 0".into());
                    }
                }
                "max-file" => {
                    if !v.parse::<u32>().is_ok_and(|n| n >= 1) {
                        return Err(format!(
                            "invalid --log-opt max-file={v:?}: a count of 1 or more"
                        ));
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown --log-opt {k:?}: the json-file driver takes max-size and max-file"
                    ));
                }
            }
            config.insert(k.to_string(), v.to_string());
        }
        Ok(LogConfig {
            kind: "json-file".into(),
            config,
        })
    }

    /// The rotation: berth's default (10 MiB, one older file) without
    /// options; with `max-size` alone, docker's one file.
    pub fn rotation(&self) -> super::logs::Rotation {
        let mut r = super::logs::Rotation::default();
        if let Some(n) = self
            .config
            .get("max-size")
            .and_then(|v| super::units::parse_size(v).ok())
        {
            r.max_size = n.max(1);
            r.max_files = 1;
        }
        if let Some(n) = self
            .config
            .get("max-file")
            .and_then(|v| v.parse::<u32>().ok())
        {
            r.max_files = n.max(1);
        }
        r
    }
}

/// Everything spec generation needs beyond the config: decided at start.
#[derive(Clone, Debug, Default)]
pub struct RuntimeContext {
    pub rootfs: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
    /// Host files bound at /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc_files: Vec<(PathBuf, &'static str)>,
    /// Resolved mounts: (host source, container destination, options).
    pub binds: Vec<(PathBuf, String, Vec<String>)>,
    pub tmpfs: Vec<(String, Vec<String>)>,
    /// The init binary to bind at /dev/init (`--init`).
    pub init_binary: Option<PathBuf>,
    pub cgroups_path: String,
    /// A network namespace to join (by path); None makes a new one.
    pub netns_path: Option<PathBuf>,
    /// Share the host's network namespace.
    pub host_network: bool,
    /// docker's default seccomp profile (JSON), when the choice is Default.
    pub default_seccomp: Option<serde_json::Value>,
}
