#!/usr/bin/env bash
# Image fixtures for the image store tests (issue 5), written by hand with
# Python's tarfile so every entry is exactly what the test needs (umoci's
# `insert --whiteout` writes truncated tars, and GNU tar refuses to write
# hostile names). Run by build.sh with OUT set.
#
#   layers-oci.tar        oci-archive localhost/layers:latest, two gzip layers:
#                         the lower has files, a hardlink, a symlink, a fifo,
#                         a char device, an xattr, owners, modes and mtimes;
#                         the upper deletes etc/gone (.wh.gone) and makes
#                         opaque/ opaque (.wh..wh..opq)
#   layers-zstd.tar       the same image with zstd layers (localhost/layers:zstd)
#   layers-plain.tar      the same image with uncompressed layers (localhost/layers:plain)
#   multiarch-oci.tar     oci-archive localhost/multiarch:latest: an index for
#                         linux/amd64 and linux/arm64/v8 (configs differ)
#   random-oci.tar        oci-archive localhost/random:latest, one 4 MiB layer of
#                         random bytes (slow to move: the kill -9 test)
#   hostile/NAME.tar      oci-archives localhost/hostile:NAME, one per attack:
#                         dotdot, absolute, symlink-parent, symlink-parent-relative,
#                         hardlink-dotdot, hardlink-via-symlink, whiteout-dotdot,
#                         root-symlink, bomb (256 MiB of zeros), pax-bomb (a 2 MiB
#                         PAX header, then 4 MiB of files), and
#                         layered-symlink (a symlink to / in one layer, a file
#                         under it in the next: must land inside the layer)
set -euo pipefail
: "${OUT:?}"
command -v python3 >/dev/null || { echo "fixtures: python3 is missing; run 'make deps'" >&2; exit 1; }
command -v zstd >/dev/null || { echo "fixtures: zstd is missing; run 'make deps'" >&2; exit 1; }

python3 - "$OUT" <<'PY'
import gzip, hashlib, io, json, os, subprocess, sys, tarfile

out = sys.argv[1]
MTIME = 1700000000

def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, link="", dev=(0, 0), xattrs=None, mtime=MTIME):
    return dict(name=name, kind=kind, data=data, mode=mode, uid=uid, gid=gid, link=link, dev=dev, xattrs=xattrs or {}, mtime=mtime)

def layer_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = e["kind"]
            ti.mode = e["mode"]
            ti.uid, ti.gid = e["uid"], e["gid"]
            ti.mtime = e["mtime"]
            ti.linkname = e["link"]
            ti.devmajor, ti.devminor = e["dev"]
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in e["xattrs"].items()}
            if e["kind"] == tarfile.REGTYPE:
                ti.size = len(e["data"])
                t.addfile(ti, io.BytesIO(e["data"]))
            else:
                t.addfile(ti)
    return buf.getvalue()

def compress(raw, how):
    if how == "gzip":
        return gzip.compress(raw, compresslevel=6, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        z = subprocess.run(["zstd", "-q", "-c", "-3"], input=raw, capture_output=True, check=True).stdout
        return z, "application/vnd.oci.image.layer.v1.tar+zstd"
    return raw, "application/vnd.oci.image.layer.v1.tar"

def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()

def image_blobs(blobs, layers, how="gzip", arch="amd64", variant=None):
    """Adds an image's blobs; returns its manifest descriptor."""
    descs, diff_ids = [], []
    for raw in layers:
        blob, mt = compress(raw, how)
        blobs[sha(blob)] = blob
        descs.append({"mediaType": mt, "digest": sha(blob), "size": len(blob)})
        diff_ids.append(sha(raw))
    cfg = {"created": "2023-11-14T22:13:20Z", "architecture": arch, "os": "linux",
           "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    if variant:
        cfg["variant"] = variant
    config = json.dumps(cfg).encode()
    blobs[sha(config)] = config
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": descs}).encode()
    blobs[sha(manifest)] = manifest
    platform = {"os": "linux", "architecture": arch}
    if variant:
        platform["variant"] = variant
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest), "platform": platform}

def write_archive(path, blobs, top):
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [top]}).encode()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path + ".tmp", "w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = MTIME
            t.addfile(ti, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for d, b in blobs.items():
            add("blobs/sha256/" + d.split(":")[1], b)
    os.rename(path + ".tmp", path)

def oci_archive(path, ref, layers, how="gzip"):
    """layers: list of raw (uncompressed) tar bytes, lowest first."""
    blobs = {}
    descs, diff_ids = [], []
    for raw in layers:
        blob, mt = compress(raw, how)
        blobs[sha(blob)] = blob
        descs.append({"mediaType": mt, "digest": sha(blob), "size": len(blob)})
        diff_ids.append(sha(raw))
    config = json.dumps({
        "created": "2023-11-14T22:13:20Z", "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "berth fixtures"} for _ in layers],
    }).encode()
    blobs[sha(config)] = config
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": descs,
    }).encode()
    blobs[sha(manifest)] = manifest
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": ref}}]}).encode()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path + ".tmp", "w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = MTIME
            t.addfile(ti, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for d, b in blobs.items():
            add("blobs/sha256/" + d.split(":")[1], b)
    os.rename(path + ".tmp", path)

D, L, S, F, C = tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE
lower = layer_tar([
    entry("./", D, mode=0o755),
    entry("etc/", D, mode=0o755),
    entry("etc/keep", data=b"keep\n"),
    entry("etc/gone", data=b"gone\n"),
    entry("etc/owned", data=b"owned\n", mode=0o640, uid=1000, gid=1001, mtime=1234567890),
    entry("etc/setuid", data=b"#!/bin/sh\n", mode=0o4755),
    entry("etc/xattr", data=b"x\n", xattrs={"user.berth": "yes"}),
    entry("etc/hard", L, link="etc/keep"),
    entry("etc/sym", S, link="/etc/keep", uid=1000, gid=1000),
    entry("etc/fifo", F, mode=0o600),
    entry("etc/null", C, mode=0o666, dev=(1, 3)),
    entry("opaque/", D, mode=0o755),
    entry("opaque/old", data=b"old\n"),
    entry("deep/a/b/c/file", data=b"deep\n"),
])
upper = layer_tar([
    entry("etc/", D, mode=0o755),
    entry("etc/.wh.gone"),
    entry("opaque/", D, mode=0o750),
    entry("opaque/.wh..wh..opq"),
    entry("opaque/new", data=b"new\n"),
    entry("added", data=b"added\n"),
])
oci_archive(f"{out}/layers-oci.tar", "localhost/layers:latest", [lower, upper])
oci_archive(f"{out}/layers-zstd.tar", "localhost/layers:zstd", [lower, upper], "zstd")
oci_archive(f"{out}/layers-plain.tar", "localhost/layers:plain", [lower, upper], "none")

# Names the tests look for on the host: none may ever exist.
hostile = {
    "dotdot": [entry("../berth-hostile-dotdot", data=b"x")],
    "absolute": [entry("/berth-hostile-absolute", data=b"x")],
    "symlink-parent": [entry("evil", S, link="/"), entry("evil/berth-hostile-symlink", data=b"x")],
    "symlink-parent-relative": [entry("a/", D, mode=0o755), entry("a/evil", S, link="../../../../../../../../.."),
                                 entry("a/evil/berth-hostile-relative", data=b"x")],
    "hardlink-dotdot": [entry("passwd", L, link="../../../../../../../../../etc/passwd")],
    "hardlink-via-symlink": [entry("evil", S, link="/etc"), entry("passwd", L, link="evil/passwd")],
    "whiteout-dotdot": [entry("dir/", D, mode=0o755), entry("dir/.wh..."), entry("dir/.wh..wh..opq")],
    "root-symlink": [entry(".", S, link="/"), entry("berth-hostile-root", data=b"x")],
    "chmod-via-symlink": [entry("evil", S, link="/etc"), entry("evil/", D, mode=0o777), entry("evil/berth-hostile-chmod", data=b"x")],
}
pax_bomb = layer_tar([entry("big-pax", data=b"x", xattrs={"user.pad": "a" * (2 << 20)})] + [entry(f"f{i}", data=os.urandom(64 << 10)) for i in range(64)])
oci_archive(f"{out}/hostile/pax-bomb.tar", "localhost/hostile:pax-bomb", [pax_bomb])
for name, entries in hostile.items():
    oci_archive(f"{out}/hostile/{name}.tar", f"localhost/hostile:{name}", [layer_tar(entries)])
bomb = layer_tar([entry("zeros", data=bytes(256 << 20))])
oci_archive(f"{out}/hostile/bomb.tar", "localhost/hostile:bomb", [bomb])
blobs = {}
amd = image_blobs(blobs, [layer_tar([entry("arch", data=b"amd64\n")])], arch="amd64")
arm = image_blobs(blobs, [layer_tar([entry("arch", data=b"arm64\n")])], arch="arm64", variant="v8")
nested = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [arm, amd]}).encode()
blobs[sha(nested)] = nested
write_archive(f"{out}/multiarch-oci.tar", blobs, {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(nested),
              "size": len(nested), "annotations": {"org.opencontainers.image.ref.name": "localhost/multiarch:latest"}})
oci_archive(f"{out}/random-oci.tar", "localhost/random:latest", [layer_tar([entry("random", data=os.urandom(4 << 20))])])
oci_archive(f"{out}/hostile/layered-symlink.tar", "localhost/hostile:layered-symlink",
            [layer_tar([entry("link", S, link="/")]), layer_tar([entry("link/berth-hostile-layer2", data=b"x")])])
PY
echo "fixtures: image archives in $OUT"
