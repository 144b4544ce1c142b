#!/usr/bin/env bash
# Builds the test VM's initramfs, $BERTH_VM_CACHE/initramfs.cpio: Debian's
# static busybox, the modules vm/fetch-kernel.sh picked, and vm/init.sh as
# /init. Uncompressed: the kernel unpacks it faster than it would inflate it.
#
# Idempotent: a stamp records the inputs, and unchanged ones are not rebuilt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${BERTH_VM_CACHE:-$here/cache}
kernel=$cache/kernel
out=$cache/initramfs.cpio
busybox=${BUSYBOX:-/bin/busybox}

die() { echo "vm-initramfs: $*" >&2; exit 1; }
command -v cpio >/dev/null || die "cpio is missing; run 'make vm-deps'"
[ -f "$kernel/.stamp" ] || die "no kernel in $kernel; run vm/fetch-kernel.sh"
if ! "$busybox" --list >/dev/null 2>&1 || ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox must be a static busybox (Debian's busybox-static)"
fi

stamp=$(cat "$0" "$here/init.sh" "$kernel/.stamp" "$busybox" | sha256sum | cut -c1-16)
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi

tmp=$(mktemp -d "$cache/.initramfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,lower,upper,newroot,lib/modules}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
cp "$kernel"/modules/*.ko "$kernel/modules.boot" "$kernel/modules.extra" "$root/lib/modules/"
install -m 755 "$here/init.sh" "$root/init"
# The kernel opens /dev/console for /init before anything is mounted.
mknod -m 600 "$root/dev/console" c 5 1

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --owner=0:0 --quiet) >"$tmp/initramfs.cpio"
mv "$tmp/initramfs.cpio" "$out"
echo "$stamp" >"$out.stamp"
echo "vm-initramfs: built $out ($(du -h "$out" | cut -f1))" >&2
