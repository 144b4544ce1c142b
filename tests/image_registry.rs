//! `berth pull` and `berth login` against a real registry (Debian's
//! docker-registry on a loopback port), images pushed by skopeo in OCI and
//! Docker schema2 form, with no auth, basic auth and a token server.

#[path = "common/images.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Auth, ChildGuard, Registry, StallingProxy, TestRoot, fixture};

fn archive(name: &str) -> String {
    format!("oci-archive:{}", fixture(name).display())
}

fn pull_ok(t: &TestRoot, args: &[&str]) -> String {
    let mut all = vec!["pull", "--insecure"];
    all.extend_from_slice(args);
    t.ok(&all)
}

#[test]
fn pulls_oci_and_schema2_images_and_skips_present_layers() {
    let reg = Registry::start(Auth::None);
    reg.push(&archive("layers-oci.tar"), "test/layers:oci", "oci");
    reg.push(&archive("layers-oci.tar"), "test/layers:v2s2", "v2s2");
    let t = TestRoot::new();
    let out = pull_ok(&t, &[&format!("{}/test/layers:oci", reg.host())]);
    assert!(
        out.contains("Digest: sha256:") && out.contains("Image ID: sha256:"),
        "{out}"
    );
    assert_eq!(t.layer_dirs().len(), 2);
    let store = berth::image::Store::open(&t.root()).unwrap();
    let oci = store
        .resolve(&format!("{}/test/layers:oci", reg.host()))
        .unwrap();
    assert_eq!(
        oci.record.manifest.media_type,
        berth::image::manifest::OCI_MANIFEST
    );
    assert!(oci.layer_dirs[1].join("added").is_file());

    // Schema2: the same layers, already present, are not fetched again.
    let out = t
        .cmd(&[
            "pull",
            "--insecure",
            &format!("{}/test/layers:v2s2", reg.host()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("already exists").count(), 2, "{stderr}");
    let v2 = store
        .resolve(&format!("{}/test/layers:v2s2", reg.host()))
        .unwrap();
    assert_eq!(
        v2.record.manifest.media_type,
        berth::image::manifest::DOCKER_MANIFEST
    );
    assert_eq!(t.layer_dirs().len(), 2);

    // By digest, and -q prints the ID alone.
    let digest = &oci.record.repo_digests[0];
    let by_digest = pull_ok(&t, &["-q", digest]);
    assert_eq!(by_digest.trim(), oci.id.to_string());
    let images = t.ok(&["images"]);
    assert!(
        images.contains("test/layers") && images.contains("oci") && images.contains("v2s2"),
        "{images}"
    );
}

#[test]
fn pulls_a_platform_from_a_multi_platform_index() {
    let reg = Registry::start(Auth::None);
    reg.push(&archive("multiarch-oci.tar"), "test/multi:latest", "oci");
    let t = TestRoot::new();
    let name = format!("{}/test/multi:latest", reg.host());
    pull_ok(&t, &[&name]);
    assert_eq!(
        std::fs::read_to_string(t.layer_dirs()[0].join("root/arch")).unwrap(),
        "amd64\n"
    );
    let u = TestRoot::new();
    pull_ok(&u, &["--platform", "linux/arm64/v8", &name]);
    assert_eq!(
        std::fs::read_to_string(u.layer_dirs()[0].join("root/arch")).unwrap(),
        "arm64\n"
    );
    let err = u.fails(&["pull", "--insecure", "--platform", "linux/riscv64", &name]);
    assert!(
        err.contains("no manifest for platform linux/riscv64"),
        "{err}"
    );
    // A registry listed as insecure in ROOT/registries.json needs no flag.
    let settings = format!(r#"{{"insecure": ["{}"]}}"#, reg.host());
    std::fs::write(u.root().join("registries.json"), settings).unwrap();
    u.ok(&["pull", "-q", &name]);
    let err = u.fails(&["pull", &format!("{}/test/nothing:latest", reg.host())]);
    assert!(err.contains("404") && err.contains("test/nothing"), "{err}");
}

fn check_auth(reg: &Registry) {
    let name = format!("{}/test/secret:latest", reg.host());
    let t = TestRoot::new();
    let err = t.fails(&["pull", "--insecure", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    let err = t.fails(&["pull", "--insecure", "--creds", "tester:wrong", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
    pull_ok(&t, &["--creds", "tester:s3cret", &name]);
    assert_eq!(t.layer_dirs().len(), 2);

    let u = TestRoot::new();
    let err = u.fails(&[
        "login",
        "--insecure",
        "-u",
        "tester",
        "-p",
        "wrong",
        &reg.host(),
    ]);
    assert!(err.contains("unauthorized"), "{err}");
    assert!(!u.root().join("auth.json").exists());
    assert!(
        u.ok(&[
            "login",
            "--insecure",
            "-u",
            "tester",
            "-p",
            "s3cret",
            &reg.host()
        ])
        .contains("Login Succeeded")
    );
    let auth = u.root().join("auth.json");
    assert_eq!(
        std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    pull_ok(&u, &[&name]);
    assert!(
        u.ok(&["logout", &reg.host()])
            .contains("Removing login credentials")
    );
    let err = u.fails(&["pull", "--insecure", &name]);
    assert!(err.contains("unauthorized"), "{err}");
}

#[test]
fn basic_auth() {
    let reg = Registry::start(Auth::Basic {
        user: "tester",
        password: "s3cret",
    });
    reg.push(&archive("layers-oci.tar"), "test/secret:latest", "oci");
    check_auth(&reg);
}

#[test]
fn bearer_token_auth() {
    let reg = Registry::start(Auth::Token {
        user: "tester",
        password: "s3cret",
    });
    reg.push(&archive("layers-oci.tar"), "test/secret:latest", "v2s2");
    let before = reg.token_requests();
    check_auth(&reg);
    assert!(
        reg.token_requests() > before,
        "berth never asked the token server"
    );
}

#[test]
fn a_corrupted_blob_is_refused_and_not_kept() {
    let reg = Registry::start(Auth::None);
    reg.push(&archive("layers-oci.tar"), "test/layers:latest", "oci");
    let t = TestRoot::new();
    let name = format!("{}/test/layers:latest", reg.host());
    // Find the upper layer's blob through a throwaway pull, then tamper it.
    let scratch = TestRoot::new();
    pull_ok(&scratch, &[&name]);
    let store = berth::image::Store::open(&scratch.root()).unwrap();
    let layer = store.resolve(&name).unwrap().record.layers[1]
        .blob
        .digest
        .clone();
    let file = reg.blob_file(layer.hex());
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let err = t.fails(&["pull", "--insecure", &name]);
    assert!(
        err.contains("digest mismatch") && err.contains(layer.hex()),
        "{err}"
    );
    assert!(!t.root().join("blobs/sha256").join(layer.hex()).exists());
    assert!(
        t.leftovers()
            .iter()
            .all(|l| !l.starts_with("images/") && !l.starts_with("tmp/") && !l.contains(".tmp-")),
        "{:?}",
        t.leftovers()
    );
    assert!(t.ok(&["images", "-q"]).trim().is_empty());
}

#[test]
fn kill_during_pull_leaves_a_store_a_second_pull_completes() {
    let reg = Registry::start(Auth::None);
    reg.push(&archive("random-oci.tar"), "test/random:latest", "oci");
    let proxy = StallingProxy::start(reg.port, 256 << 10);
    let name = format!("127.0.0.1:{}/test/random:latest", proxy.port);
    let t = TestRoot::new();
    let mut child = ChildGuard(t.cmd(&["pull", "--insecure", "-q", &name]).spawn().unwrap());
    // Wait until the layer is half-fetched: its temp blob exists and grows.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let partial = common::dir_names(&t.root().join("tmp"))
            .iter()
            .any(|n| n.starts_with("layer-"));
        if partial {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pull never started its layer"
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the pull ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Nothing looks complete.
    let layers: Vec<String> = common::dir_names(&t.root().join("layers"))
        .into_iter()
        .filter(|n| !n.starts_with(".tmp-"))
        .collect();
    assert!(layers.is_empty(), "a half layer looks complete: {layers:?}");
    assert!(common::dir_names(&t.root().join("images")).is_empty());
    proxy
        .stall
        .store(false, std::sync::atomic::Ordering::SeqCst);
    t.ok(&["pull", "--insecure", "-q", &name]);
    assert_eq!(t.layer_dirs().len(), 1);
    assert_eq!(
        std::fs::metadata(t.layer_dirs()[0].join("root/random"))
            .unwrap()
            .len(),
        4 << 20
    );
    assert!(common::dir_names(&t.root().join("tmp")).is_empty());
}

#[test]
fn two_concurrent_pulls_both_succeed_and_store_once() {
    let reg = Registry::start(Auth::None);
    reg.push(&archive("busybox-oci.tar"), "test/busybox:latest", "oci");
    let t = TestRoot::new();
    let name = format!("{}/test/busybox:latest", reg.host());
    let kids: Vec<_> = (0..2)
        .map(|_| {
            ChildGuard(
                t.cmd(&["pull", "--insecure", "-q", &name])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for mut k in kids {
        assert!(k.0.wait().unwrap().success());
    }
    assert_eq!(t.layer_dirs().len(), 1);
    assert_eq!(t.ok(&["images", "-q"]).lines().count(), 1);
}
