#!/usr/bin/env bash
# Runs a command inside a throwaway VM whose /sys/fs/cgroup is pure cgroup v2
# with every controller enabled, and exits with the command's exit status.
#
#   vm/run-in-vm.sh [--timeout SECS] [--retries N] [--cwd DIR] [--mem SIZE]
#                   [--cpus N] [--env NAME[=VALUE]]... -- CMD [ARGS...]
#
# The guest sees the host's whole filesystem (read-only, under a tmpfs overlay
# that discards its writes) and runs CMD as root in DIR (default: the current
# dir) with PATH, HOME, LANG, LC_ALL, TZ, CI and the caller's CARGO_*, RUST*
# and BERTH_* variables. Its output streams to this script's stdout, after the
# kernel's few boot messages. See vm/README.md.
#
# Exit status: CMD's; 124 if the VM ran past the timeout (it is killed); 125
# if the VM stopped without CMD finishing (the console log above says why);
# 2 for a usage error. --retries N boots a fresh VM up to N more times after
# a 124 or 125 (a stalled emulation, not a failing command), saying so.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
timeout=${BERTH_VM_TIMEOUT:-600}
retries=${BERTH_VM_RETRIES:-0}
mem=${BERTH_VM_MEM:-3G}
cpus=${BERTH_VM_CPUS:-2}
cwd=$PWD
env_names=(PATH HOME LANG LC_ALL TZ CI)
env_set=()

log() { echo "run-in-vm: $*" >&2; }
usage() {
	sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--timeout) timeout=${2:?}; shift 2 ;;
	--retries) retries=${2:?}; shift 2 ;;
	--cwd) cwd=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--cpus) cpus=${2:?}; shift 2 ;;
	--env)
		case ${2:?} in
		*=*) env_set+=("$2") ;;
		*) env_names+=("$2") ;;
		esac
		shift 2 ;;
	--) shift; break ;;
	-h | --help) usage ;;
	-*) log "unknown option $1"; usage ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || usage
[[ $timeout =~ ^[1-9][0-9]*$ ]] || { log "--timeout wants whole seconds, not '$timeout'"; exit 2; }
[[ $retries =~ ^[0-9]+$ ]] || { log "--retries wants a count, not '$retries'"; exit 2; }
cwd=$(cd "$cwd" && pwd) || { log "no such directory: $cwd"; exit 2; }

# 9p's passthrough model serves files with the host caller's rights, and
# the guest's root must be able to read everything a test may touch.
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { log "qemu-system-x86_64 is missing; run 'make vm-deps'"; exit 2; }

# Both are quick no-ops once the cache is filled.
"$here/fetch-kernel.sh"
"$here/build-initramfs.sh"
cache=${BERTH_VM_CACHE:-$here/cache}

# --- the exchange dir: the command in, the exit status out --------------------
xchg=$(mktemp -d "${TMPDIR:-/tmp}/berth-vm.XXXXXX")
qpid="" spid=""
stop_vm() { # SIGTERM to qemu, SIGKILL if it lingers
	local i
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -TERM "$qpid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$qpid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$qpid" 2>/dev/null || true
	fi
	if [ -n "$qpid" ]; then wait "$qpid" 2>/dev/null || true; fi
	qpid=""
}
cleanup() {
	if [ -n "$spid" ]; then kill "$spid" 2>/dev/null || true; fi
	stop_vm
	wait 2>/dev/null || true
	rm -rf "$xchg"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# command.sh, sourced by guest.sh's /bin/sh: POSIX quoting, and a clean
# environment by env -i.
quote() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }
cp "$here/guest.sh" "$xchg/guest.sh"
printf '%s\n' "$cwd" >"$xchg/cwd"
{
	printf 'cd -- %s || exit 126\n' "$(quote "$cwd")"
	printf 'exec env -i'
	while IFS= read -r name; do
		if [ -n "${!name+set}" ]; then printf ' %s' "$(quote "$name=${!name}")"; fi
	done < <(printf '%s\n' "${env_names[@]}"; compgen -e | grep -E '^(CARGO|RUST|BERTH_)' || true)
	for kv in "${env_set[@]}"; do printf ' %s' "$(quote "$kv")"; done
	for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
	printf '\n'
} >"$xchg/command.sh"

# --- the VM ---------------------------------------------------------------------
kernel_args=(
	console=ttyS0 quiet
	panic=-1          # reboot at once, which -no-reboot turns into qemu's exit
	cgroup_no_v1=all  # pure v2: no controller may be bound to a v1 hierarchy
	# Against stalls: an idle vCPU still ticks, so a wake-up lost in the
	# emulation delays a task by one tick, not forever (CI once saw the
	# selftest hang, silently, on a cpuset move); a task blocked for 30 s
	# is reported on the console.
	nohz=off
	sysctl.kernel.hung_task_timeout_secs=30
	# Speed under TCG, none visible to tests:
	mitigations=off   # page table isolation would flush the emulated TLB on each syscall
	tsc=reliable      # qemu's TSCs are in step; the HPET fallback costs an MMIO exit per read
	acpi=noirq        # PCI interrupt routing by ACPI's AML took ~1 s per virtio device
	cryptomgr.notests # the crypto self-tests took ~1 s of the boot
	init_on_alloc=0   # a hardening default that zeroes every page and slab allocation
	8250.nr_uarts=1
	${BERTH_VM_KERNEL_ARGS:-} # extra ones; "berth.debug" times the boot's steps
)
# TCG (this host's /dev/kvm does not run stock kernels), multi-threaded: a
# host thread per vCPU; BERTH_VM_ACCEL=kvm where KVM works. The ELF vmlinux
# boots through the PVH entry point. No NIC, no display; the serial port is
# the console. Two 9p shares: the host's / (read-only) and the exchange dir.
qemu=(
	qemu-system-x86_64 -name berth-vm
	-machine pc -accel "${BERTH_VM_ACCEL:-tcg,thread=multi}" -cpu max -smp "$cpus" -m "$mem"
	-nodefaults -no-user-config -display none -vga none -no-reboot
	-chardev stdio,id=console,signal=off -serial chardev:console
	-kernel "$cache/kernel/vmlinux" -initrd "$cache/initramfs.cpio" -append "${kernel_args[*]}"
	-fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap
	-device virtio-9p-pci,disable-legacy=on,fsdev=hostroot,mount_tag=hostroot
	-fsdev local,id=exchange,path="$xchg",security_model=passthrough
	-device virtio-9p-pci,disable-legacy=on,fsdev=exchange,mount_tag=exchange
)
# boot: one VM run of the command; its exit status as described above.
boot() {
	local finished="" qstatus status
	rm -f "$xchg/status"
	# PDEATHSIG: should this script die by SIGKILL, no qemu (and no timer)
	# is left behind to hold a CPU.
	setpriv --pdeathsig KILL -- "${qemu[@]}" </dev/null &
	qpid=$!
	setpriv --pdeathsig KILL -- sleep "$timeout" &
	spid=$!

	wait -n -p finished "$qpid" "$spid" && qstatus=0 || qstatus=$?
	if [ "$finished" = "$spid" ]; then
		spid=""
		log "timed out after ${timeout}s: killing the VM (--timeout or BERTH_VM_TIMEOUT sets the limit)"
		stop_vm
		return 124
	fi
	qpid=""
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=""
	if [ ! -f "$xchg/status" ]; then
		log "the VM stopped (qemu exit status $qstatus) before the command finished; the console log above says why"
		return 125
	fi
	status=$(cat "$xchg/status")
	[[ $status =~ ^[0-9]+$ ]] || { log "the VM wrote no exit status ('$status')"; return 125; }
	return "$status"
}

try=0
while :; do
	boot && status=0 || status=$?
	case $status in
	124 | 125)
		if [ "$try" -lt "$retries" ]; then
			try=$((try + 1))
			log "the VM stalled (exit $status): booting a fresh one, retry $try of $retries"
			continue
		fi
		;;
	esac
	exit "$status"
done
