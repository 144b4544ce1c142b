//! Hostile layers (containerd CVE-2021-32760, umoci CVE-2021-29136, docker
//! CVE-2018-15664): each is refused with an error naming the entry, nothing
//! of it stays in the store, and nothing is written outside it.

#[path = "common/images.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{TestRoot, fixture};

/// Every file under `dir` whose name starts with `berth-hostile`.
fn hostile_files(dir: &Path, depth: usize, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("berth-hostile") {
            found.push(e.path().display().to_string());
        }
        if depth > 0 && e.file_type().is_ok_and(|t| t.is_dir()) {
            hostile_files(&e.path(), depth - 1, found);
        }
    }
}

/// The places an escape would land: the test dir around the store, the
/// host's `/`, `/etc`, `/tmp`.
fn escapes(t: &TestRoot) -> Vec<String> {
    let mut found = Vec::new();
    hostile_files(t.dir.path(), 12, &mut found);
    for dir in ["/", "/etc", "/tmp"] {
        hostile_files(Path::new(dir), 0, &mut found);
    }
    found
}

#[test]
fn every_hostile_layer_is_refused_and_leaves_nothing() {
    let cases = [
        ("dotdot", "../berth-hostile-dotdot"),
        ("absolute", "/berth-hostile-absolute"),
        ("symlink-parent", "evil/berth-hostile-symlink"),
        ("symlink-parent-relative", "a/evil/berth-hostile-relative"),
        ("hardlink-dotdot", "passwd"),
        ("hardlink-via-symlink", "passwd"),
        ("whiteout-dotdot", "dir/.wh..."),
        ("root-symlink", "."),
        ("pax-bomb", "(tar header)"),
    ];
    let passwd = std::fs::read("/etc/passwd").unwrap();
    for (name, entry) in cases {
        let t = TestRoot::new();
        let archive = fixture(&format!("hostile/{name}.tar"));
        let err = t.fails(&["load", "-i", archive.to_str().unwrap()]);
        assert!(
            err.contains(&format!("entry {entry:?}")),
            "{name}: error must name the entry {entry:?}: {err}"
        );
        assert!(
            t.leftovers().is_empty(),
            "{name}: left in the store: {:?}",
            t.leftovers()
        );
        assert!(
            escapes(&t).is_empty(),
            "{name}: written outside: {:?}",
            escapes(&t)
        );
    }
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd);
}

#[test]
fn a_decompression_bomb_stops_at_the_size_limit() {
    let t = TestRoot::new();
    let archive = fixture("hostile/bomb.tar");
    let err = t.fails(&[
        "--max-layer-size",
        "64M",
        "load",
        "-i",
        archive.to_str().unwrap(),
    ]);
    assert!(err.contains("size limit of 67108864 bytes"), "{err}");
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
    // The environment sets the same limit.
    let out = t
        .cmd(&["load", "-i", archive.to_str().unwrap()])
        .env("BERTH_MAX_LAYER_SIZE", "1M")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Under a big enough limit the same layer is fine.
    t.ok(&[
        "--max-layer-size",
        "512M",
        "load",
        "-i",
        archive.to_str().unwrap(),
    ]);
}

/// A symlink planted by an earlier layer, or replaced by a directory in the
/// same layer, cannot redirect a later entry: each layer is unpacked into its
/// own directory, so the entry lands inside it (overlayfs then shows the
/// upper layer's directory over the lower layer's symlink).
#[test]
fn symlinks_from_earlier_layers_or_entries_stay_inside() {
    for (name, inside) in [
        ("layered-symlink", "link/berth-hostile-layer2"),
        ("chmod-via-symlink", "evil/berth-hostile-chmod"),
    ] {
        let t = TestRoot::new();
        t.ok(&[
            "load",
            "-i",
            fixture(&format!("hostile/{name}.tar")).to_str().unwrap(),
        ]);
        let found = escapes(&t);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert!(
            found[0].starts_with(&t.root().join("layers").display().to_string())
                && found[0].ends_with(inside),
            "{name}: {found:?}"
        );
        assert_eq!(
            std::fs::metadata("/etc").unwrap().permissions().mode() & 0o777,
            0o755
        );
    }
}
