#!/bin/sh
# Installs the emoji and glyph icon sets and emojibase labels into train/data/npm (ignored by git).
# The dataset example (examples/dataset.rs) reads them from there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/data/npm"
cd "$here/data/npm"
[ -f package.json ] || echo '{"name":"favicon-sources","private":true}' > package.json
# Exact versions (weights/README.md): the vocabulary, and so a checkpoint's prompt rows, depends
# on them; a newer emojibase could rename or add tags.
npm install --no-audit --no-fund --ignore-scripts --save-exact \
  @iconify-json/noto@1.2.9 @iconify-json/twemoji@1.2.5 @iconify-json/fluent-emoji-flat@1.2.6 \
  @iconify-json/openmoji@1.2.29 @iconify-json/emojione@1.2.3 @iconify-json/fxemoji@1.2.2 emojibase-data@17.0.0 \
  @iconify-json/noto-v1@1.2.5 @iconify-json/streamline-emojis@1.2.4 @iconify-json/fluent-emoji-high-contrast@1.2.6 \
  @iconify-json/mdi@1.2.3 @iconify-json/tabler@1.2.41 @iconify-json/lucide@1.2.137 @iconify-json/carbon@1.2.29 @iconify-json/game-icons@1.2.4
npm ls --depth=0
