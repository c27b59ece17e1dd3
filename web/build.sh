#!/usr/bin/env bash
# Builds the wasm package into web/pkg (wasm-bindgen --target web).
# Installs what it needs from the registries: the wasm32 target (rustup) and the
# wasm-bindgen CLI at exactly the wasm-bindgen version in Cargo.lock (cargo install).
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ -z "$want" ]; then
  echo "build.sh: no wasm-bindgen in Cargo.lock" >&2
  exit 1
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  echo "build.sh: installing wasm-bindgen-cli $want (found: ${have:-none})"
  # --locked first; if the registry lacks a crate its lockfile pins, resolve afresh.
  cargo install wasm-bindgen-cli --version "$want" --locked ||
    cargo install wasm-bindgen-cli --version "$want"
fi

# SIMD128: the CPU engine's matmul tile is written in it (src/cpu/matmul.rs); every browser with WebAssembly SIMD (all current ones) runs it.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:--C target-feature=+simd128}"
nice cargo build --lib --release --target wasm32-unknown-unknown --no-default-features --features wasm

target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
wasm-bindgen --target web --no-typescript --out-dir web/pkg \
  "${target:-target}/wasm32-unknown-unknown/release/favicon_diffusor.wasm"

raw=$(wc -c < web/pkg/favicon_diffusor_bg.wasm)
gz=$(gzip -9 -c web/pkg/favicon_diffusor_bg.wasm | wc -c)
echo "built web/pkg: favicon_diffusor_bg.wasm $((raw / 1024)) KiB raw, $((gz / 1024)) KiB gzip"
