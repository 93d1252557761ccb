#!/usr/bin/env bash
# Installs everything magikrun's demo and tests need on a fresh Debian 12 machine (as root, with Node and npm):
# Bun from npm, Debian packages with apt-get, workspace dependencies from the lockfile, the native launcher.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION=1.4.5
APT_PACKAGES=(
  busybox-static     # test and demo images are built from it
  docker-registry    # real registry for pull tests, on 127.0.0.1
  apache2-utils      # htpasswd for the Basic-auth registry
  runc               # reference runtime for the differential suite
  skopeo umoci       # reference tools for the image benchmark
  gcc libc6-dev      # builds the native launcher
  wabt               # wat2wasm for wasm test modules
  clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32  # C to wasm32-wasi test modules
  zstd               # zstd layers in image tests
  openssl            # the token-auth registry's signing certificate
  time               # GNU time: peak RSS in the native benchmark
  iproute2 procps
)

log() { printf '[setup] %s\n' "$*" >&2; }

if ! command -v bun >/dev/null 2>&1 || [ "$(bun --version)" != "$BUN_VERSION" ]; then
  log "installing bun@$BUN_VERSION from npm"
  npm install -g --no-fund --no-audit "bun@$BUN_VERSION" >&2
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  [[ "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

log "installing workspace dependencies from bun.lock"
bun install --frozen-lockfile >&2
# Also done by the package's postinstall and, lazily, at first use; explicit here so a fresh machine has it.
log "building the native launcher"
bun packages/runtime-native/scripts/build-launcher.ts >&2
log "building the magikrun executable (apps/cli/dist/magikrun)"
bun apps/cli/scripts/build.ts >&2
log "ready"
