//! Hostile input, in bulk: a corpus of bad config.json files for
//! `berth-runtime create`, bad command-line values for both binaries, and
//! bad image archives (truncated, wrong digest, a missing blob, a config
//! that is not JSON, a zero-filled bomb bigger than the disk). Each: a
//! clear one-line error, a non-zero exit, nothing written outside the
//! store and nothing left behind (the fixtures' leak checkers).
//! tests/runtime_bad_input.rs and tests/image_hostile.rs hold the
//! hand-written classes (escaping mounts and symlinks, hostile layers);
//! this is the breadth.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::engine::{Berth, IMAGE};
use common::*;
use serde_json::{Value, json};
use sha2::Digest;

/// Sets `path` (`/a/b/0/c`) in `v`, making objects on the way.
fn set(v: &mut Value, path: &str, new: Value) {
    let mut cur = v;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        cur = match cur {
            Value::Array(a) => {
                let n: usize = p.parse().expect("array index");
                &mut a[n]
            }
            _ => {
                if !cur.is_object() {
                    *cur = json!({});
                }
                let o = cur.as_object_mut().unwrap();
                o.entry(p.to_string()).or_insert(Value::Null)
            }
        };
        if last {
            *cur = new;
            return;
        }
    }
}

#[track_caller]
fn one_line(err: &str, what: &str) {
    assert_eq!(
        err.trim().lines().count(),
        1,
        "{what}: not one line: {err:?}"
    );
}

/// Config changes `create` must refuse.
fn refused_configs() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("ociVersion a number", "/ociVersion", json!(1)),
        ("process a string", "/process", json!("sh")),
        ("args of numbers", "/process/args", json!([1, 2])),
        ("args null", "/process/args", Value::Null),
        ("args a NUL", "/process/args", json!(["sh\u{0}x"])),
        ("env a map", "/process/env", json!({"A": "B"})),
        ("env without =", "/process/env", json!(["NOVALUE"])),
        ("cwd empty", "/process/cwd", json!("")),
        ("uid negative", "/process/user/uid", json!(-1)),
        ("uid too big", "/process/user/uid", json!(4294967296u64)),
        ("uid a name", "/process/user/uid", json!("root")),
        ("gids negative", "/process/user/additionalGids", json!([-5])),
        (
            "rlimit negative",
            "/process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 10}]),
        ),
        (
            "rlimit soft over hard",
            "/process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 10}]),
        ),
        (
            "rlimit lowercase",
            "/process/rlimits",
            json!([{"type": "nofile", "soft": 1, "hard": 1}]),
        ),
        (
            "unknown capability",
            "/process/capabilities/bounding",
            json!(["CAP_BOGUS"]),
        ),
        (
            "capability a number",
            "/process/capabilities/effective",
            json!([21]),
        ),
        ("oomScoreAdj over 1000", "/process/oomScoreAdj", json!(5000)),
        (
            "oomScoreAdj a string",
            "/process/oomScoreAdj",
            json!("high"),
        ),
        (
            "root path missing",
            "/root/path",
            json!("/nonexistent/rootfs"),
        ),
        ("root path empty", "/root/path", json!("")),
        ("hostname a number", "/hostname", json!(7)),
        ("hostname too long", "/hostname", json!("h".repeat(300))),
        (
            "namespace type unknown",
            "/linux/namespaces",
            json!([{"type": "time-travel"}]),
        ),
        (
            "namespace path missing",
            "/linux/namespaces",
            json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "network", "path": "/proc/999999999/ns/net"}]),
        ),
        (
            "namespace path relative",
            "/linux/namespaces",
            json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "network", "path": "ns/net"}]),
        ),
        (
            "namespace twice",
            "/linux/namespaces",
            json!([{"type": "pid"}, {"type": "pid"}, {"type": "mount"}]),
        ),
        (
            "memory limit a string",
            "/linux/resources/memory/limit",
            json!("1g"),
        ),
        (
            "memory limit tiny",
            "/linux/resources/memory/limit",
            json!(1),
        ),
        (
            "pids limit a string",
            "/linux/resources/pids/limit",
            json!("ten"),
        ),
        (
            "cpu shares negative",
            "/linux/resources/cpu/shares",
            json!(-3),
        ),
        (
            "cpu quota without period",
            "/linux/resources/cpu/quota",
            json!("x"),
        ),
        (
            "cgroupsPath escaping",
            "/linux/cgroupsPath",
            json!("/../../escape"),
        ),
        ("cgroupsPath root", "/linux/cgroupsPath", json!("/")),
        (
            "mount destination relative",
            "/mounts/0/destination",
            json!("proc"),
        ),
        (
            "mount destination a number",
            "/mounts/0/destination",
            json!(5),
        ),
        (
            "mount of an unknown type",
            "/mounts",
            json!([{"destination": "/proc", "type": "no-such-fs", "source": "x"}]),
        ),
        (
            "sysctl escaping /proc/sys",
            "/linux/sysctl",
            json!({"../../../tmp/berth-hostile-sysctl": "1"}),
        ),
        (
            "sysctl unknown",
            "/linux/sysctl",
            json!({"kernel.no_such_knob": "1"}),
        ),
        (
            "device type unknown",
            "/linux/devices",
            json!([{"path": "/dev/weird", "type": "z", "major": 1, "minor": 3}]),
        ),
        (
            "device major negative",
            "/linux/devices",
            json!([{"path": "/dev/weird", "type": "c", "major": -1, "minor": 3}]),
        ),
        (
            "maskedPaths relative",
            "/linux/maskedPaths",
            json!(["proc/kcore"]),
        ),
        (
            "seccomp action unknown",
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_BOGUS"}),
        ),
        (
            "seccomp arch unknown",
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
        ),
        ("annotations a list", "/annotations", json!(["a"])),
        (
            "consoleSize negative",
            "/process/consoleSize",
            json!({"height": -1, "width": 80}),
        ),
    ]
}

/// Config changes the spec allows (unknown fields) or that are merely
/// big: created (then deleted) or refused cleanly, in bounded time.
fn odd_but_allowed_configs() -> Vec<(&'static str, &'static str, Value)> {
    let env: Vec<String> = (0..100_000).map(|i| format!("VAR{i}=x")).collect();
    let masked: Vec<String> = (0..20_000).map(|i| format!("/no/such/path/{i}")).collect();
    let caps: Vec<&str> = vec!["CAP_CHOWN"; 100_000];
    let maps: Vec<Value> = (0..100_000)
        .map(|i| json!({"containerID": i, "hostID": i, "size": 1}))
        .collect();
    vec![
        (
            "an unknown top-level field",
            "/berthNoSuchField",
            json!({"x": [1, 2]}),
        ),
        (
            "an unknown process field",
            "/process/noSuchField",
            json!(true),
        ),
        ("an unknown linux field", "/linux/noSuchField", json!("x")),
        ("100k env entries", "/process/env", json!(env)),
        ("20k masked paths", "/linux/maskedPaths", json!(masked)),
        (
            "100k capabilities",
            "/process/capabilities/bounding",
            json!(caps),
        ),
        ("100k uid mappings", "/linux/uidMappings", json!(maps)),
        // Resolved inside the rootfs (the spec asks only for an absolute
        // path): it must land there, not in the host's /tmp.
        (
            "device path through ..",
            "/linux/devices",
            json!([{"path": "/dev/../tmp/berth-hostile-dev", "type": "c", "major": 1, "minor": 3}]),
        ),
    ]
}

#[test]
fn a_corpus_of_bad_configs_is_refused_cleanly() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let base = b.config.clone();
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for (what, path, value) in refused_configs() {
        let mut bad = Bundle {
            dir: tempfile::tempdir().unwrap(),
            config: base.clone(),
        };
        set(&mut bad.config, path, value);
        // The rootfs is shared: the bundle is the config and a link to it.
        std::os::unix::fs::symlink(b.rootfs(), bad.rootfs()).unwrap();
        if bad.config["root"]["path"] == base["root"]["path"] {
            bad.config["root"]["path"] = json!(b.rootfs());
        }
        bad.write();
        let cid = id("hostile");
        let out = rt.run_bundle("create", &bad, &cid, &[]);
        if out.status.success() {
            accepted.push(what);
            ok(&rt.run(&["delete", "--force", &cid]));
            continue;
        }
        let err = fails(&out);
        one_line(&err, what);
        assert!(rt.ids().is_empty(), "{what}: a container is listed");
        assert!(!rt.root.path().join(&cid).exists(), "{what}: state left");
        let leaks = rt.leaks();
        assert!(leaks.is_empty(), "{what}: {leaks:#?}");
        errors.push(format!("{what}: {}", err.trim()));
    }
    for p in ["/tmp/berth-hostile-sysctl", "/tmp/berth-hostile-dev"] {
        assert!(!Path::new(p).exists(), "{p} written outside the container");
    }
    eprintln!(
        "{} bad configs refused:\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
    assert_eq!(accepted, Vec::<&str>::new(), "bad configs accepted");
}

#[test]
fn unknown_fields_and_huge_arrays_are_handled_in_bounded_time() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let base = b.config.clone();
    for (what, path, value) in odd_but_allowed_configs() {
        let mut odd = Bundle {
            dir: tempfile::tempdir().unwrap(),
            config: base.clone(),
        };
        set(&mut odd.config, path, value);
        std::os::unix::fs::symlink(b.rootfs(), odd.rootfs()).unwrap();
        odd.config["root"]["path"] = json!(b.rootfs());
        odd.write();
        let cid = id("odd");
        let t0 = Instant::now();
        let out = rt.run_bundle("create", &odd, &cid, &[]);
        let took = t0.elapsed();
        if what.starts_with("an unknown") {
            assert!(out.status.success(), "{what}: refused: {}", stderr(&out));
        }
        if out.status.success() {
            ok(&rt.run(&["delete", "--force", &cid]));
        } else {
            one_line(&stderr(&out), what);
        }
        assert!(took < Duration::from_secs(20), "{what}: took {took:?}");
        eprintln!(
            "{what}: {} in {took:?}",
            if out.status.success() {
                "created".to_string()
            } else {
                stderr(&out).trim().to_string()
            }
        );
        assert!(rt.ids().is_empty(), "{what}: a container is listed");
        let leaks = rt.leaks();
        assert!(leaks.is_empty(), "{what}: {leaks:#?}");
    }
    assert!(
        !Path::new("/tmp/berth-hostile-dev").exists(),
        "a device made on the host"
    );
}

#[test]
fn bad_runtime_command_lines_are_refused_in_one_line() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b.write();
    let cid = id("cli");
    ok(&rt.run_bundle("create", &b, &cid, &[]));
    let bundle = b.path().to_str().unwrap().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["create"],
        vec!["create", "--bundle", "/nonexistent", "x1"],
        vec!["create", "--bundle", &bundle, "../escape"],
        vec!["create", "--bundle", &bundle, ""],
        vec!["create", "--bundle", &bundle, "--pid-file", "", "x2"],
        vec!["create", "--bundle", &bundle, &cid],
        vec!["kill", &cid, "SIGBOGUS"],
        vec!["kill", &cid, "99"],
        vec!["kill", &cid, "-9"],
        vec!["kill", &cid, "KILL9"],
        vec!["kill", "no-such-container", "KILL"],
        vec!["state", "no-such-container"],
        vec!["start", "no-such-container"],
        vec!["--log-format", "xml", "list"],
        vec!["--rootless", "maybe", "list"],
        vec!["list", "--format", "yaml"],
        vec!["exec", "--preserve-fds", "-1", &cid, "true"],
        vec!["exec", "--preserve-fds", "x", &cid, "true"],
        vec!["exec", &cid],
        vec!["exec", "--process", "/nonexistent.json", &cid],
        vec!["no-such-command"],
        vec!["--no-such-flag", "list"],
    ];
    for args in &cases {
        let err = fails(&rt.run(args));
        one_line(&err, &format!("{args:?}"));
    }
    // Nothing of the refused creates, and the good container untouched.
    assert_eq!(rt.ids(), vec![cid.clone()]);
    assert_eq!(rt.status(&cid), "created");
    ok(&rt.run(&["delete", "--force", &cid]));
    eprintln!("berth-runtime: {} bad command lines refused", cases.len());
}

#[test]
fn bad_engine_command_lines_are_refused_in_one_line_and_make_nothing() {
    let b = Berth::new();
    let long_host = "h".repeat(300);
    let flags: Vec<Vec<&str>> = vec![
        vec!["--memory", "-1"],
        vec!["--memory", "10QB"],
        vec!["--memory", "99999999999999999999"],
        vec!["--cpus", "abc"],
        vec!["--cpus", "-2"],
        vec!["--cpu-shares", "-3"],
        vec!["--pids-limit", "x"],
        vec!["-p", "99999:80"],
        vec!["-p", "80:0"],
        vec!["-p", "abc"],
        vec!["-p", "1.2.3.4.5:80:80"],
        vec!["--restart", "bogus"],
        vec!["--restart", "on-failure:-3"],
        vec!["--ulimit", "nofile=abc"],
        vec!["--ulimit", "bogus=1"],
        vec!["--name", "../x"],
        vec!["--name", "-x"],
        vec!["--cgroup-parent", "relative"],
        vec!["--cgroup-parent", "/a/../b"],
        vec!["--network", "no-such-net"],
        vec!["-v", "/tmp:relative"],
        vec!["-v", "a:b:c:d"],
        vec!["-v", "bad/name:/x"],
        vec!["--mount", "type=bogus,dst=/x"],
        vec!["--mount", "type=bind,src=/nonexistent,dst=/x"],
        vec!["--tmpfs", "relative"],
        vec!["--stop-signal", "SIGBOGUS"],
        vec!["--stop-timeout", "-5"],
        vec!["--cap-add", "CAP_BOGUS"],
        vec!["--security-opt", "seccomp=/nonexistent"],
        vec!["--security-opt", "bogus=1"],
        vec!["-e", "=x"],
        vec!["-w", "relative"],
        vec!["--hostname", &long_host],
        vec!["--env-file", "/nonexistent"],
        vec!["-u", "99999999999"],
        vec!["--no-such-flag"],
    ];
    let mut refused = 0;
    for f in &flags {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(f);
        args.extend_from_slice(&[IMAGE, "true"]);
        let out = b.run(&args);
        let err = fails(&out);
        one_line(&err, &format!("{f:?}"));
        assert!(err.starts_with("berth: "), "{f:?}: {err}");
        // `-u` is resolved against the image's passwd at start, as docker
        // does; everything else is refused before a container exists.
        if f[0] != "-u" {
            assert_eq!(b.ids(), Vec::<String>::new(), "{f:?} made a container");
        } else {
            for id in b.ids() {
                ok(&b.run(&["rm", &id]));
            }
        }
        refused += 1;
    }
    for args in [
        vec!["stop", "-t", "x", "nothing"],
        vec!["kill", "-s", "SIGBOGUS", "nothing"],
        vec!["logs", "--tail", "x", "nothing"],
        vec!["rm", "no-such-container"],
        vec!["pull", "UPPER/case"],
        vec!["pull", "a@sha256:short"],
        vec!["load", "-i", "/nonexistent.tar"],
        vec!["volume", "create", "../x"],
        vec!["network", "create", "--subnet", "10.0.0.0/99", "n1"],
        vec!["no-such-command"],
    ] {
        let err = fails(&b.run(&args));
        one_line(&err, &format!("{args:?}"));
        refused += 1;
    }
    assert_eq!(b.ids(), Vec::<String>::new());
    eprintln!("berth: {refused} bad command lines refused");
}

// --- Bad image archives -------------------------------------------------

fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An editable copy of the busybox OCI layout.
struct Layout {
    dir: std::path::PathBuf,
}

impl Layout {
    fn copy_to(dir: &Path) -> Layout {
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(fixtures().join("busybox.oci"))
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success());
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    fn blob(&self, digest: &str) -> std::path::PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    fn read_json(&self, digest: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.blob(digest)).unwrap()).unwrap()
    }

    fn put(&self, data: &[u8]) -> Value {
        let hex = sha256_hex(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), data).unwrap();
        json!({"digest": format!("sha256:{hex}"), "size": data.len()})
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).unwrap()).unwrap()
    }

    fn manifest(&self) -> Value {
        self.read_json(self.index()["manifests"][0]["digest"].as_str().unwrap())
    }

    /// Rewrites manifest (and index) after `edit` changed the manifest.
    fn set_manifest(&self, m: &Value) {
        let d = self.put(&serde_json::to_vec(m).unwrap());
        let mut idx = self.index();
        idx["manifests"][0]["digest"] = d["digest"].clone();
        idx["manifests"][0]["size"] = d["size"].clone();
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&idx).unwrap(),
        )
        .unwrap();
    }

    /// Replaces the config blob with `data`, digests kept consistent.
    fn set_config_bytes(&self, data: &[u8]) {
        let d = self.put(data);
        let mut m = self.manifest();
        m["config"]["digest"] = d["digest"].clone();
        m["config"]["size"] = d["size"].clone();
        self.set_manifest(&m);
    }
}

/// A gzip layer holding one file of `mib` MiB of zeros. Deflating that
/// many zeros takes seconds in a debug build, so one MiB is compressed once
/// (flate2's fastest level, about 1 KiB) and repeated as gzip members: a
/// multi-member gzip is one stream to the reader (RFC 1952 2.2), and
/// unpacking still writes every byte. The first member is the tar header,
/// the last the tar's end blocks.
fn zero_bomb_layer(mib: u64) -> Vec<u8> {
    let gzip = |data: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    };
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").unwrap();
    h.set_size(mib << 20);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    let mut out = gzip(h.as_bytes());
    let mib_of_zeros = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..mib {
        out.extend_from_slice(&mib_of_zeros);
    }
    out.extend_from_slice(&gzip(&[0u8; 1024]));
    out
}

#[test]
fn bad_image_archives_are_refused_and_leave_the_store_as_it_was() {
    let b = Berth::new();
    b.allow("case-*/**");
    b.allow("*.tar");
    // A layer the store has is not read again (content addressed): start
    // from an empty store, so every blob of the cases is read.
    ok(&b.run(&["rmi", IMAGE]));
    let mut tried = Vec::new();
    let mut refuse = |name: &str, args: &[&str], want: &str| {
        let before = ok(&b.run(&["images", "-q"]));
        let err = fails(&b.run(args));
        one_line(&err, name);
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(
            ok(&b.run(&["images", "-q"])),
            before,
            "{name} changed the images"
        );
        let leaks = b.leaks();
        assert!(leaks.is_empty(), "{name}: {leaks:#?}");
        tried.push(format!("{name}: {}", err.trim()));
    };

    // Truncated at several points: inside a header, inside the big blob.
    let whole = std::fs::read(fixtures().join("busybox-oci.tar")).unwrap();
    // (Not the very end: a tar's last blocks are padding.)
    for cut in [100, 5000, whole.len() / 2, whole.len() * 9 / 10] {
        let p = b.dir.path().join(format!("cut-{cut}.tar"));
        std::fs::write(&p, &whole[..cut]).unwrap();
        refuse(
            &format!("truncated at {cut}"),
            &["load", "-q", "-i", p.to_str().unwrap()],
            "",
        );
    }

    let case = |n: &str| Layout::copy_to(&b.dir.path().join(format!("case-{n}")));
    let layer_digest = |l: &Layout| {
        l.manifest()["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // A layer whose bytes do not match its digest (same size, one byte
    // flipped), and one longer than its descriptor says.
    let l = case("digest");
    let blob = l.blob(&layer_digest(&l));
    let mut data = std::fs::read(&blob).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&blob, &data).unwrap();
    refuse(
        "layer digest mismatch",
        &["load", "-q", "--layout", l.dir.to_str().unwrap()],
        "",
    );
    let l = case("longer");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(l.blob(&layer_digest(&l)))
        .unwrap();
    f.write_all(b"tampered").unwrap();
    drop(f);
    refuse(
        "layer longer than said",
        &["load", "-q", "--layout", l.dir.to_str().unwrap()],
        "",
    );

    // The manifest names a blob the archive lacks.
    let l = case("missing");
    std::fs::remove_file(l.blob(&layer_digest(&l))).unwrap();
    refuse(
        "missing layer blob",
        &["load", "-q", "--layout", l.dir.to_str().unwrap()],
        "",
    );

    // The index names a manifest the archive lacks.
    let l = case("nomanifest");
    let m = l.index()["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(l.blob(&m)).unwrap();
    refuse(
        "missing manifest",
        &["load", "-q", "--layout", l.dir.to_str().unwrap()],
        "",
    );

    // A config that is not JSON, and one that is JSON of the wrong shape,
    // with their digests right.
    for (n, data) in [
        ("config not JSON", &b"this is not { json"[..]),
        ("config JSON array", &b"[1, 2, 3]"[..]),
        (
            "config rootfs missing",
            &br#"{"architecture":"amd64","os":"linux"}"#[..],
        ),
    ] {
        let l = case(&n.replace(' ', "-"));
        l.set_config_bytes(data);
        refuse(n, &["load", "-q", "--layout", l.dir.to_str().unwrap()], "");
    }

    // A manifest that is not JSON, digest right.
    let l = case("manifest-junk");
    l.set_manifest(&json!("not a manifest"));
    refuse(
        "manifest a string",
        &["load", "-q", "--layout", l.dir.to_str().unwrap()],
        "",
    );

    // An index.json that is not JSON.
    let l = case("index-junk");
    std::fs::write(l.dir.join("index.json"), "{{{").unwrap();
    refuse(
        "index not JSON",
        &["load", "-q", "--layout", l.dir.to_str().unwrap()],
        "index.json",
    );

    // A size field that lies (a descriptor saying 1 byte).
    let l = case("size-lie");
    let mut m = l.manifest();
    m["layers"][0]["size"] = json!(1);
    l.set_manifest(&m);
    refuse(
        "layer size lie",
        &["load", "-q", "--layout", l.dir.to_str().unwrap()],
        "",
    );

    eprintln!(
        "{} bad archives refused:\n  {}",
        tried.len(),
        tried.join("\n  ")
    );
}

#[test]
fn a_zero_filled_bomb_layer_bigger_than_the_disk_is_refused_cleanly() {
    // The engine root is a 24 MiB tmpfs (busybox takes about 3 MiB); the
    // bomb unpacks to 64 MiB of zeros, so it fills the disk, whatever the
    // layer size limit: the import must stop with ENOSPC, not with a half
    // layer in the store. Compressed it is about 64 KiB, made in well under
    // a second.
    let b = Berth::on_tmpfs("24m");
    b.allow("case-bomb/**");
    let l = Layout::copy_to(&b.dir.path().join("case-bomb"));
    let t0 = Instant::now();
    let layer = zero_bomb_layer(64);
    // The diffID is checked once the layer is whole, which it never is
    // here: the disk is full first. Any well-formed digest will do.
    let diff_id = format!("sha256:{}", sha256_hex(b"never reached"));
    eprintln!(
        "bomb: {} bytes compressed, made in {:?}",
        layer.len(),
        t0.elapsed()
    );
    let d = l.put(&layer);
    let mut cfg = l.read_json(l.manifest()["config"]["digest"].as_str().unwrap());
    cfg["rootfs"]["diff_ids"] = json!([diff_id]);
    let old_layer = l.manifest()["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(l.blob(&old_layer)).unwrap();
    l.set_config_bytes(&serde_json::to_vec(&cfg).unwrap());
    let mut m = l.manifest();
    m["layers"][0]["digest"] = d["digest"].clone();
    m["layers"][0]["size"] = d["size"].clone();
    l.set_manifest(&m);

    let before = ok(&b.run(&["images", "-q"]));
    let err = fails(&b.run(&["load", "-q", "--layout", l.dir.to_str().unwrap()]));
    one_line(&err, "bomb");
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(ok(&b.run(&["images", "-q"])), before);
    let leaks = b.leaks();
    assert!(leaks.is_empty(), "bomb: {leaks:#?}");
    // The engine works after: the disk has its room back.
    assert_eq!(ok(&b.run(&["run", "--rm", IMAGE, "echo", "ok"])), "ok\n");
}
