#!/bin/sh
# The whole side-by-side run on the GPU machine (BENCHMARKS.md), in ONE device command of about
# 8 minutes, in this order (the slowest, torch.compile's autotuning, last):
#   1. the cooperative-matrix cross-checks (tests/gpu_coop.rs; they need tensor cores),
#   2. the WGSL path on the seed config's random weights: defaults (with --profile), the fp32
#      fallback (--coop off) and the attention choice forced each way,
#   3. the shipped model, guided, as users run it,
#   4. the first image: `sample --backend gpu --timings`, fresh caches then warm (first_image.sh),
#   5. the CPU thread sweep: our engine, candle and PyTorch eager, interleaved (cpu_sweep.py),
#   6. the PyTorch twin on the GPU: eager, CUDA graphs fp32 / tf32 / fp16, and torch.compile.
# Logs go to $OUT (eight files: what the device tool brings back; Inductor's long autotune log
# stays in /tmp); a short table is printed last.
#
# Build here, strip and pack into .carry/ (ignored), then one device run with carry [".gl", ".carry"]:
#   cargo build --release --example bench --example sample
#   cargo test --release --test gpu_coop --no-run        # prints the test binary's path
#   mkdir -p /tmp/bins && for b in bench sample; do strip -o /tmp/bins/$b target/release/examples/$b; done
#   strip -o /tmp/bins/gpu_coop target/release/deps/gpu_coop-<hash>
#   tar -C /tmp/bins -cf - bench sample gpu_coop | xz -T2 > .carry/bins.tar.xz   # the tree + 30 MB of
#                                                   binaries would pass the device tool's 64 MiB
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; \
#   export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; \
#   mkdir -p /tmp/bin && tar -C /tmp/bin -xJf .carry/bins.tar.xz && sh benches/gpu_machine.sh /tmp/bin
set -u
bin=${1:-.carry}
out=${OUT:-/tmp/gpu_machine}
mkdir -p "$out"
here=$(dirname "$0")
{
    date -u
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    nproc
    python3 -c 'import torch; print("torch", torch.__version__)'
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"

if [ -x "$bin/gpu_coop" ]; then
    FAVICON_DIFFUSOR_REQUIRE_GPU=1 FAVICON_DIFFUSOR_REQUIRE_COOP=1 timeout 90 "$bin/gpu_coop" --test-threads 1 --nocapture > "$out/coop_tests.txt" 2>&1
    echo "coop tests: exit $?" | tee -a "$out/machine.txt"
fi

timeout 120 "$bin/bench" --batches 1,8,64 --samplers ddpm,ddim8 --repeats 10 --profile > "$out/wgsl.txt" 2>&1
variant() {
    echo "== $*"
    timeout 60 "$bin/bench" --batches 1,8,64 --repeats 5 "$@" 2>&1 | grep -E '^(device|\| .* \| (1|8|64) \| ddpm)'
}
{
    variant --coop off
    variant --block-attention on
    variant --block-attention off
} > "$out/variants.txt" 2>&1
timeout 60 "$bin/bench" --weights weights --guidance 3 --prompt hippo --batches 1,64 --repeats 5 > "$out/shipped.txt" 2>&1

timeout 90 sh "$here/first_image.sh" "$bin/sample" --weights weights > "$out/first_image.txt" 2>&1

timeout 150 python3 "$here/cpu_sweep.py" --bench "$bin/bench" --threads 1,2,4,8,16 --rounds 5 \
    --engine "ours=--backend cpu" --engine "candle=--backend cpu --engine candle" > "$out/cpu.txt" 2>&1

timeout 330 python3 train/bench_torch.py --weights random:1 --batches 1,64 > "$out/torch.txt" 2> /tmp/torch_log.txt

grep -E 'test |result|NOT RUN|panicked|mean pixel' "$out/coop_tests.txt" 2>/dev/null | grep -vE 'rel [0-9.]+e-0[4-9]$' | tail -12
grep -A12 'profile, batch 1,' "$out/wgsl.txt"
grep -E '^\||GPU memory|^device' "$out/wgsl.txt"
cat "$out/variants.txt" "$out/shipped.txt" "$out/first_image.txt" "$out/cpu.txt" "$out/torch.txt"
