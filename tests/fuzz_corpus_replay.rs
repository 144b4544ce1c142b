//! Replays the fuzz corpus on stable Rust: every saved input
//! (fuzz/corpus/<target>/) and every crash fuzzing found
//! (fuzz/regressions/<target>/) goes through the same target body that
//! `make fuzz` runs under libFuzzer (fuzz/targets/<target>.rs).

#[path = "../fuzz/targets/image_manifest.rs"]
mod image_manifest;
#[path = "../fuzz/targets/image_reference.rs"]
mod image_reference;
#[path = "../fuzz/targets/runtime_plan.rs"]
mod runtime_plan;
#[path = "../fuzz/targets/unpack_layer.rs"]
mod unpack_layer;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        // A target may have no regressions yet.
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("listing the corpus").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no saved inputs for fuzz target {target}"
    );
    files
}

fn replay(target: &str, body: fn(&[u8])) {
    for path in inputs(target) {
        let data = std::fs::read(&path).expect("reading a corpus file");
        // Shown with the panic, to name the input that failed.
        eprintln!("{target}: {}", path.display());
        body(&data);
    }
}

#[test]
fn unpack_layer_corpus() {
    replay("unpack_layer", unpack_layer::run);
}

#[test]
fn image_reference_corpus() {
    replay("image_reference", image_reference::run);
}

#[test]
fn image_manifest_corpus() {
    replay("image_manifest", image_manifest::run);
}

#[test]
fn runtime_plan_corpus() {
    replay("runtime_plan", runtime_plan::run);
}
