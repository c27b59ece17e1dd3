#!/usr/bin/env bash
# The browser end-to-end tests, in one command. Installs what they need: Debian's chromium
# (apt-get, as root), playwright-core (npm), the wasm target and wasm-bindgen CLI (build.sh);
# builds the native examples that make random checkpoints and reference images; then runs
# web/tests/*.test.mjs with node's test runner, one file at a time (SwiftShader is slow).
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi
./build.sh
(cd .. && nice cargo build --release --example sample --example random_checkpoint)

exec node --test --test-concurrency=1 --test-timeout=600000 tests/*.test.mjs
