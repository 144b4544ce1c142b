#!/usr/bin/env bash
# Extracts the uncompressed ELF kernel from a bzImage (vmlinuz):
#
#   vm/extract-vmlinux.sh VMLINUZ OUT
#
# The approach of the kernel tree's scripts/extract-vmlinux: a bzImage is a
# small decompressor followed by the compressed kernel, so look for each
# compression format's magic bytes, decompress from every match, and keep the
# first output that is an ELF file. QEMU boots an ELF vmlinux through its PVH
# entry point, which skips the real-mode setup and the in-guest decompression
# (about 2 s under TCG).
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 VMLINUZ OUT" >&2; exit 2; }
in=$1 out=$2
[ -r "$in" ] || { echo "extract-vmlinux: cannot read $in" >&2; exit 1; }

# magic (as a grep -P byte pattern) and the command that decompresses it.
formats=(
	'\xfd7zXZ\x00'     'xz -dc'
	'\x28\xb5\x2f\xfd' 'zstd -dcq'
	'\x1f\x8b\x08'     'gzip -dc'
	'\x02\x21\x4c\x18' 'lz4 -dc'
	'BZh'              'bzip2 -dc'
	'\x5d\x00\x00\x00' 'xz -dc --format=lzma'
)

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT

is_elf() { [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }

for ((i = 0; i < ${#formats[@]}; i += 2)); do
	magic=${formats[i]} decompress=${formats[i + 1]}
	command -v "${decompress%% *}" >/dev/null || continue
	# grep -b gives byte offsets; the payload ends before the bzImage's
	# trailer, so the decompressor complains about trailing data: ignore that
	# and judge by what it wrote.
	while IFS=: read -r offset _; do
		tail -c +"$((offset + 1))" "$in" | $decompress >"$tmp" 2>/dev/null || true
		if [ -s "$tmp" ] && is_elf "$tmp"; then
			mv "$tmp" "$out"
			trap - EXIT
			exit 0
		fi
	done < <(LC_ALL=C grep -obUaP "$magic" "$in" || true)
done
echo "extract-vmlinux: no compressed ELF kernel found in $in" >&2
exit 1
