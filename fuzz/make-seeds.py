#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/: small fixture-like
inputs, hostile ones included. Run from anywhere; it rewrites only files it
names. runtime_plan also gets the config.json of `berth-runtime spec`
(the second and third argument, when given: spec.json and rootless.json)."""

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
# Inputs that once broke the product (found by fuzzing) live apart.
REGRESSIONS = os.path.join(HERE, "regressions")
D = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def put(target, name, data, kind=CORPUS):
    os.makedirs(os.path.join(kind, target), exist_ok=True)
    with open(os.path.join(kind, target, name), "wb") as f:
        f.write(data)


# --- unpack_layer: raw layer tars --------------------------------------------

REG, DIR, SYM, LNK = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def entry(name, kind=REG, data=b"", link="", mode=0o644, pax=None, fmt=tarfile.PAX_FORMAT):
    return (name, kind, data, link, mode, pax or {}, fmt)


def layer(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, data, link, mode, pax, _ in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode, info.mtime = kind, link, mode, 1700000000
            info.pax_headers = pax
            if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                info.devmajor, info.devminor = 1, 3
            info.size = len(data) if kind == REG else 0
            t.addfile(info, io.BytesIO(data) if kind == REG else None)
    # Drop tarfile's record padding past the two end-of-archive blocks.
    out = buf.getvalue().rstrip(b"\0")
    return out + b"\0" * ((-len(out)) % 512 + 1024)


def num(value):
    """A 12-byte tar numeric field: octal, or base-256 past 8 GiB."""
    if value < 8 ** 11:
        return b"%011o\0" % value
    return b"\x80" + value.to_bytes(11, "big")


def sparse(name, real_size, chunks):
    """An old-GNU sparse entry ('S'): `chunks` are (offset, bytes)."""
    data = b"".join(c for _, c in chunks)
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = tarfile.GNUTYPE_SPARSE, len(data), 0o644, 1700000000
    h = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    for i, (off, c) in enumerate(chunks[:4]):
        h[386 + 24 * i:386 + 24 * i + 12] = num(off)
        h[398 + 24 * i:398 + 24 * i + 12] = num(len(c))
    h[483:495] = num(real_size)
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % sum(h[:512])
    pad = (-len(data)) % 512
    return bytes(h[:512]) + data + b"\0" * pad + b"\0" * 1024


ordinary = layer([
    entry("etc/", DIR, mode=0o755),
    entry("etc/hostname", data=b"berth\n"),
    entry("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"),
    entry("bin/", DIR, mode=0o755),
    entry("bin/busybox", data=b"\x7fELF" + bytes(60), mode=0o755),
    entry("bin/sh", SYM, link="busybox"),
    entry("bin/ls", LNK, link="bin/busybox"),
    entry("dev/", DIR, mode=0o755),
    entry("dev/null", tarfile.CHRTYPE, mode=0o666),
    entry("run/fifo", tarfile.FIFOTYPE),
    entry("xattr", data=b"x", pax={"SCHILY.xattr.user.berth": "1", "mtime": "1700000000.5", "uid": "1000"}),
    entry("./", DIR, mode=0o755),
])
put("unpack_layer", "ordinary.tar", ordinary)
put("unpack_layer", "ordinary.tar.gz", gzip.compress(ordinary, mtime=0))
if shutil.which("zstd"):
    put("unpack_layer", "ordinary.tar.zst",
        subprocess.run(["zstd", "-q", "-c"], input=ordinary, check=True, stdout=subprocess.PIPE).stdout)
put("unpack_layer", "whiteouts.tar", layer([
    entry("dir/", DIR, mode=0o755),
    entry("dir/.wh.gone"),
    entry("dir/.wh..wh..opq"),
    entry(".wh..wh.plnk"),
    entry(".wh.etc"),
]))
put("unpack_layer", "replace.tar", layer([
    entry("a", data=b"file first"),
    entry("a/", DIR, mode=0o755),
    entry("a/b", data=b"in dir"),
    entry("a", SYM, link="/etc"),
    entry("c/", DIR, mode=0o000),
    entry("c/d", data=b"under mode 000"),
    entry("c", data=b"file over dir"),
]))
put("unpack_layer", "longnames.tar", layer([
    entry("d/" * 70 + "file", data=b"long"),
    entry("l", SYM, link="t/" * 80),
], fmt=tarfile.GNU_FORMAT) + b"")
put("unpack_layer", "pax-long.tar", layer([entry("p/" * 90 + "x", data=b"pax")]))
put("unpack_layer", "sparse.tar", sparse("holes", 4096, [(0, b"a" * 512), (2048, b"b" * 512)]))
# Hostile classes (images issue): each must be refused without an escape.
hostile = {
    "dotdot": [entry("../berth-fuzz-escape", data=b"x")],
    "dotdot-inner": [entry("a/../../berth-fuzz-escape", data=b"x")],
    "absolute": [entry("/berth-fuzz-escape", data=b"x")],
    "symlink-parent": [entry("evil", SYM, link=".."), entry("evil/berth-fuzz-escape", data=b"x")],
    "symlink-parent-abs": [entry("evil", SYM, link="/"), entry("evil/berth-fuzz-escape", data=b"x")],
    "symlink-dir-then-write": [entry("a/", DIR, mode=0o755), entry("a/evil", SYM, link="../.."),
                               entry("a/evil/", DIR, mode=0o777), entry("a/evil/berth-fuzz-escape", data=b"x")],
    "hardlink-out": [entry("canary", LNK, link="../canary")],
    "hardlink-via-symlink": [entry("evil", SYM, link=".."), entry("canary", LNK, link="evil/canary")],
    "hardlink-to-symlink": [entry("evil", SYM, link="../canary"), entry("l", LNK, link="evil"),
                            entry("l", data=b"write through?")],
    "whiteout-dotdot": [entry("dir/", DIR, mode=0o755), entry("dir/.wh..."), entry(".wh..")],
    "whiteout-via-symlink": [entry("evil", SYM, link=".."), entry("evil/.wh.canary")],
    "root-symlink": [entry(".", SYM, link=".."), entry("berth-fuzz-escape", data=b"x")],
    "root-file": [entry("./", data=b"x")],
    "opaque-via-symlink": [entry("evil", SYM, link=".."), entry("evil/.wh..wh..opq")],
    "xattr-overlay": [entry("f", data=b"x", pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc"})],
}
for name, entries in hostile.items():
    put("unpack_layer", f"hostile-{name}.tar", layer(entries))
# A size the stream does not hold, and a sparse file far bigger than its data
# (its holes were once written out as zeros: a 2 KiB layer filled the disk).
put("unpack_layer", "truncated.tar", ordinary[:700])
put("unpack_layer", "sparse-bomb.tar",
    sparse("bomb", 1 << 40, [(0, b"z" * 512), ((1 << 40) - 512, b"z" * 512)]), REGRESSIONS)

# --- image_reference -----------------------------------------------------------

refs = [
    "busybox", "busybox:latest", "library/busybox:1.36", "docker.io/library/busybox",
    "index.docker.io/user/app:v1", "localhost/busybox:latest", "localhost:5000/team/app:1.2.3",
    f"registry.example.com:5000/a/b/c@{D}", f"quay.io/x/y:tag@{D}", f"busybox@{D}",
    "[::1]:5000/foo:bar", "Upper/case", "a__b/c--d:_x", "UPPER", "a..b", "-bad", "x:", "@", "a/b:c:d",
    "http://r.example/v2/app", "x" * 300, "r.io/" + "a/" * 60 + "b:" + "t" * 128,
]
for i, r in enumerate(refs):
    put("image_reference", f"ref-{i:02}", r.encode())

# --- image_manifest: selector byte + document ----------------------------------

def desc(mt, size=2, **kw):
    return {"mediaType": mt, "digest": D, "size": size, **kw}


oci_manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": desc("application/vnd.oci.image.config.v1+json"),
                "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", 100),
                           desc("application/vnd.oci.image.layer.v1.tar+zstd", 100)],
                "annotations": {"org.opencontainers.image.ref.name": "latest"}}
docker_manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                   "config": desc("application/vnd.docker.container.image.v1+json"),
                   "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", 100)]}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    desc("application/vnd.oci.image.manifest.v1+json", platform={"os": "linux", "architecture": "amd64"}),
    desc("application/vnd.oci.image.manifest.v1+json",
         platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
    desc("application/vnd.oci.image.manifest.v1+json", platform={"os": "unknown", "architecture": "unknown"},
         annotations={"vnd.docker.reference.type": "attestation-manifest"}),
]}
docker_list = dict(index, mediaType="application/vnd.docker.distribution.manifest.list.v2+json")
config = {"created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
          "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "true"],
                     "User": "1000:1000", "WorkingDir": "/", "ExposedPorts": {"80/tcp": {}},
                     "Labels": {"a": "b"}, "StopSignal": "SIGTERM"},
          "rootfs": {"type": "layers", "diff_ids": [D, D]},
          "history": [{"created_by": "ADD rootfs"}]}
docs = [
    (1, oci_manifest), (3, docker_manifest), (2, index), (4, docker_list), (0, index), (0, oci_manifest),
    (2, config), (6, docker_manifest), (5, {"schemaVersion": 1, "name": "x", "fsLayers": []}),
    (0, {"schemaVersion": 2, "mediaType": "application/vnd.oci.artifact.manifest.v1+json"}),
]
for i, (sel, doc) in enumerate(docs):
    put("image_manifest", f"doc-{i:02}.json", bytes([sel]) + json.dumps(doc).encode())
put("image_manifest", "digest", b"\x00" + D.encode())
put("image_manifest", "platform", b"\x00linux/arm64/v8")
put("image_manifest", "not-json", b"\x01{\"schemaVersion\": 2, \"config\": ")

# --- runtime_plan ------------------------------------------------------------

for i, path in enumerate(sys.argv[1:]):
    with open(path, "rb") as f:
        put("runtime_plan", f"spec-{i}.json", f.read())
fixture = os.path.join(HERE, "..", "rootfs-fixtures", "config.json")
with open(fixture, "rb") as f:
    put("runtime_plan", "fixture-config.json", f.read())
full = json.loads(open(fixture).read())
full["hostname"] = "c"
full["linux"].update({
    "namespaces": [{"type": t} for t in ["pid", "mount", "ipc", "uts", "network", "user", "cgroup", "time"]],
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 1}},
    "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}],
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"},
    "rootfsPropagation": "rslave",
    "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]},
})
full["mounts"] = full.get("mounts", []) + [
    {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "nosuid"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777"]},
]
put("runtime_plan", "full-config.json", json.dumps(full, indent=1).encode())
put("runtime_plan", "process.json", json.dumps(full["process"], indent=1).encode())
put("runtime_plan", "bad-types.json", b'{"ociVersion": 1, "root": {"path": []}, "process": {"args": "sh"}}')
