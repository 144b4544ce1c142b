//! `berth load`, `save`, `images`, `tag`, `rmi`, `image inspect` against the
//! fixture archives, checking what lands on disk.

#[path = "common/images.rs"]
mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::{TestRoot, fixture};

fn layer_with(t: &TestRoot, file: &str) -> std::path::PathBuf {
    t.layer_dirs()
        .into_iter()
        .map(|d| d.join("root"))
        .find(|d| d.join(file).symlink_metadata().is_ok())
        .unwrap_or_else(|| panic!("no layer has {file}"))
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn check_layers_image(t: &TestRoot) {
    assert_eq!(t.layer_dirs().len(), 2, "two layers");
    let lower = layer_with(t, "etc/keep");
    let upper = layer_with(t, "added");
    assert_eq!(
        fs::read_to_string(lower.join("etc/keep")).unwrap(),
        "keep\n"
    );
    let owned = fs::metadata(lower.join("etc/owned")).unwrap();
    assert_eq!(
        (
            owned.uid(),
            owned.gid(),
            owned.mode() & 0o7777,
            owned.mtime()
        ),
        (1000, 1001, 0o640, 1234567890)
    );
    assert_eq!(
        fs::metadata(lower.join("etc/setuid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        xattr(&lower.join("etc/xattr"), "user.berth").as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(
        fs::metadata(lower.join("etc/hard")).unwrap().ino(),
        fs::metadata(lower.join("etc/keep")).unwrap().ino()
    );
    assert_eq!(
        fs::read_link(lower.join("etc/sym")).unwrap(),
        Path::new("/etc/keep")
    );
    assert_eq!(
        fs::symlink_metadata(lower.join("etc/sym")).unwrap().uid(),
        1000
    );
    assert!(
        fs::metadata(lower.join("etc/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let null = fs::metadata(lower.join("etc/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(
        fs::read_to_string(lower.join("deep/a/b/c/file")).unwrap(),
        "deep\n"
    );
    // The upper layer in overlayfs form: a 0:0 char device and the opaque xattr.
    let gone = fs::symlink_metadata(upper.join("etc/gone")).unwrap();
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "etc/gone must be a whiteout device"
    );
    assert!(!upper.join("etc/.wh.gone").exists());
    assert!(!upper.join("opaque/.wh..wh..opq").exists());
    assert_eq!(
        xattr(&upper.join("opaque"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        fs::metadata(upper.join("opaque"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o750
    );
    assert_eq!(
        fs::read_to_string(upper.join("opaque/new")).unwrap(),
        "new\n"
    );
    assert!(
        t.leftovers()
            .iter()
            .all(|l| !l.starts_with("tmp/") && !l.contains(".tmp-")),
        "temp files left: {:?}",
        t.leftovers()
    );
}

#[test]
fn loads_gzip_zstd_and_plain_layers_with_every_entry_kind() {
    for archive in ["layers-oci.tar", "layers-zstd.tar", "layers-plain.tar"] {
        let t = TestRoot::new();
        let out = t.ok(&["load", "-i", fixture(archive).to_str().unwrap()]);
        assert!(out.contains("Loaded image: localhost/layers:"), "{out}");
        check_layers_image(&t);
    }
}

#[test]
fn layers_are_shared_between_images_and_not_unpacked_twice() {
    let t = TestRoot::new();
    t.ok(&["load", "-i", fixture("layers-oci.tar").to_str().unwrap()]);
    let before: Vec<_> = t
        .layer_dirs()
        .iter()
        .map(|d| fs::metadata(d).unwrap().ino())
        .collect();
    t.ok(&["load", "-i", fixture("layers-zstd.tar").to_str().unwrap()]);
    let after: Vec<_> = t
        .layer_dirs()
        .iter()
        .map(|d| fs::metadata(d).unwrap().ino())
        .collect();
    assert_eq!(
        before, after,
        "the same diffIDs must reuse the unpacked layers"
    );
    let images = t.ok(&["images"]);
    assert!(
        images.contains("latest") && images.contains("zstd"),
        "{images}"
    );
}

#[test]
fn loads_docker_archive_oci_archive_and_layout_to_one_image() {
    let t = TestRoot::new();
    t.ok(&["load", "-i", fixture("busybox-oci.tar").to_str().unwrap()]);
    t.ok(&[
        "load",
        "-i",
        fixture("busybox-docker.tar").to_str().unwrap(),
    ]);
    t.ok(&["load", "--layout", fixture("busybox.oci").to_str().unwrap()]);
    let table = t.ok(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert_eq!(lines.len(), 2, "one image under one name: {table}");
    assert!(
        lines[1].starts_with("localhost/busybox") && lines[1].contains("latest"),
        "{table}"
    );
    let rootfs = t.layer_dirs()[0].join("root");
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(fs::metadata(rootfs.join("home/user")).unwrap().uid(), 1000);
    assert_eq!(
        fs::metadata(rootfs.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );

    let json = t.ok(&["images", "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(row["Repository"], "localhost/busybox");
    assert_eq!(row["Tag"], "latest");
    assert!(row["ID"].as_str().unwrap().starts_with("sha256:"));

    let inspect: serde_json::Value =
        serde_json::from_str(&t.ok(&["image", "inspect", "localhost/busybox"])).unwrap();
    assert_eq!(inspect[0]["Config"]["config"]["Cmd"][0], "sh");
    assert_eq!(inspect[0]["RepoTags"][0], "localhost/busybox:latest");
    assert_eq!(inspect[0]["Id"], row["ID"]);
}

#[test]
fn multi_platform_index_selects_platform() {
    let t = TestRoot::new();
    let archive = fixture("multiarch-oci.tar");
    t.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(t.layer_dirs()[0].join("root/arch")).unwrap(),
        "amd64\n"
    );
    let t = TestRoot::new();
    t.ok(&[
        "load",
        "--platform",
        "linux/arm64",
        "-i",
        archive.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(t.layer_dirs()[0].join("root/arch")).unwrap(),
        "arm64\n"
    );
    let err = t.fails(&[
        "load",
        "--platform",
        "linux/s390x",
        "-i",
        archive.to_str().unwrap(),
    ]);
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64/v8"),
        "{err}"
    );
}

#[test]
fn save_then_load_round_trips() {
    let mut t = TestRoot::new();
    t.allow("saved.tar");
    t.ok(&["load", "-i", fixture("layers-oci.tar").to_str().unwrap()]);
    let saved = t.dir.path().join("saved.tar");
    t.ok(&["save", "-o", saved.to_str().unwrap(), "localhost/layers"]);
    let id = t.ok(&["images", "-q", "--no-trunc"]);
    let u = TestRoot::new();
    u.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(u.ok(&["images", "-q", "--no-trunc"]), id);
    check_layers_image(&u);
    // skopeo reads what berth wrote.
    let out = std::process::Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", saved.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo cannot read the saved archive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tag_and_rmi_remove_names_then_image_then_unused_layers() {
    let t = TestRoot::new();
    t.ok(&["load", "-i", fixture("layers-oci.tar").to_str().unwrap()]);
    t.ok(&["tag", "localhost/layers", "example.com/team/app:v1"]);
    let table = t.ok(&["images"]);
    assert!(
        table.contains("example.com/team/app") && table.contains("v1"),
        "{table}"
    );
    let id = t.ok(&["images", "-q"]).lines().next().unwrap().to_string();
    // By ID with two names: refused without -f.
    let err = t.fails(&["rmi", &id]);
    assert!(err.contains("several names"), "{err}");
    assert_eq!(
        t.ok(&["rmi", "example.com/team/app:v1"]).trim(),
        "Untagged: example.com/team/app:v1"
    );
    assert_eq!(t.layer_dirs().len(), 2);
    let out = t.ok(&["rmi", "localhost/layers:latest"]);
    assert!(
        out.contains("Untagged: localhost/layers:latest") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    assert!(
        t.leftovers().is_empty(),
        "left after rmi: {:?}",
        t.leftovers()
    );
    let err = t.fails(&["rmi", "localhost/layers"]);
    assert!(err.contains("no such image"), "{err}");
}

#[test]
fn rmi_refuses_an_image_a_container_uses() {
    let t = TestRoot::new();
    t.ok(&["load", "-i", fixture("layers-oci.tar").to_str().unwrap()]);
    let store = berth::image::Store::open(&t.root()).unwrap();
    let image = store.resolve("localhost/layers").unwrap();
    store.add_user(&image.id, "web").unwrap();
    assert!(store.image_in_use(&image.id).unwrap());
    let err = t.fails(&["rmi", "localhost/layers"]);
    assert!(err.contains("in use") && err.contains("web"), "{err}");
    // -f removes only the name; the layers stay for the container.
    t.ok(&["rmi", "-f", "localhost/layers"]);
    assert_eq!(t.layer_dirs().len(), 2);
    assert!(image.layer_dirs.iter().all(|d| d.is_dir()));
    store.remove_user(&image.id, "web").unwrap();
    t.ok(&["rmi", &image.id.to_string()]);
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[test]
fn the_engine_api_resolves_layer_dirs_lowest_first() {
    let t = TestRoot::new();
    t.ok(&["load", "-i", fixture("layers-oci.tar").to_str().unwrap()]);
    let store = berth::image::Store::open(&t.root()).unwrap();
    let image = store.resolve("localhost/layers:latest").unwrap();
    assert_eq!(image.layer_dirs.len(), 2);
    assert!(image.layer_dirs[0].join("etc/keep").is_file());
    assert!(image.layer_dirs[1].join("added").is_file());
    assert_eq!(
        image.config.config().as_ref().and_then(|c| c.cmd().clone()),
        Some(vec!["sh".to_string()])
    );
    assert_eq!(store.resolve(&image.id.short()[..8]).unwrap().id, image.id);
}

#[test]
fn bad_input_fails_with_one_line_and_leaves_nothing() {
    let mut t = TestRoot::new();
    t.allow("junk.tar");
    let missing = t.dir.path().join("missing.tar");
    let err = t.fails(&["load", "-i", missing.to_str().unwrap()]);
    assert!(err.contains("missing.tar"), "{err}");
    let junk = t.dir.path().join("junk.tar");
    fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let err = t.fails(&["load", "-i", junk.to_str().unwrap()]);
    assert!(err.contains("junk.tar"), "{err}");
    let err = t.fails(&["tag", "localhost/nothing", "x"]);
    assert!(err.contains("no such image: localhost/nothing"), "{err}");
    let err = t.fails(&["pull", "Bad//Ref"]);
    assert!(err.contains("invalid reference \"Bad//Ref\""), "{err}");
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
    // Usage errors exit 125, like docker.
    assert_eq!(
        t.berth(&["load", "--no-such-flag"]).status.code(),
        Some(125)
    );
}

#[test]
fn concurrent_loads_of_one_image_both_succeed_and_store_it_once() {
    let t = TestRoot::new();
    let archive = fixture("busybox-oci.tar");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            t.cmd(&["load", "-q", "-i", archive.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut h in handles {
        assert!(h.wait().unwrap().success());
    }
    assert_eq!(t.layer_dirs().len(), 1);
    assert!(common::dir_names(&t.root().join("tmp")).is_empty());
}
