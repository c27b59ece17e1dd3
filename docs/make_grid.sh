#!/bin/sh
# Draws docs/grid.png with the Rust sample example: one row per prompt, 4 seeds (the example's
# --batch 4 from --seed 0), rows in this order: hippo, pizza, rocket, red heart, cat, sun, tree,
# grinning face, and the empty prompt. Then reports each sample's nearest training image.
#   docs/make_grid.sh [weights-dir]     (needs train/data/icons.safetensors for the distances)
# SAMPLE_BIN=path/to/sample skips the build and uses that binary.
set -eu
cd "$(dirname "$0")/.."
weights=${1:-weights}
tmp=$(mktemp -d)
if [ -z "${SAMPLE_BIN:-}" ]; then nice cargo build --release --example sample; fi
bin=${SAMPLE_BIN:-target/release/examples/sample}
i=0
for prompt in hippo pizza rocket "red heart" cat sun tree "grinning face" ""; do
  "$bin" --backend cpu --weights "$weights" --prompt "$prompt" --seed 0 --batch 4 --out "$tmp/row$i.png"
  i=$((i + 1))
done
python3 train/grid.py tile docs/grid.png "$tmp"/row0.png "$tmp"/row1.png "$tmp"/row2.png "$tmp"/row3.png \
  "$tmp"/row4.png "$tmp"/row5.png "$tmp"/row6.png "$tmp"/row7.png "$tmp"/row8.png
if [ -f train/data/icons.safetensors ]; then
  python3 train/grid.py nearest docs/grid.png train/data/icons.safetensors
fi
rm -r "$tmp"
