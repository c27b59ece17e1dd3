"""Times the PyTorch twin on the same checkpoint and the same 32-step DDPM loop as the Rust
bench (examples/bench.rs): eager and CUDA-graph, fp32 / tf32 / fp16, and torch.compile, median
of repeats.

    python3 train/bench_torch.py --weights DIR --batches 1,64 [--device cpu] [--threads N]
        [--variants "eager fp32,compiled fp16"]

`compiled fp16` is the strongest thing a PyTorch user would pick: the model through
`torch.compile(mode="max-autotune-no-cudagraphs")` (Inductor's Triton kernels, autotuned), and the
whole 32-step loop captured in one CUDA graph around it. Compiling and autotuning takes minutes
and prints a long log: send stderr to a file.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
from model import Config, DiT, cosine_schedule  # noqa: E402


def load(folder, device, dtype):
    """A checkpoint folder, or `random:SEED` for the default config's Philox-random weights
    (the same values as `model::random_tensors` in Rust and examples/bench.rs)."""
    if folder.startswith("random:"):
        from fixtures import random_state
        model = DiT(Config())
        model.load_state_dict(random_state(Config(), int(folder.split(":")[1])), strict=False)
        return model.to(device=device, dtype=dtype).eval()
    cfg = json.load(open(os.path.join(folder, "config.json")))
    cfg.pop("vocab_file", None)
    model = DiT(Config(**cfg))
    state = load_file(os.path.join(folder, "model.safetensors"))
    model.load_state_dict(state, strict=False)
    return model.to(device=device, dtype=dtype).eval()


def sampler(model, batch, device, dtype):
    """Returns a function running one whole 32-step sample on static buffers."""
    cfg = model.cfg
    betas, alpha_bars = cosine_schedule(cfg.timesteps, cfg.schedule_offset)
    shape = (batch, cfg.channels, cfg.image_size, cfg.image_size)
    x = torch.randn(shape, device=device, dtype=dtype)
    start = x.clone()
    noise = [torch.randn(shape, device=device, dtype=dtype) for _ in range(cfg.timesteps)]
    ts = [torch.full((batch,), float(t), device=device, dtype=dtype) for t in range(cfg.timesteps)]

    def run():
        x.copy_(start)
        for t in reversed(range(cfg.timesteps)):
            beta, ab = betas[t].item(), alpha_bars[t].item()
            eps, _ = model(x, ts[t])
            nxt = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
            if t > 0:
                nxt = nxt + math.sqrt(beta) * noise[t]
            x.copy_(nxt)
        return x

    return run


def timed(fn, repeats, device):
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def graphed(fn):
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def compiled(model):
    """The model through Inductor with autotuned kernels; the caller captures the loop in a graph."""
    return torch.compile(model, mode="max-autotune-no-cudagraphs", fullgraph=True)


VARIANTS = {
    # label: (dtype, CUDA graph, tf32, torch.compile)
    "eager fp32": (torch.float32, False, False, False),
    "graph fp32": (torch.float32, True, False, False),
    "graph tf32": (torch.float32, True, True, False),
    "graph fp16": (torch.float16, True, False, False),
    "compiled fp16": (torch.float16, True, False, True),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True, help="checkpoint folder or random:SEED")
    p.add_argument("--batches", default="1,64")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU runs)")
    p.add_argument("--variants", help="comma-separated labels (default: all the device runs)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    name = torch.cuda.get_device_name() if a.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"torch {torch.__version__} on {name}")
    print("| variant | batch | median ms | min ms |")
    print("|---|---|---|---|")
    labels = a.variants.split(",") if a.variants else [l for l in VARIANTS if a.device == "cuda" or l == "eager fp32"]
    unknown = [l for l in labels if l not in VARIANTS]
    if unknown:
        p.error(f"unknown variant {unknown[0]!r}; expected one of {', '.join(VARIANTS)}")
    for batch in [int(b) for b in a.batches.split(",")]:
        for label in labels:
            dtype, graph, tf32, compile_ = VARIANTS[label]
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            with torch.no_grad():
                model = load(a.weights, a.device, dtype)
                started = time.perf_counter()
                if compile_:
                    model = compiled(model)
                run = sampler(model, batch, a.device, dtype)
                if graph:
                    run = graphed(run)
                setup = time.perf_counter() - started
                med, low = timed(run, a.repeats, a.device)
            note = f" (compile and capture {setup:.0f} s)" if compile_ else ""
            print(f"| {label}{note} | {batch} | {med:.2f} | {low:.2f} |", flush=True)


if __name__ == "__main__":
    main()
