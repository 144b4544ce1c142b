#!/usr/bin/env bash
# Runs test binaries one after the other, from the package root as cargo
# does, and exits 101 (cargo's code) if any failed. vm/cargo-test.sh runs
# this inside the VM:
#
#   vm/test-binaries.sh BINARY... [-- TEST_BINARY_ARGS...]
set -uo pipefail

bins=() args=()
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; args=("$@"); break ;;
	*) bins+=("$1"); shift ;;
	esac
done

# What cargo sets for a test at run time (tests may read it with env::var).
export CARGO_MANIFEST_DIR=$PWD

failed=()
for bin in "${bins[@]}"; do
	echo "     Running $bin (in the cgroup v2 VM)"
	"$bin" "${args[@]}" || failed+=("$(basename "$bin")")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "vm-test: failed: ${failed[*]}"
	exit 101
fi
