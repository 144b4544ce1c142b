//! How the store reports layer transfers; the CLI draws bars or lines.

/// Called from several layer threads at once.
pub trait Progress: Sync {
    /// A layer's transfer begins; `size` when the source knows it.
    fn layer_started(&self, layer: &str, size: Option<u64>);
    fn layer_bytes(&self, layer: &str, bytes: u64);
    /// The layer was already in the store.
    fn layer_skipped(&self, layer: &str);
    fn layer_done(&self, layer: &str);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn layer_started(&self, _: &str, _: Option<u64>) {}
    fn layer_bytes(&self, _: &str, _: u64) {}
    fn layer_skipped(&self, _: &str) {}
    fn layer_done(&self, _: &str) {}
}
