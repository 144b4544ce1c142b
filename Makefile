# berth — see README.md. Every target is idempotent and runs as root.
SHELL := /bin/bash
CARGO ?= cargo
PROFILE ?= release
CARGO_FLAGS := $(if $(filter release,$(PROFILE)),--release,)
BIN := target/$(PROFILE)

# Debian packages the build and the tests need.
APT_PACKAGES := busybox-static umoci skopeo libseccomp-dev pkg-config gcc \
	runc util-linux procps
APT_PACKAGES += docker-registry apache2-utils openssl zstd pigz python3 tar
APT_PACKAGES += uidmap
APT_PACKAGES += nftables iproute2 curl
# berth-runtime under containerd and podman (tests/containerd.rs, tests/podman.rs)
APT_PACKAGES += containerd podman conmon catatonit

.PHONY: all deps fixtures build test unit integration run bench bench-deps clean lint fmt soak fuzz fuzz-deps

all: build

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	else echo "deps: all installed"; fi

fixtures: deps
	bash rootfs-fixtures/build.sh

build:
	$(CARGO) build $(CARGO_FLAGS) --bins

# Unit tests (pure logic, no root needed) and integration tests (root: they
# create real containers, each under its own temporary state root). Tests
# build in the dev profile: release's LTO on every test binary costs more
# build time than it saves test time on a 2-core CI machine.
# Then the cgroup tests again in the pure cgroup v2 VM (about 3 minutes:
# boot, selftest, the cgroup suites under TCG); both parts always run.
test: deps fixtures
	@rc=0; $(CARGO) test --no-fail-fast || rc=1; \
	$(MAKE) --no-print-directory vm-test || rc=1; \
	exit $$rc

# The load suite at the issue's figures (500 run/stop/rm cycles by 8
# clients, 200 running containers under ps/logs/stats); `make test` runs it
# small. The variables scale it further.
SOAK_CLIENTS ?= 8
SOAK_CYCLES ?= 500
SOAK_RUNNING ?= 200
SOAK_SECS ?= 60
soak: deps fixtures
	BERTH_LOAD_CLIENTS=$(SOAK_CLIENTS) BERTH_LOAD_CYCLES=$(SOAK_CYCLES) \
	BERTH_LOAD_RUNNING=$(SOAK_RUNNING) BERTH_LOAD_SECS=$(SOAK_SECS) \
		$(CARGO) test --test load -- --nocapture --test-threads=1

unit:
	$(CARGO) test $(CARGO_FLAGS) --lib

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy $(CARGO_FLAGS) --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

# Fuzzing (fuzz/, README.md "Fuzzing"): each target for FUZZ_TIME seconds,
# starting from the saved corpus and regressions; new inputs go to the
# git-ignored fuzz/work/, crashes to fuzz/artifacts/<target>/. cargo-fuzz
# passes nightly -Z flags; RUSTC_BOOTSTRAP lets the stable compiler take them.
FUZZ_TIME ?= 60
FUZZ_TARGETS ?= unpack_layer image_reference image_manifest runtime_plan
FUZZ_FLAGS ?= --sanitizer none
FUZZ_ARGS ?= -max_len=65536 -timeout=20 -rss_limit_mb=2048

fuzz-deps:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz

fuzz: fuzz-deps
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/work/$$t; \
		echo "fuzz: $$t for $(FUZZ_TIME)s"; \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $(FUZZ_FLAGS) $$t fuzz/work/$$t fuzz/corpus/$$t \
			$$(test -d fuzz/regressions/$$t && echo fuzz/regressions/$$t) \
			-- -max_total_time=$(FUZZ_TIME) $(FUZZ_ARGS) || exit 1; \
	done

# Loads the busybox fixture image into the engine (default root, as a user
# would) and runs a container from it.
run: deps fixtures build
	$(BIN)/berth load -i rootfs-fixtures/build/busybox-oci.tar
	$(BIN)/berth run --rm localhost/busybox:latest sh -c 'echo "hello from a berth container: $$(hostname), pid $$$$, $$(id)"'

# berth against runc, crun, conmon, podman, tar, pigz and umoci (bench/NOTES.md).
# BENCH_ARGS=--quick for a short run; --only lifecycle,engine,scale,unpack,pull;
# --thousand (or BENCH_1000=1) adds 1000 containers. Prints the table and
# writes bench/results/latest.json.
BENCH_APT_PACKAGES := runc crun conmon podman umoci skopeo docker-registry \
	debootstrap tar gzip pigz zstd coreutils
BENCH_ARGS ?=

bench-deps:
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_APT_PACKAGES)"

bench: deps bench-deps fixtures build
	$(BIN)/berth-bench $(BENCH_ARGS)

clean:
	$(CARGO) clean
	rm -rf rootfs-fixtures/build

# --- The cgroup v2 VM (vm/README.md) ------------------------------------------
# This host's cgroups are hybrid; pure v2 is tested in a qemu VM (TCG) booting
# Debian's kernel over the host's / (read-only, under a tmpfs overlay).
VM_APT_PACKAGES := qemu-system-x86 cpio busybox-static xz-utils zstd iproute2 util-linux
# Which tests `make vm-test` runs in the VM: cargo test selection flags
# (VM_TESTS= runs every test), and the test binaries' own flags.
VM_TESTS ?= --test 'cgroup*'
VM_TEST_ARGS ?=
VM_TIMEOUT ?= 900

.PHONY: vm-deps vm-kernel vm-selftest vm-test

vm-deps:
	@missing=""; for p in $(VM_APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "vm-deps: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	else echo "vm-deps: all installed"; fi

# Fetches and caches the kernel (vm/cache/, git-ignored) and the initramfs.
vm-kernel: vm-deps
	bash vm/fetch-kernel.sh
	bash vm/build-initramfs.sh

# --retries: a VM that stalls (timed out, or powered off by the selftest's
# watchdog) is booted once more, saying so; a failing check is not retried.
vm-selftest: vm-kernel
	vm/run-in-vm.sh --timeout 180 --retries 1 -- vm/selftest.sh

# The selftest, then the selected tests, built here and run in the VM.
vm-test: deps fixtures vm-selftest
	CARGO=$(CARGO) BERTH_VM_TIMEOUT=$(VM_TIMEOUT) BERTH_VM_RETRIES=1 vm/cargo-test.sh $(VM_TESTS) -- $(VM_TEST_ARGS)
