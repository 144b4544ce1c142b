//! Directory listings as the stores read them.

use std::fs;
use std::io;
use std::path::Path;

/// The entries of `dir`; none when it does not exist (a store not used
/// yet). Entries the kernel fails to return one by one are skipped.
pub fn entries(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(e) => Ok(e.flatten().collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
