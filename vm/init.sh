#!/bin/busybox sh
# Stage 1 of the test VM: /init of the initramfs, run by busybox as PID 1.
#
# Loads the modules, builds the guest's root (the host's / over 9p, read-only,
# under a tmpfs overlay so the guest can write anywhere), mounts the usual
# filesystems and a pure cgroup2 hierarchy in it, and switch_roots into it to
# run stage 2 (vm/guest.sh, from the exchange dir) as PID 1.
#
# switch_root rather than pivot_root, which fails on the initramfs; and not a
# chroot either, under which unshare(CLONE_NEWUSER) fails with EPERM.

export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

# The host reads a missing status file as "the VM failed": say why, and stop.
fail() {
	echo "berth-vm: $*"
	poweroff -f
	sleep 60
}

mount -t proc proc /proc || fail "cannot mount /proc"
mount -t sysfs sysfs /sys || fail "cannot mount /sys"

# berth.debug on the kernel command line: time each step.
case " $(cat /proc/cmdline) " in *" berth.debug "*) debug=1 ;; *) debug="" ;; esac
step() { [ -z "$debug" ] || echo "berth-vm: $(cut -d' ' -f1 /proc/uptime)s $*"; }

load() { # load LIST: insmod each module named in the file LIST, in order
	while read -r mod; do
		step "insmod $mod"
		insmod "/lib/modules/$mod.ko" || { echo "berth-vm: cannot load module $mod"; return 1; }
	done <"$1"
}
# The extra modules (networking, null_blk) load on the other vCPU while the
# root is built: fetch-kernel.sh checks that none needs a boot one.
load /lib/modules/modules.extra &
extra=$!
load /lib/modules/modules.boot || fail "cannot load the modules for the root"

step "mount"
# cache=loose: the host's files do not change while the VM runs (the host
# side waits for it), and 9p without a cache makes every stat a round trip.
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=512000 hostroot /lower ||
	fail "cannot mount the host's / (9p tag hostroot)"
mount -t tmpfs -o mode=0755 upper /upper || fail "cannot mount the overlay's tmpfs"
mkdir /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot ||
	fail "cannot mount the overlay root"

r=/newroot
mnt() { # mnt TYPE SOURCE TARGET OPTIONS
	mkdir -p "$r$3" && mount -t "$1" -o "$4" "$2" "$r$3" || fail "cannot mount $1 on $3"
}
mnt proc proc /proc nosuid,nodev,noexec
mnt sysfs sysfs /sys nosuid,nodev,noexec
mnt devtmpfs devtmpfs /dev nosuid,mode=0755
mnt devpts devpts /dev/pts nosuid,noexec,newinstance,gid=5,mode=0620,ptmxmode=0666
mnt tmpfs shm /dev/shm nosuid,nodev,mode=1777
mnt tmpfs tmpfs /run nosuid,nodev,mode=0755
mnt 9p exchange /run/berth-vm trans=virtio,version=9p2000.L,msize=512000
# /tmp is a tmpfs, not the overlay: an overlay's upperdir cannot be on an
# overlay, and tests put theirs in temp dirs. A working dir under the host's
# /tmp stays visible (and writable) through a bind mount of the overlay.
read -r cwd <"$r/run/berth-vm/cwd" || fail "no cwd in the exchange dir"
case $cwd/ in
/tmp/?*)
	mkdir /keep && mount --bind "$r$cwd" /keep || fail "cannot bind $cwd"
	mnt tmpfs tmpfs /tmp nosuid,nodev,mode=1777
	mkdir -p "$r$cwd" && mount --move /keep "$r$cwd" || fail "cannot keep $cwd visible"
	;;
*) mnt tmpfs tmpfs /tmp nosuid,nodev,mode=1777 ;;
esac
# As systemd mounts it on a pure v2 host.
mnt cgroup2 cgroup2 /sys/fs/cgroup nosuid,nodev,noexec,nsdelegate,memory_recursiveprot
for link in fd:/proc/self/fd stdin:/proc/self/fd/0 stdout:/proc/self/fd/1 stderr:/proc/self/fd/2; do
	ln -sfn "${link#*:}" "$r/dev/${link%%:*}"
done

# Every controller the kernel offers, enabled for the root's children.
cg=$r/sys/fs/cgroup
for c in $(cat "$cg/cgroup.controllers"); do
	echo "+$c" >"$cg/cgroup.subtree_control" || fail "cannot enable cgroup controller $c"
done

wait $extra || fail "cannot load the modules for containers"
ip link set lo up || fail "cannot bring up lo"
hostname berth-vm
# The console's tty would turn each \n into \r\n in the host's log.
stty -onlcr

step "switch_root"
exec switch_root "$r" /bin/sh /run/berth-vm/guest.sh
