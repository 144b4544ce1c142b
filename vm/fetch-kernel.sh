#!/usr/bin/env bash
# Fetches Debian's generic amd64 kernel package with `apt-get download` (never
# installed) and caches what the test VM boots:
#
#   $BERTH_VM_CACHE/kernel/vmlinux        the uncompressed ELF kernel (PVH entry)
#   $BERTH_VM_CACHE/kernel/modules/*.ko   the modules below and their dependencies,
#                                         decompressed, for busybox insmod
#   $BERTH_VM_CACHE/kernel/modules.boot   the names of those the guest needs
#                                         before its root is mounted, in load order
#   $BERTH_VM_CACHE/kernel/modules.extra  the others, in load order
#   $BERTH_VM_CACHE/kernel/release        the kernel release (uname -r)
#
# Idempotent: a stamp records the package and this recipe; an unchanged one is
# not fetched again. BERTH_VM_KERNEL_PKG=linux-image-X-amd64 pins a package
# (default: what the linux-image-amd64 metapackage depends on).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${BERTH_VM_CACHE:-$here/cache}
out=$cache/kernel

# What the guest loads at boot (with their dependencies, which come first).
# Names that are built into this kernel are skipped. Modules are not
# autoloaded in the guest: add any a test needs here.
boot_modules=(
	virtio_pci 9pnet_virtio 9p # the host's / and the exchange dir
	overlay                    # the guest's root
)
# Loaded in the background while the guest mounts its root.
extra_modules=(
	veth bridge tun loop # container networking and images
	null_blk             # /dev/nullb0: a block device for io.max and io.weight
	nf_tables nft_ct nft_nat nft_masq nft_chain_nat nft_reject_inet nft_fib_inet
)

log() { echo "vm-kernel: $*" >&2; }
die() { log "$*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb busybox flock; do
	command -v "$tool" >/dev/null || die "$tool is missing; run 'make vm-deps'"
done

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # one fetch at a time; a second caller then finds the stamp

# The versioned package behind the metapackage. `apt-cache depends` needs the
# package lists: a fresh machine may have none yet.
resolve_package() {
	apt-cache depends --important linux-image-amd64 2>/dev/null |
		awk '$1 ~ /Depends:/ && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
recipe=$(cat "$0" "$here/extract-vmlinux.sh" | sha256sum | cut -c1-16)
if [ -z "${BERTH_VM_KERNEL_PKG:-}" ] && [ -f "$out/.stamp" ]; then
	pkg=$(cut -d' ' -f1 "$out/.stamp") # keep the cached kernel: no apt look-up
else
	pkg=${BERTH_VM_KERNEL_PKG:-$(resolve_package)}
fi
if [ -z "$pkg" ]; then
	log "no package lists; running apt-get update"
	apt-get update -q >&2 || die "apt-get update failed"
	pkg=$(resolve_package)
	[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to a versioned kernel package"
fi
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$pkg $recipe" ]; then
	exit 0
fi

tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- download (kept in the cache: a changed recipe re-extracts, not re-fetches)
deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*_amd64.deb" | sort -V | tail -n1)
if [ -z "$deb" ]; then
	log "downloading $pkg"
	# -o APT::Sandbox::User=root: the _apt user may not write to the cache dir.
	if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); then
		# Stale package lists: the versioned package they name may be gone.
		log "download failed; running apt-get update and retrying"
		apt-get update -q >&2
		pkg=${BERTH_VM_KERNEL_PKG:-$(resolve_package)}
		(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || die "cannot download $pkg"
	fi
	deb=$(find "$tmp" -maxdepth 1 -name "${pkg}_*_amd64.deb" | head -n1)
	[ -n "$deb" ] || die "apt-get download left no ${pkg}_*.deb"
	rm -f "$cache/${pkg}"_*_amd64.deb
	mv "$deb" "$cache/"
	deb=$cache/$(basename "$deb")
fi

# --- extract ------------------------------------------------------------------
log "extracting $(basename "$deb")"
dpkg-deb -x "$deb" "$tmp/pkg"
release=$(basename "$(find "$tmp/pkg/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")
[ -n "$release" ] || die "$deb has no /lib/modules/<release>"
mkdir -p "$tmp/out/modules"
"$here/extract-vmlinux.sh" "$tmp/pkg/boot/vmlinuz-$release" "$tmp/out/vmlinux"
chmod 644 "$tmp/out/vmlinux"
cp "$tmp/pkg/boot/config-$release" "$tmp/out/config"
echo "$release" >"$tmp/out/release"

# --- modules and their dependencies --------------------------------------------
# Debian generates modules.dep at install time (postinst), so the package has
# none: busybox depmod writes it.
moddir=$tmp/pkg/lib/modules/$release
busybox depmod -b "$tmp/pkg" "$release"

declare -A path_of deps_of builtin alias_of state
# A module's name: its file name without .ko*, with - read as _ (as the kernel
# does). Sets $name; no subshell, as this runs for each of ~4000 modules.
norm() { name=${1##*/}; name=${name%%.ko*}; name=${name//-/_}; }
while read -r mod rest; do
	mod=${mod%:}
	deps=""
	for d in $rest; do norm "$d"; deps+=" $name"; done
	norm "$mod"
	path_of[$name]=$mod deps_of[$name]=$deps
done <"$moddir/modules.dep"
while read -r line; do norm "$line"; builtin[$name]=1; done <"$moddir/modules.builtin"
# For soft dependencies named by alias ("crc32c"): the first module offering
# it, but a *_generic one over any other, which may need a CPU feature.
while read -r _ alias mod; do
	case ${alias_of[$alias]:-} in *_generic) continue ;; esac
	if [ -z "${alias_of[$alias]:-}" ] || [[ $mod == *_generic ]]; then alias_of[$alias]=$mod; fi
done < <(grep -E '^alias [^:]+ ' "$moddir/modules.alias")

# The module as a plain ELF object in $tmp/ko (busybox insmod wants that).
plain() {
	local src=$moddir/${path_of[$1]} dst=$tmp/ko/$1.ko
	[ -f "$dst" ] && return
	mkdir -p "$tmp/ko"
	case $src in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -dcq "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*) die "unknown module format: $src" ;;
	esac
}

order=()
visit() { # depth first: what a module needs is loaded before it
	local self=$1 name dep softdep pre=""
	[ -z "${builtin[$self]:-}" ] || return 0
	case ${state[$self]:-} in
	"") ;;
	"$phase") return 0 ;;
	active) die "dependency cycle at $self" ;;
	*) die "$self, which an extra module needs, is a boot one: move that to boot_modules" ;;
	esac
	[ -n "${path_of[$self]:-}" ] || die "module $self is neither built into $release nor in its package"
	state[$self]=active
	plain "$self"
	# "softdep=pre: a b post: c": the pre ones, which its init may need
	# (libcrc32c asks the crypto API for crc32c, and nothing autoloads it).
	# Soft: skipped when built in or absent.
	softdep=$(grep -aoE 'softdep=[^[:cntrl:]]*' "$tmp/ko/$self.ko" | head -n1 || true)
	if [[ $softdep =~ pre:([^:]*)( post:|$) ]]; then pre=${BASH_REMATCH[1]}; fi
	for dep in $pre; do
		norm "${alias_of[$dep]:-$dep}"
		if [ -n "${path_of[$name]:-}" ]; then visit "$name"; fi
	done
	for dep in ${deps_of[$self]}; do visit "$dep"; done
	state[$self]=$phase
	order+=("$self")
}
# The extra modules load in parallel with the boot ones: they may not need them.
phase=boot
for m in "${boot_modules[@]}"; do norm "$m"; visit "$name"; done
nboot=${#order[@]}
phase=extra
for m in "${extra_modules[@]}"; do norm "$m"; visit "$name"; done
for name in "${order[@]}"; do cp "$tmp/ko/$name.ko" "$tmp/out/modules/"; done
printf '%s\n' "${order[@]:0:nboot}" >"$tmp/out/modules.boot"
printf '%s\n' "${order[@]:nboot}" >"$tmp/out/modules.extra"

echo "$pkg $recipe" >"$tmp/out/.stamp"
rm -rf "$out"
mv "$tmp/out" "$out"
log "cached $release in $out (${#order[@]} modules: ${order[*]})"
