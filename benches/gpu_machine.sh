#!/bin/sh
# The side-by-side run on the GPU machine (BENCHMARKS.md), in ONE device command: the
# cooperative-matrix cross-check tests (when their binary is given), the WGSL path at its
# defaults (with --profile), then with variants forced (to choose the defaults from
# measurements), then (TORCH=1) the PyTorch twin on the same Philox weights. Logs go to $OUT.
#
#   cargo build --release --example bench && mkdir -p .carry/bin && strip -o .carry/bin/bench target/release/examples/bench
#   cargo test --release --test gpu_coop --no-run   # prints the test binary; strip it to .carry/bin/gpu_coop
#   device run, carry [".gl", ".carry/bin"]:
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; \
#   export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; sh benches/gpu_machine.sh .carry/bin/bench .carry/bin/gpu_coop
set -u
bench=${1:-.carry/bin/bench}
coop_tests=${2:-}
out=${OUT:-/tmp/gpu_machine}
mkdir -p "$out"
date -u | tee "$out/machine.txt"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$out/machine.txt"
if [ -n "$coop_tests" ]; then
    FAVICON_DIFFUSOR_REQUIRE_GPU=1 FAVICON_DIFFUSOR_REQUIRE_COOP=1 "$coop_tests" --test-threads 1 --nocapture > "$out/coop_tests.txt" 2>&1
    echo "coop tests: exit $?" | tee -a "$out/machine.txt"
fi
"$bench" --batches 1,8,64 --samplers ddpm,ddim8 --repeats 10 --profile > "$out/wgsl.txt" 2>&1
variant() {
    echo "== $*"
    "$bench" --batches 1,8,64 --repeats 5 "$@" 2>&1 | grep -E '^(device|\| .* \| (1|8|64) \| ddpm)'
}
{
    variant --coop off
    variant --block-attention on
    variant --block-attention off
    variant --coop off --block-attention off
} > "$out/variants.txt" 2>&1
if [ "${TORCH:-0}" = 1 ]; then
    python3 train/bench_torch.py --weights random:1 --batches 1,8,64 > "$out/torch.txt" 2>&1
    tail -20 "$out/torch.txt"
fi
grep -E 'test |result|NOT RUN|panicked|mean pixel|rel [0-9.e-]+$' "$out/coop_tests.txt" 2>/dev/null | grep -vE 'rel [0-9.]+e-0[4-9]$' | tail -30
cat "$out/variants.txt"
grep -E '^\||GPU memory|dispatches|^device' "$out/wgsl.txt"
grep -A14 'profile, batch 64,' "$out/wgsl.txt"
grep -A16 'profile, batch 1,' "$out/wgsl.txt"
