#!/usr/bin/env bash
# The demo in one command: builds the wasm package, then serves the page on
# http://127.0.0.1:8080/ (PORT=... to change) with the checkpoint from weights/.
# Extra arguments go to serve.mjs, e.g. `web/serve.sh --weights /tmp/random-checkpoint`.
set -euo pipefail
cd "$(dirname "$0")"
./build.sh
if ! command -v node >/dev/null; then
  echo "serve.sh: needs node (Debian: apt-get install nodejs)" >&2
  exit 1
fi
if [[ " $* " != *" --weights "* && ! -f ../weights/config.json ]]; then
  echo "serve.sh: weights/ holds no checkpoint yet; the page will say so. For random weights:"
  echo "  cargo run --release --example random_checkpoint -- /tmp/random-checkpoint"
  echo "  web/serve.sh --weights /tmp/random-checkpoint"
fi
exec node serve.mjs --port "${PORT:-8080}" "$@"
