#!/bin/sh
# The side-by-side run on the GPU machine (BENCHMARKS.md, issue 7), in ONE device command: the
# WGSL path at its defaults (with --profile), then with the matmul variants forced (to choose the
# defaults from measurements), then the PyTorch twin on the same Philox weights. Logs go to $OUT.
#
#   cargo build --release --example bench && mkdir -p .carry/bin && strip -o .carry/bin/bench target/release/examples/bench
#   device run, carry [".gl", ".carry/bin"]:
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; \
#   export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; sh benches/gpu_machine.sh
set -u
bench=${1:-.carry/bin/bench}
out=${OUT:-/tmp/gpu_machine}
mkdir -p "$out"
date -u | tee "$out/machine.txt"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$out/machine.txt"
"$bench" --batches 1,8,64 --samplers ddpm,ddim8 --repeats 10 --profile > "$out/wgsl.txt" 2>&1
for variant in "--wide-prefetch" "--separate-adaln" "--block-attention" "--separate-adaln --wide-prefetch --block-attention" "--checks wgpu" "--checks off" "--splits 1" "--tile small" "--tile large" "--tile wide"; do
    echo "== $variant"
    # shellcheck disable=SC2086
    "$bench" --batches 1,8,64 --repeats 5 $variant 2>&1 | grep -E '^\| .* \| (1|8|64) \| ddpm'
done > "$out/variants.txt" 2>&1
python3 train/bench_torch.py --weights random:1 --batches 1,8,64 > "$out/torch.txt" 2>&1
cat "$out/variants.txt"
grep -E '^\||GPU memory|dispatches' "$out/wgsl.txt"
grep -A12 'profile, batch 1,' "$out/wgsl.txt"
tail -20 "$out/torch.txt"
