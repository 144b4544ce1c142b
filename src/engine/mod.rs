//! The engine behind `berth`: containers made from images, each run under
//! its own shim, with state on disk so every command is a short-lived
//! process (daemonless, like podman).

pub mod config;
pub mod names;
pub mod restart;
pub mod spec;
pub mod units;
pub mod users;
