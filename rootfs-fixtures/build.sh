#!/usr/bin/env bash
# Builds the test fixtures under rootfs-fixtures/build/ from Debian's
# busybox-static. Nothing here is downloaded: every image is made locally, by
# third-party tools (umoci, skopeo), so berth is tested against what they write.
#
#   bundle/            an OCI bundle: rootfs/ (busybox + applet links, /etc/passwd,
#                      /etc/group) and config.json
#   busybox.oci/       an OCI image layout, tag "latest"
#   busybox-oci.tar    oci-archive, ref localhost/busybox:latest
#   busybox-docker.tar docker-archive, name localhost/busybox:latest
#
# Idempotent: a stamp records the inputs, and an unchanged recipe is not rebuilt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out="$here/build"
busybox=${BUSYBOX:-/bin/busybox}

for tool in "$busybox" umoci skopeo; do
	command -v "$tool" >/dev/null || { echo "fixtures: $tool is missing; run 'make deps'" >&2; exit 1; }
done
if ! "$busybox" --list >/dev/null 2>&1 || ldd "$busybox" >/dev/null 2>&1; then
	echo "fixtures: $busybox must be a static busybox (Debian's busybox-static)" >&2
	exit 1
fi

stamp_inputs=$(cat "$0" "$here/config.json" "$here"/extra.d/*.sh 2>/dev/null | sha256sum | cut -d' ' -f1)-$(sha256sum "$busybox" | cut -d' ' -f1)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp_inputs" ]; then
	echo "fixtures: up to date in $out"
	exit 0
fi

rm -rf "$out"
mkdir -p "$out"
tmp=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- the rootfs --------------------------------------------------------------
rootfs="$tmp/rootfs"
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,home/user,var/tmp,run}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 700 "$rootfs/root"
install -m 0755 "$busybox" "$rootfs/bin/busybox"
# busybox --list-full prints each applet with its install directory.
"$busybox" --list-full | while read -r applet; do
	[ "$applet" = "bin/busybox" ] && continue
	mkdir -p "$rootfs/$(dirname "$applet")"
	ln -sf /bin/busybox "$rootfs/$applet"
done
cat >"$rootfs/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$rootfs/etc/group" <<'G'
root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:user
user:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$rootfs/home/user"
echo "berth" >"$rootfs/etc/hostname"
: >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"

# --- the bundle ---------------------------------------------------------------
mkdir -p "$tmp/bundle"
cp -a "$rootfs" "$tmp/bundle/rootfs"
install -m 0644 "$here/config.json" "$tmp/bundle/config.json"

# --- the images, made by umoci and converted by skopeo -----------------------
layout="$tmp/busybox.oci"
umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --image "$layout:latest" "$tmp/unpack"
rm -rf "$tmp/unpack/rootfs"
cp -a "$rootfs" "$tmp/unpack/rootfs"
umoci repack --image "$layout:latest" "$tmp/unpack"
umoci config --image "$layout:latest" \
	--config.cmd sh \
	--config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--config.workingdir / \
	--author "berth fixtures" \
	--os linux --architecture amd64
umoci gc --layout "$layout"
skopeo copy --quiet "oci:$layout:latest" "oci-archive:$tmp/busybox-oci.tar:localhost/busybox:latest"
skopeo copy --quiet "oci:$layout:latest" "docker-archive:$tmp/busybox-docker.tar:localhost/busybox:latest"

mv "$tmp/bundle" "$out/bundle"
mv "$layout" "$out/busybox.oci"
mv "$tmp/busybox-oci.tar" "$tmp/busybox-docker.tar" "$out/"

# Later recipes (more images, hostile layers) add themselves as extra.d/*.sh;
# each gets the output dir, the rootfs and busybox.
for extra in "$here"/extra.d/*.sh; do
	[ -e "$extra" ] || continue
	OUT="$out" ROOTFS="$rootfs" BUSYBOX="$busybox" bash "$extra"
done

echo "$stamp_inputs" >"$out/.stamp"
echo "fixtures: built in $out"
