#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine, installing what it needs:
#   Mesa's lavapipe (a real Vulkan driver on the CPU) so every GPU cross-check runs,
#   then every cargo test (CPU reference, PyTorch fixtures, WGSL vs candle, hub, converter,
#   hostile inputs), then the browser end-to-end tests in headless Chromium (web/test.sh).
# With lavapipe installed a missing adapter is a bug, so GPU tests fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null
fi
export FAVICON_DIFFUSOR_REQUIRE_GPU=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

cargo test --release --lib --tests --examples
# The cooperative-matrix tile runs only where the adapter has tensor cores (not lavapipe): say
# in the log whether its cross-checks ran here, rather than let a passing test hide it.
cargo test --release --test gpu_coop -- --nocapture 2>&1 | grep -E 'NOT RUN|^test |mean pixel' || true
cargo bench --no-run
cargo test --release --doc
web/test.sh
