//! The big image the unpack and pull sections use, built once and cached
//! outside the repository (`--cache`, /var/cache/berth-bench):
//!
//! - a Debian `debootstrap --variant=minbase` tree of this host's release,
//!   from the mirror apt uses, without apt's package cache and lists (as
//!   images ship it): about 121 MB of tar; if debootstrap cannot work, a tar
//!   of parts of this host's /usr (what bench/unpack.sh used), and the table
//!   says so;
//! - that tree as one layer, gzip -6 (`gzip -n`) and zstd -3;
//! - the same tree as four gzip layers (usr/share, usr/lib, usr/bin+sbin,
//!   the rest), for parallel unpack and pull;
//! - an OCI image layout for each (tag `bench`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Ctx;
use crate::measure::Cmd;

/// Bumped when the recipe changes, so old caches are not reused.
const RECIPE: &str = "v1";
pub const TAG: &str = "bench";

pub struct Images {
    /// Where the layers came from, for the table.
    pub source: String,
    /// One layer, uncompressed, gzip and zstd.
    pub tar: PathBuf,
    pub gz: PathBuf,
    pub zst: PathBuf,
    /// The four gzip layers of the multi-layer image, lowest first.
    pub multi: Vec<PathBuf>,
    /// Size of the uncompressed tree as tar, in bytes.
    pub tar_bytes: u64,
    pub layout_gz: PathBuf,
    pub layout_zst: PathBuf,
    pub layout_multi: PathBuf,
}

pub fn build(ctx: &Ctx) -> Result<Images> {
    let dir = ctx.cache.join(RECIPE);
    std::fs::create_dir_all(&dir)?;
    let tree = dir.join("tree");
    let source_file = dir.join("source");
    if !tree.join("usr").is_dir() {
        let _ = std::fs::remove_dir_all(&tree);
        let tmp = dir.join("tree.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let source = match debootstrap(&tmp) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bench: debootstrap failed ({e:#}); using parts of this host's /usr");
                let _ = std::fs::remove_dir_all(&tmp);
                host_usr(&tmp)?;
                format!("parts of this host's /usr (debootstrap failed: {e:#})")
            }
        };
        std::fs::rename(&tmp, &tree)?;
        std::fs::write(&source_file, &source)?;
    }
    let source = std::fs::read_to_string(&source_file)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());

    let imgs = Images {
        source,
        tar: dir.join("layer.tar"),
        gz: dir.join("layer.tar.gz"),
        zst: dir.join("layer.tar.zst"),
        multi: (1..=4)
            .map(|i| dir.join(format!("multi-{i}.tar.gz")))
            .collect(),
        tar_bytes: 0,
        layout_gz: dir.join("layout-gz"),
        layout_zst: dir.join("layout-zstd"),
        layout_multi: dir.join("layout-multi"),
    };
    let done = dir.join("done");
    if !done.exists() {
        eprintln!("bench: building the image layers in {}", dir.display());
        make_layers(&tree, &dir, &imgs)?;
        std::fs::write(&done, RECIPE)?;
    }
    let tar_bytes = std::fs::metadata(&imgs.tar)?.len();
    Ok(Images { tar_bytes, ..imgs })
}

/// The Debian mirror and release apt uses here.
fn mirror_and_suite() -> (String, String) {
    let mut mirror = "http://deb.debian.org/debian".to_string();
    let sources =
        std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    if let Some(uri) = sources
        .lines()
        .filter_map(|l| l.strip_prefix("URIs:"))
        .flat_map(str::split_whitespace)
        .find(|u| u.ends_with("/debian") || u.ends_with("/debian/"))
    {
        mirror = uri.trim_end_matches('/').to_string();
    } else if let Ok(list) = std::fs::read_to_string("/etc/apt/sources.list")
        && let Some(uri) = list
            .lines()
            .filter(|l| l.starts_with("deb "))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("http")))
            .find(|u| !u.contains("security"))
    {
        mirror = uri.trim_end_matches('/').to_string();
    }
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let suite = os
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bookworm".into());
    (mirror, suite)
}

fn debootstrap(tree: &Path) -> Result<String> {
    if !crate::which("debootstrap") {
        bail!("debootstrap is not installed");
    }
    let (mirror, suite) = mirror_and_suite();
    eprintln!("bench: debootstrap --variant=minbase {suite} from {mirror} (once; a few minutes)");
    Cmd::new("debootstrap")
        .args(["--variant=minbase", &suite])
        .arg(tree)
        .arg(&mirror)
        .output()?;
    // What images leave out: the downloaded packages and apt's lists.
    for d in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        clear_dir_files(&tree.join(d))?;
    }
    for f in [
        "var/cache/apt/pkgcache.bin",
        "var/cache/apt/srcpkgcache.bin",
    ] {
        let _ = std::fs::remove_file(tree.join(f));
    }
    Ok(format!(
        "debootstrap --variant=minbase {suite} ({mirror}), without apt's cache and lists"
    ))
}

/// Removes the regular files directly in `dir` (keeps `partial/`, `lock`).
fn clear_dir_files(dir: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if e.file_type()?.is_file() && name != "lock" {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

fn host_usr(tree: &Path) -> Result<()> {
    std::fs::create_dir_all(tree)?;
    let parts = [
        "usr/lib/python3.11",
        "usr/share/perl",
        "usr/share/perl5",
        "usr/share/zoneinfo",
        "usr/share/i18n",
        "usr/lib/x86_64-linux-gnu/perl",
        "usr/lib/x86_64-linux-gnu/perl-base",
    ];
    let present: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|p| Path::new("/").join(p).exists())
        .collect();
    if present.is_empty() {
        bail!("neither debootstrap nor this host's /usr parts are available");
    }
    let list = present.join(" ");
    Cmd::shell(&format!(
        "tar -C / -cf - {list} | tar -C '{}' -xf -",
        tree.display()
    ))
    .output()?;
    Ok(())
}

fn top_names(dir: &Path) -> Result<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

/// `tar -c` of `members` (relative to `tree`); a member starting with `!`
/// is the directory alone (its parent entry for a later layer).
fn tar_of(tree: &Path, members: &[String], out: &Path) -> Result<()> {
    let mut c = Cmd::new("tar")
        .arg("-C")
        .arg(tree)
        .args(["--numeric-owner", "--sort=name", "--xattrs", "-cf"])
        .arg(out);
    for m in members {
        c = match m.strip_prefix('!') {
            Some(d) => c.args(["--no-recursion", d, "--recursion"]),
            None => c.arg(m),
        };
    }
    c.output()
        .with_context(|| format!("tar {}", out.display()))?;
    Ok(())
}

fn gzip(raw: &Path, out: &Path) -> Result<()> {
    Cmd::shell(&format!(
        "gzip -6 -n -c '{}' > '{}'",
        raw.display(),
        out.display()
    ))
    .output()?;
    Ok(())
}

fn make_layers(tree: &Path, dir: &Path, imgs: &Images) -> Result<()> {
    let top = top_names(tree)?;
    tar_of(tree, &top, &imgs.tar)?;
    gzip(&imgs.tar, &imgs.gz)?;
    Cmd::new("zstd")
        .args(["-q", "-f", "-3", "-o"])
        .arg(&imgs.zst)
        .arg(&imgs.tar)
        .output()?;

    // Four layers: usr/share, usr/lib, usr/bin + usr/sbin, the rest.
    let usr: Vec<String> = top_names(&tree.join("usr"))?
        .into_iter()
        .map(|n| format!("usr/{n}"))
        .collect();
    let pick = |want: &[&str]| -> Vec<String> {
        let mut v = vec!["!usr".to_string()];
        v.extend(usr.iter().filter(|n| want.contains(&n.as_str())).cloned());
        v
    };
    let big = ["usr/share", "usr/lib", "usr/bin", "usr/sbin"];
    let mut rest: Vec<String> = top.iter().filter(|n| *n != "usr").cloned().collect();
    rest.push("!usr".into());
    rest.extend(usr.iter().filter(|n| !big.contains(&n.as_str())).cloned());
    let groups = [
        pick(&["usr/share"]),
        pick(&["usr/lib"]),
        pick(&["usr/bin", "usr/sbin"]),
        rest,
    ];
    let mut multi_raw = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let raw = dir.join(format!("multi-{}.tar", i + 1));
        tar_of(tree, g, &raw)?;
        gzip(&raw, &imgs.multi[i])?;
        multi_raw.push(raw);
    }

    const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    const ZST: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    layout(&imgs.layout_gz, &[(&imgs.gz, &imgs.tar, GZ)])?;
    layout(&imgs.layout_zst, &[(&imgs.zst, &imgs.tar, ZST)])?;
    let multi: Vec<(&Path, &Path, &str)> = imgs
        .multi
        .iter()
        .zip(&multi_raw)
        .map(|(b, r)| (b.as_path(), r.as_path(), GZ))
        .collect();
    layout(&imgs.layout_multi, &multi)?;
    for raw in multi_raw {
        std::fs::remove_file(raw)?;
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), size))
}

/// Writes an OCI image layout at `dir`, tag `bench`, with these layers
/// (blob, its uncompressed tar, media type); blobs are hard links.
fn layout(dir: &Path, layers: &[(&Path, &Path, &str)]) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let put_bytes = |data: &[u8]| -> Result<(String, u64)> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(data)));
        std::fs::write(blobs.join(&digest[7..]), data)?;
        Ok((digest, data.len() as u64))
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (blob, raw, media) in layers {
        let (digest, size) = sha256_file(blob)?;
        let dst = blobs.join(&digest[7..]);
        if std::fs::hard_link(blob, &dst).is_err() {
            std::fs::copy(blob, &dst)?;
        }
        descs.push(json!({"mediaType": media, "digest": digest, "size": size}));
        diff_ids.push(sha256_file(raw)?.0);
    }
    let config = json!({
        "created": "2025-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (cd, cs) = put_bytes(&serde_json::to_vec(&config)?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": descs,
    });
    let (md, ms) = put_bytes(&serde_json::to_vec(&manifest)?)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": TAG},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(())
}
