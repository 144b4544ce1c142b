//! Images: references, manifests, the content-addressed store, registries,
//! archives and safe layer unpacking.
pub mod archive;
pub mod auth;
pub mod digest;
pub mod manifest;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use store::{Image, Store};
