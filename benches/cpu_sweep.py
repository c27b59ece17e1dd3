"""The CPU thread sweep: Rust CPU engines against PyTorch eager fp32 on the same Philox-random
weights (`random:1`, the default config), 32-step DDPM at batch 1, no guidance. Runs are
interleaved: in each round PyTorch times one sample, then each Rust engine times one in its own
process (after its own warm-up run), so that a noisy machine hits every side alike. Prints the
median and the spread (min–max) of the rounds for each thread count.

    python3 benches/cpu_sweep.py --bench target/release/examples/bench --threads 1,2 --rounds 5 \
        --engine "fast=--backend cpu" --engine "candle=--backend cpu --engine candle"

Thread counts reach Rust through RAYON_NUM_THREADS (candle's and our engine's pool) and PyTorch
through torch.set_num_threads.
"""
import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "train"))
from bench_torch import load, sampler  # noqa: E402

ROW = re.compile(r"^\|[^|]*\| 1 \| ddpm \| \d+ \| ([0-9.]+) \|", re.M)


def rust_once(bench, extra, threads):
    """One sample's milliseconds, as the bench binary reports it (its warm-up run excluded)."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = [bench, *shlex.split(extra), "--batches", "1", "--repeats", "1"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    match = ROW.search(out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return float(match.group(1))


def spread(times):
    return f"{statistics.median(times):.0f} ({min(times):.0f}–{max(times):.0f})"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", required=True, help="the examples/bench binary")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--engine", action="append", required=True, help="NAME=bench arguments")
    a = p.parse_args()
    engines = [e.split("=", 1) for e in a.engine]
    print(f"torch {torch.__version__}, {os.cpu_count()} logical CPUs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    heads = " | ".join(f"{name} ms | {name} / torch" for name, _ in engines)
    print(f"| threads | PyTorch eager fp32 ms | {heads} |")
    print("|---" * (2 + 2 * len(engines)) + "|")
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        with torch.no_grad():
            run = sampler(load("random:1", "cpu", torch.float32), 1, "cpu", torch.float32)
            run()
            ours = {name: [] for name, _ in engines}
            theirs = []
            for _ in range(a.rounds):
                start = time.perf_counter()
                run()
                theirs.append((time.perf_counter() - start) * 1e3)
                for name, extra in engines:
                    ours[name].append(rust_once(a.bench, extra, threads))
        cells = " | ".join(
            f"{spread(ours[n])} | {statistics.median(ours[n]) / statistics.median(theirs):.2f}" for n, _ in engines
        )
        print(f"| {threads} | {spread(theirs)} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
