//! Images: references, manifests, the content-addressed store, registries,
//! archives and safe layer unpacking.
//!
//! Data flows one way: a [`registry`] client or an [`archive`] is a
//! [`store::BlobSource`]; [`Store::import`] verifies every blob against its
//! digest and size, [`unpack`]s each layer once into its own directory keyed
//! by diffID, and records the image.
//!
//! # What the engine does with it
//!
//! - `Store::open(root)` on the engine root (`--root`, default
//!   `/var/lib/berth`); the store lives directly under it (see [`store`]).
//! - `Store::resolve("busybox")` gives an [`Image`]: its ID, the OCI
//!   `ImageConfiguration` (entrypoint, env, user, workdir…) and
//!   `layer_dirs`, lowest layer first. Mount them read-only as overlayfs
//!   lowerdirs, highest first:
//!   `lowerdir=layer_dirs.rev().join(":")`. Whiteouts are already in
//!   overlayfs form (0:0 char devices, `trusted.overlay.opaque=y`), so the
//!   mount needs no options beyond the upper and work dirs.
//! - `Store::add_user(&image.id, container_id)` when a container is created
//!   and `Store::remove_user` when it is removed: `rmi` refuses an image
//!   that has users (`-f` removes only the name, and the layers stay).
//! - `registry::pull` and `archive::load_archive` for `run` of an image not
//!   present yet.

pub mod archive;
pub mod auth;
pub mod digest;
pub mod manifest;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod store;
pub mod targuard;
pub mod unpack;

pub use store::{Image, Store};
