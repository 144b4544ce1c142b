#!/bin/sh
# Stage 2 of the test VM: PID 1 in the guest's root, run by the host's
# /bin/sh after vm/init.sh's switch_root. Runs the command that
# vm/run-in-vm.sh wrote to the exchange dir, records its exit status there,
# and powers off.
#
# The command is not PID 1 (the kernel drops the signals PID 1 has no handler
# for), reads /dev/null, and writes to the serial console, which qemu copies
# to the host's stdout. Only shell builtins here: under TCG each exec of a
# dynamically linked program costs about 0.1 s.
x=/run/berth-vm

read -r cmdline </proc/cmdline
case " $cmdline " in
*" berth.debug "*) read -r up _ </proc/uptime && echo "berth-vm: ${up}s command" ;;
esac
(. "$x/command.sh") </dev/null
echo "$?" >"$x/status"

# 9p writes are synchronous (no cache on the exchange mount): nothing to sync.
# busybox-static is a dependency of the initramfs, so on the host too; the
# sysrq fallback powers off from a kernel worker, and PID 1 must not exit
# before it does.
/bin/busybox poweroff -f
echo o >/proc/sysrq-trigger
exec sleep 60
