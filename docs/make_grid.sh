#!/bin/sh
# Draws docs/grid.png with the Rust sample example: one row per prompt, 4 seeds (the example's
# --batch 4 from --seed 0), on a checkerboard. Rows: the README's prompts (hippo, pizza, rocket,
# red heart, cat, sun, tree, grinning face, the empty prompt), then eight from the quality
# benchmark's list (star, cloud, car, clock, flag, house, umbrella, key).
#   docs/make_grid.sh [weights-dir]
# SAMPLE_BIN=path/to/sample skips the build and uses that binary.
set -eu
cd "$(dirname "$0")/.."
weights=${1:-weights}
tmp=$(mktemp -d)
if [ -z "${SAMPLE_BIN:-}" ]; then nice cargo build --release --example sample; fi
bin=${SAMPLE_BIN:-target/release/examples/sample}
i=10
for prompt in hippo pizza rocket "red heart" cat sun tree "grinning face" "" star cloud car clock flag house umbrella key; do
  "$bin" --backend cpu --weights "$weights" --prompt "$prompt" --seed 0 --batch 4 --out "$tmp/row$i.png"
  i=$((i + 1))
done
python3 train/grid.py tile docs/grid.png "$tmp"/row*.png
rm -r "$tmp"
