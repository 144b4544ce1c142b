//! The OCI runtime: a bundle's config.json → a [`plan::Plan`] → a container
//! made of namespaces, mounts, a cgroup and a process.

pub mod console;
pub mod container;
pub mod copyup;
pub mod default_spec;
pub mod events;
pub mod exec_stub;
pub mod features;
pub mod foreground;
pub mod hooks;
pub mod init;
pub mod lsm;
pub mod mount_options;
pub mod namespaces;
pub mod plan;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod seccomp;
pub mod state;
pub mod sync;
pub mod update;

/// The runtime-spec version we implement and report.
pub const SPEC_VERSION: &str = "1.2.0";
pub mod exec;
