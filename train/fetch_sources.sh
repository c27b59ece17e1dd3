#!/bin/sh
# Installs the icon sets and emojibase labels into train/data/npm (ignored by git).
# The dataset example (examples/dataset.rs) reads them from there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/data/npm"
cd "$here/data/npm"
[ -f package.json ] || echo '{"name":"favicon-sources","private":true}' > package.json
npm install --no-audit --no-fund --ignore-scripts \
  @iconify-json/noto @iconify-json/twemoji @iconify-json/fluent-emoji-flat \
  @iconify-json/openmoji @iconify-json/emojione @iconify-json/fxemoji emojibase-data
npm ls --depth=0
