//! berth: a container engine (`berth`) and an OCI runtime (`berth-runtime`)
//! built from Linux primitives.
//!
//! Data flows one way: the engine turns images and flags into an OCI bundle
//! and hands it to [`runtime`], which turns the OCI config into a plan and
//! executes it with namespaces, mounts, cgroups and a process. Nothing in
//! `runtime` knows about images or the engine.

pub mod cgroups;
pub mod dirs;
pub mod engine;
pub mod fault;
pub mod image;
pub mod inroot;
pub mod linux;
pub mod logging;
pub mod network;
pub mod overlay;
pub mod runtime;
