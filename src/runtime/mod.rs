//! The OCI runtime: a bundle's config.json → a [`plan::Plan`] → a container
//! made of namespaces, mounts, a cgroup and a process.

pub mod mount_options;
pub mod plan;
pub mod state;
pub mod sync;
