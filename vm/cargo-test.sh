#!/usr/bin/env bash
# Builds the project's tests on the host, then runs the test binaries inside
# the cgroup v2 VM, and exits 0 only if all passed:
#
#   vm/cargo-test.sh [CARGO_TEST_ARGS...] [-- TEST_BINARY_ARGS...]
#   vm/cargo-test.sh --release --test 'cgroup*' -- --test-threads=1
#
# CARGO_TEST_ARGS select and build the tests as `cargo test --no-run` does;
# TEST_BINARY_ARGS go to each test binary (filters, --test-threads, ...).
# Building inside the VM would be ~20x slower under TCG. BERTH_VM_TIMEOUT
# bounds the VM's run (default here 1800 s).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
cargo=${CARGO:-cargo}

cargo_args=() test_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; test_args=("$@"); break ;;
	*) cargo_args+=("$1"); shift ;;
	esac
done

# Compiler messages as JSON on stdout, one artifact a line; the test
# binaries are those with "test":true in their profile and an executable.
json=$(mktemp)
trap 'rm -f "$json"' EXIT
if ! "$cargo" test --no-run --message-format=json "${cargo_args[@]}" >"$json" 2>"$json.err"; then
	if grep -q 'no test target matches pattern' "$json.err"; then
		# A glob in VM_TESTS that nothing matches yet: say so, fail nothing.
		grep 'no test target matches pattern' "$json.err" | sed 's/^error: /vm-test: /' >&2
		rm -f "$json.err"
		echo "vm-test: no test binaries selected by: ${cargo_args[*]}" >&2
		exit 0
	fi
	cat "$json.err" >&2
	rm -f "$json.err"
	exit 1
fi
cat "$json.err" >&2
rm -f "$json.err"
# Only artifacts built as tests (profile.test): the binaries the tests run
# (berth, berth-runtime) are artifacts too, and their target says test=true.
mapfile -t bins < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])
' "$json")
if [ ${#bins[@]} -eq 0 ]; then
	echo "vm-test: no test binaries selected by: ${cargo_args[*]}" >&2
	exit 0
fi

for bin in "${bins[@]}"; do
	case $bin in
	"$PWD"/*) ;;
	/tmp/*) echo "vm-test: $bin is hidden in the VM, whose /tmp is its own: use a target dir outside /tmp" >&2; exit 1 ;;
	esac
done

export BERTH_VM_TIMEOUT=${BERTH_VM_TIMEOUT:-1800}
exec "$here/run-in-vm.sh" --cwd "$PWD" -- "$here/test-binaries.sh" "${bins[@]}" -- "${test_args[@]}"
