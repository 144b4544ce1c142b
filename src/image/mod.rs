//! Images: references, manifests, the content-addressed store, registries,
//! archives and safe layer unpacking.
pub mod digest;
pub mod manifest;
pub mod reference;
pub mod unpack;
