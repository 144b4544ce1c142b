#!/usr/bin/env bash
# Checks, inside the test VM, what berth's tests rely on there: a pure
# cgroup v2 hierarchy with the controllers enabled and enforcing limits,
# overlayfs, user/mount/pid/net namespaces, pivot_root, veth, bridge, tun.
#
#   vm/run-in-vm.sh -- vm/selftest.sh
#
# One line per check, then "selftest: N passed, N failed"; exits 1 if any
# failed, showing that check's output.
set -uo pipefail

[ "$(hostname)" = berth-vm ] || { echo "selftest: run me inside the VM: vm/run-in-vm.sh -- $0" >&2; exit 2; }

cg=/sys/fs/cgroup
scratch=$(mktemp -d /tmp/selftest.XXXXXX)
passed=0 failed=0

# A check still running after this many seconds has hung: the guest's kernel
# or the emulation under it is stuck, and every later check would hang too.
check_timeout=${BERTH_SELFTEST_TIMEOUT:-60}

# hang_report NAME: what the guest's user tasks are waiting on, and the
# kernel's own list of blocked tasks, for a check that hung.
hang_report() {
	local d state wchan cmd
	echo "HUNG   $1 (still running after ${check_timeout}s); the guest's tasks:"
	for d in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)
		[ -n "$cmd" ] || continue # a kernel thread
		state=$(sed -n 's/^State:[[:space:]]*//p' "$d/status" 2>/dev/null)
		read -r wchan <"$d/wchan" 2>/dev/null
		echo "       | ${d#/proc/} $state wchan=${wchan:-?} $cmd"
		sed 's/^/       |     /' "$d/stack" 2>/dev/null
	done
	echo w >/proc/sysrq-trigger
	dmesg | tail -n 80 | sed 's/^/       | /'
}

check() { # check NAME CMD...: run CMD, quietly unless it fails or hangs
	local name=$1 pid watchdog rc
	shift
	"$@" >"$scratch/out" 2>&1 &
	pid=$!
	# On a hang: report, then power off at once so the host sees the VM
	# stop (exit 125) instead of waiting out its own, longer timeout.
	(
		trap 'kill "$timer" 2>/dev/null; exit' TERM
		sleep "$check_timeout" &
		timer=$!
		wait "$timer"
		hang_report "$name"
		echo o >/proc/sysrq-trigger
	) &
	watchdog=$!
	wait "$pid"
	rc=$?
	kill "$watchdog" 2>/dev/null
	wait "$watchdog" 2>/dev/null
	if [ "$rc" = 0 ]; then
		echo "ok     $name"
		passed=$((passed + 1))
	else
		echo "FAILED $name"
		sed 's/^/       | /' "$scratch/out"
		failed=$((failed + 1))
	fi
}

# --- cgroup v2 -----------------------------------------------------------------
cgroup2_root() { [ "$(stat -fc %T $cg)" = cgroup2fs ]; }
no_v1() { ! awk '$3 == "cgroup" { print; found = 1 } END { exit !found }' /proc/self/mounts; }
enabled() { grep -qw "$1" $cg/cgroup.subtree_control || { cat $cg/cgroup.subtree_control; false; }; }

# in_cgroup NAME CMD...: CMD in a fresh child cgroup NAME (limits set by the
# caller beforehand), its exit status returned.
in_cgroup() {
	local name=$1
	shift
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg/$name" "$@"
}
new_cgroup() { rmdir "$cg/$1" 2>/dev/null; mkdir "$cg/$1"; }

child_limits() {
	new_cgroup selftest-limits || return
	echo 64M >$cg/selftest-limits/memory.max &&
		echo 10 >$cg/selftest-limits/pids.max &&
		echo "50000 100000" >$cg/selftest-limits/cpu.max &&
		echo 0 >$cg/selftest-limits/cpuset.cpus &&
		echo "default 200" >$cg/selftest-limits/io.weight &&
		[ -f $cg/selftest-limits/hugetlb.2MB.max ] &&
		echo "$(cat /sys/block/nullb0/dev) rbps=1048576 wiops=100" >$cg/selftest-limits/io.max &&
		[ "$(in_cgroup selftest-limits cat /proc/self/cgroup)" = "0::/selftest-limits" ] &&
		rmdir $cg/selftest-limits
}

# remove_cgroup NAME: cgroup.kill, then wait until it is empty and remove it.
remove_cgroup() {
	echo 1 >"$cg/$1/cgroup.kill" &&
		timeout 10 sh -c 'until grep -q "populated 0" "$0/cgroup.events"; do sleep 0.1; done' "$cg/$1" &&
		rmdir "$cg/$1"
}

# An allocation past memory.max is OOM-killed, and memory.events counts it.
memory_bites() {
	new_cgroup selftest-oom || return
	echo 32M >$cg/selftest-oom/memory.max && echo 0 >$cg/selftest-oom/memory.swap.max || return
	# dd's buffer is one block, filled from /dev/zero.
	if in_cgroup selftest-oom dd if=/dev/zero of=/dev/null bs=128M count=1 status=none; then
		echo "128 MiB fit under memory.max=32M"
		return 1
	fi
	grep -q '^oom_kill [1-9]' $cg/selftest-oom/memory.events || { cat $cg/selftest-oom/memory.events; return 1; }
	rmdir $cg/selftest-oom
}

# A fork past pids.max fails (dash gives up at once where bash retries).
pids_bite() {
	new_cgroup selftest-pids || return
	echo 4 >$cg/selftest-pids/pids.max || return
	if in_cgroup selftest-pids dash -c 'for i in 1 2 3 4 5 6; do sleep 10 & done'; then
		echo "6 sleeps started under pids.max=4"
		return 1
	fi
	grep -q '^max [1-9]' $cg/selftest-pids/pids.events || { cat $cg/selftest-pids/pids.events; return 1; }
	remove_cgroup selftest-pids
}

# cgroup.freeze stops the processes (the kernel reports "frozen 1"), and
# cgroup.kill ends them all.
freeze() {
	new_cgroup selftest-freeze || return
	in_cgroup selftest-freeze sleep 60 &
	timeout 10 sh -c 'until grep -q "populated 1" "$0/cgroup.events"; do sleep 0.1; done' "$cg/selftest-freeze" &&
		echo 1 >$cg/selftest-freeze/cgroup.freeze &&
		timeout 10 sh -c 'until grep -q "frozen 1" "$0/cgroup.events"; do sleep 0.1; done' "$cg/selftest-freeze" &&
		echo 0 >$cg/selftest-freeze/cgroup.freeze &&
		remove_cgroup selftest-freeze
	local rc=$?
	wait
	return $rc
}

check "cgroup2 is mounted at $cg" cgroup2_root
check "no cgroup v1 hierarchy is mounted" no_v1
for c in cpu memory pids io cpuset hugetlb; do
	check "controller $c is enabled in the root" enabled $c
done
check "a child cgroup takes limits and a process" child_limits
check "memory.max OOM-kills an allocation past it" memory_bites
check "pids.max stops a fork past it" pids_bite
check "cgroup.freeze freezes, cgroup.kill kills" freeze
check "a cgroup namespace shows its root" unshare --cgroup sh -c '[ "$(cat /proc/self/cgroup)" = "0::/" ]'

# --- filesystems and namespaces ---------------------------------------------------
overlay() {
	mkdir -p "$scratch"/ovl/{lower,upper,work,merged} &&
		echo lower >"$scratch/ovl/lower/file" &&
		mount -t overlay overlay -o "lowerdir=$scratch/ovl/lower,upperdir=$scratch/ovl/upper,workdir=$scratch/ovl/work" "$scratch/ovl/merged" &&
		echo upper >"$scratch/ovl/merged/file" &&
		umount "$scratch/ovl/merged" &&
		[ "$(cat "$scratch/ovl/upper/file")" = upper ] && [ "$(cat "$scratch/ovl/lower/file")" = lower ]
}
pivot() { # as a container's init does it: a new mount namespace, a new root
	mkdir -p "$scratch/newroot" &&
		unshare --mount --propagation private sh -c '
			mount -t tmpfs newroot "$0" && cp /bin/busybox "$0/" && mkdir "$0/old" && cd "$0" &&
			pivot_root . old && /busybox umount -l /old && /busybox test ! -e /old/bin' "$scratch/newroot"
}
check "the root is writable" sh -c 'touch /selftest-probe && rm /selftest-probe'
check "overlayfs mounts" overlay
check "user namespace, root mapped" sh -c '[ "$(unshare --user --map-root-user id -u)" = 0 ]'
check "user+mount+pid namespaces, /proc remounted" \
	sh -c '[ "$(unshare --user --map-root-user --mount --pid --fork --mount-proc sh -c "echo \$\$")" = 1 ]'
check "pivot_root in a new mount namespace" pivot

# --- network ----------------------------------------------------------------------
check "loopback is up" sh -c 'ip -o link show lo | grep -q "UP"'
check "veth pair, bridge, tap in a network namespace" unshare --net sh -ec '
	ip link add veth0 type veth peer name veth1
	ip link add br0 type bridge
	ip link set veth0 master br0
	ip link set br0 up && ip link set veth0 up && ip link set veth1 up
	ip tuntap add mode tap tap0'
check "nf_tables is loaded" grep -q '^nf_tables ' /proc/modules
check "loop devices are available" test -c /dev/loop-control

rm -rf "$scratch"
echo "selftest: $passed passed, $failed failed"
[ "$failed" = 0 ]
