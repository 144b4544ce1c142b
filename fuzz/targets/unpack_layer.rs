//! Fuzz body: the layer applier (src/image/unpack.rs) on fuzzer-made tar
//! streams (gzip and zstd too, by their magic). Whatever the stream holds,
//! unpacking into `tmp/root` must touch nothing beside it: `tmp/` still holds
//! only `root` and a canary file, the canary and `tmp/` are unchanged, and
//! every inode under `root` is linked only from under `root` (a hardlink
//! reaching out would show as a link count the walk cannot account for).

use std::collections::HashMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

use berth::image::manifest::Compression;
use berth::image::unpack;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Cap on the uncompressed stream: room for any interesting tar, small
/// enough that a bomb (gzip, zstd or sparse) stops within milliseconds.
const MAX_SIZE: u64 = 4 << 20;
/// How deep the link count walk descends; below it the count is skipped
/// (a fuzzer-made tree can nest thousands of levels).
const MAX_DEPTH: usize = 64;
const CANARY: &[u8] = b"berth fuzz canary\n";

pub fn run(data: &[u8]) {
    let tmp = tempfile::Builder::new()
        .prefix("berth-fuzz-unpack.")
        .tempdir()
        .expect("creating a temp dir");
    let root = tmp.path().join("root");
    let canary = tmp.path().join("canary");
    fs::create_dir(&root).expect("creating the layer dir");
    fs::write(&canary, CANARY).expect("writing the canary");
    let before = (
        fs::symlink_metadata(tmp.path()).expect("stat tmp"),
        fs::symlink_metadata(&canary).expect("stat the canary"),
    );

    // Refusing the layer is fine; escaping while doing so is not.
    let _ = unpack::unpack(data, Compression::detect(data, ""), &root, MAX_SIZE);

    let mut beside: Vec<String> = fs::read_dir(tmp.path())
        .expect("listing tmp")
        .map(|e| {
            e.expect("listing tmp")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["canary", "root"],
        "the layer wrote beside its root"
    );
    let root_meta = fs::symlink_metadata(&root).expect("stat the layer root");
    assert!(root_meta.is_dir(), "the layer root was replaced");
    let after = (
        fs::symlink_metadata(tmp.path()).expect("stat tmp"),
        fs::symlink_metadata(&canary).expect("stat the canary"),
    );
    for (was, is, what) in [
        (&before.0, &after.0, "tmp"),
        (&before.1, &after.1, "the canary"),
    ] {
        assert_eq!(
            (was.mode(), was.uid(), was.gid(), was.nlink(), was.ino()),
            (is.mode(), is.uid(), is.gid(), is.nlink(), is.ino()),
            "the layer changed {what}"
        );
    }
    assert_eq!(fs::read(&canary).expect("reading the canary"), CANARY);

    // Checked to be a directory: chmod may follow.
    rustix::fs::chmod(&root, Mode::from_raw_mode(0o700)).expect("opening up the layer root");
    let root_fd = rustix::fs::open(
        &root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("opening the layer root");
    let mut links = HashMap::new();
    if walk(&root_fd, 0, &mut links) {
        for ((_, ino), (nlink, seen)) in links {
            assert_eq!(
                nlink, seen,
                "inode {ino} under root is also linked from outside it"
            );
        }
    }
    tmp.close().expect("removing the temp dir");
}

/// Counts, per inode of every non-directory under `dir`, its link count and
/// how many names under the root it has. Opens directories up for removal
/// on the way (a layer may make them mode 000). False if the walk was cut.
fn walk(dir: &OwnedFd, depth: usize, links: &mut HashMap<(u64, u64), (u64, u64)>) -> bool {
    let mut complete = true;
    let entries = rustix::fs::Dir::read_from(dir).expect("reading a layer directory");
    let mut subdirs = Vec::new();
    for entry in entries {
        let entry = entry.expect("reading a layer directory");
        let name = entry.file_name().to_owned();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW).expect("stat an entry");
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            subdirs.push(name);
        } else {
            let counted = links
                .entry((st.st_dev, st.st_ino))
                .or_insert((st.st_nlink, 0));
            counted.1 += 1;
        }
    }
    for name in subdirs {
        if depth >= MAX_DEPTH {
            complete = false;
            continue;
        }
        // A directory, checked just above and not a symlink: chmod may follow.
        rustix::fs::chmodat(dir, &name, Mode::from_raw_mode(0o700), AtFlags::empty())
            .expect("opening up a layer directory");
        let sub = rustix::fs::openat(
            dir,
            &name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("opening a layer directory");
        complete &= walk(&sub, depth + 1, links);
    }
    complete
}
