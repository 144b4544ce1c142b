# berth — see README.md. Every target is idempotent and runs as root.
SHELL := /bin/bash
CARGO ?= cargo
PROFILE ?= release
CARGO_FLAGS := $(if $(filter release,$(PROFILE)),--release,)
BIN := target/$(PROFILE)

# Debian packages the build and the tests need.
APT_PACKAGES := busybox-static umoci skopeo libseccomp-dev pkg-config gcc \
	runc util-linux procps
APT_PACKAGES += uidmap

.PHONY: all deps fixtures build test unit integration run bench clean lint fmt

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
# create real containers, each under its own temporary state root).
test: deps fixtures
	$(CARGO) test $(CARGO_FLAGS) --no-fail-fast

unit:
	$(CARGO) test $(CARGO_FLAGS) --lib

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy $(CARGO_FLAGS) --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

# Until the engine runs images, `make run` runs the fixture bundle.
run: deps fixtures build
	$(BIN)/berth-runtime --root /tmp/berth-run-root run --bundle rootfs-fixtures/build/bundle berth-make-run-$$$$

bench: deps fixtures build
	@echo "bench: not written yet (see issue 9)"; exit 1

clean:
	$(CARGO) clean
	rm -rf rootfs-fixtures/build
