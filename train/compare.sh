#!/usr/bin/env bash
# One GPU-machine command that ranks training recipes on the quality benchmark at equal compute:
# every candidate trains at the same time on the one GPU (same minutes, same share of it), from
# the checkpoint in weights/, then is exported and scored by the Rust benchmark on the GPU.
#
#   train/compare.sh NAME:"train.py flags" [NAME:"flags" ...]
#
# Environment: OUT (what comes back), MINUTES (per candidate, default 5), QUALITY (the quality
# example's binary, default .carry/quality), CLASSIFIER=1 also trains the benchmark's classifier
# first (once, when the yardstick is made) and scores the shipped weights as the baseline row,
# EXTRA (more train.py flags for every candidate).
# Brings back: yardstick.tgz (train/quality, docs/quality, docs/QUALITY.md, the classifier
# fixture), NAME.tgz.0* (the exported checkpoint, split under 16 MiB) and logs.tgz.
set -u
OUT=${OUT:-/tmp/out}
MINUTES=${MINUTES:-5}
QUALITY=${QUALITY:-.carry/quality}
data=/tmp/icons.safetensors
mkdir -p "$OUT" /tmp/logs
[ -f $data ] || python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('train/data/pack/icons.safetensors.xz'), open('$data', 'wb'), 1 << 24)"
names=()
for spec in "$@"; do
  name=${spec%%:*}
  names+=("$name")
  # shellcheck disable=SC2086
  python3 train/train.py --data $data --state /tmp/state-"$name" --out /tmp/run-"$name" --resume-ema weights \
    --minutes "$MINUTES" --log-every 2000 --decay-time ${EXTRA:-} ${spec#*:} > /tmp/logs/train-"$name".log 2>&1 &
done
if [ "${CLASSIFIER:-0}" = 1 ]; then
  python3 train/classifier.py --data $data --heldout train/quality/heldout.txt --out train/quality \
    --fixture tests/fixtures/classifier_io.safetensors --minutes 1.5 > /tmp/logs/classifier.log 2>&1
  tail -1 /tmp/logs/classifier.log
  "$QUALITY" --data $data --backend gpu --label "baseline (session 5, RGB)" > /tmp/logs/quality-baseline.log 2>&1
  tail -2 /tmp/logs/quality-baseline.log
fi
wait
for name in "${names[@]}"; do
  tail -3 /tmp/logs/train-"$name".log
  python3 train/export.py --ema /tmp/run-"$name" --weights /tmp/w-"$name" --fixture /tmp/w-"$name"/trained_io.safetensors \
    > /tmp/logs/export-"$name".log 2>&1
  cp /tmp/run-"$name"/preview.png /tmp/w-"$name"/ 2>/dev/null
  cp /tmp/run-"$name"/progress.json /tmp/w-"$name"/ 2>/dev/null
  # Scored one after another: rows.json is one file.
  "$QUALITY" --data $data --backend gpu --weights /tmp/w-"$name" --label "$name" > /tmp/logs/quality-"$name".log 2>&1
  tail -2 /tmp/logs/quality-"$name".log
  tar -C /tmp -czf - w-"$name" | split -b 15m -d - "$OUT/$name.tgz."
done
tar -czf "$OUT/yardstick.tgz" train/quality docs/quality docs/QUALITY.md tests/fixtures/classifier_io.safetensors 2>/dev/null
tar -C /tmp -czf "$OUT/logs.tgz" logs
grep -A3 "^| model" docs/QUALITY.md | cut -c1-400
