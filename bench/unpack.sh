#!/usr/bin/env bash
# Unpack speed of one big gzip layer: berth (load --layout, which verifies
# the blob digest and diffID and ends with syncfs) against GNU `tar -xzf`,
# `pigz -dc | tar -x` and `umoci unpack`. The layer is built from this
# host's /usr (Python, Perl, locales: many small files, like a distro base).
#
#   bench/unpack.sh [RUNS]     (as root; berth built with `make build`)
#
# Prints one line per tool: median seconds and MB/s of uncompressed data.
# BENCH_WORK=DIR unpacks elsewhere (e.g. a tmpfs, to leave the disk out).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
berth=${BERTH:-$repo/target/release/berth}
runs=${1:-3}
cache=$here/cache
work=${BENCH_WORK:-$cache/work}
[ "$(id -u)" = 0 ] || { echo "bench: run as root (owners, devices)" >&2; exit 1; }
[ -x "$berth" ] || { echo "bench: $berth missing; run 'make build'" >&2; exit 1; }
for t in tar pigz umoci python3; do command -v $t >/dev/null || { echo "bench: $t missing; run 'make deps'" >&2; exit 1; }; done
mkdir -p "$cache"

layout=$cache/layout
if [ ! -f "$layout/index.json" ]; then
	echo "bench: building the layer from /usr" >&2
	rm -rf "$layout" "$cache/layer.tar"
	tar -C / -cf "$cache/layer.tar" usr/lib/python3.11 usr/share/perl usr/share/perl5 usr/share/zoneinfo \
		usr/share/i18n usr/lib/x86_64-linux-gnu/perl usr/lib/x86_64-linux-gnu/perl-base
	gzip -6 -n -c "$cache/layer.tar" >"$cache/layer.tar.gz"
	python3 - "$cache" <<'PY'
import hashlib, json, os, sys
cache = sys.argv[1]
layout = os.path.join(cache, "layout")
os.makedirs(os.path.join(layout, "blobs/sha256"))
def put(data=None, path=None):
    h = hashlib.sha256()
    if path:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        size = os.path.getsize(path)
        os.link(path, os.path.join(layout, "blobs/sha256", h.hexdigest()))
    else:
        h.update(data); size = len(data)
        open(os.path.join(layout, "blobs/sha256", h.hexdigest()), "wb").write(data)
    return "sha256:" + h.hexdigest(), size
diff_id = "sha256:" + hashlib.sha256(open(os.path.join(cache, "layer.tar"), "rb").read()).hexdigest()
layer, layer_size = put(path=os.path.join(cache, "layer.tar.gz"))
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
cd, cs = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}]}).encode()
md, ms = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
    "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(os.path.join(layout, "index.json"), "w"))
open(os.path.join(layout, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
fi
raw_mb=$(( $(stat -c %s "$cache/layer.tar") / 1000000 ))
gz_mb=$(( $(stat -c %s "$cache/layer.tar.gz") / 1000000 ))
files=$(tar -tf "$cache/layer.tar" | wc -l)
echo "layer: ${raw_mb} MB uncompressed, ${gz_mb} MB gzipped, $files entries; $runs runs each; $(nproc) cores"

# The tools run interleaved, one of each per round, so load from anything
# else on the machine falls on all of them alike; each run starts from an
# empty output dir after a sync. Reported: the median wall time.
names=("tar -xzf" "tar -xzf; sync" "pigz -dc | tar -x" "umoci unpack" "berth load (incl. syncfs)")
run_tool() {
	case $1 in
	0) tar -xzf "$cache/layer.tar.gz" -C "$work/out" ;;
	1) tar -xzf "$cache/layer.tar.gz" -C "$work/out" && sync ;;
	2) pigz -dc "$cache/layer.tar.gz" | tar -x -C "$work/out" ;;
	3) umoci unpack --image "$layout:bench" "$work/out/bundle" ;;
	4) "$berth" --root "$work/out/root" load -q --layout "$layout" ;;
	esac
}
results=$(mktemp)
trap 'rm -f "$results"; rm -rf "$work"' EXIT
for _ in $(seq "$runs"); do
	for i in "${!names[@]}"; do
		rm -rf "$work"; mkdir -p "$work/out"; sync
		start=$(date +%s.%N)
		run_tool "$i" >/dev/null 2>&1 || { echo "bench: ${names[$i]} failed" >&2; run_tool "$i"; exit 1; }
		end=$(date +%s.%N)
		echo "$i $(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" >>"$results"
	done
done
for i in "${!names[@]}"; do
	median=$(awk -v i="$i" '$1 == i { print $2 }' "$results" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')
	awk -v n="${names[$i]}" -v t="$median" -v mb="$raw_mb" 'BEGIN { printf "%-28s %6.2f s  %6.0f MB/s\n", n, t, mb / t }'
done
