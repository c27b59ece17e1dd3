"""Times the PyTorch twin on the same checkpoint and the same 32-step DDPM loop as the Rust
bench (examples/bench.rs): eager and CUDA-graph, fp32 / tf32 / fp16, median of repeats.

    python3 train/bench_torch.py --weights DIR --batches 1,64 [--device cpu]
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True, help="checkpoint folder or random:SEED")
    p.add_argument("--batches", default="1,64")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads); default: torch's")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    name = torch.cuda.get_device_name() if a.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"torch {torch.__version__} on {name}")
    print("| variant | batch | median ms | min ms |")
    print("|---|---|---|---|")
    variants = [("eager fp32", torch.float32, False, False)]
    if a.device == "cuda":
        variants += [
            ("graph fp32", torch.float32, True, False),
            ("graph tf32", torch.float32, True, True),
            ("graph fp16", torch.float16, True, False),
        ]
    for batch in [int(b) for b in a.batches.split(",")]:
        for label, dtype, graph, tf32 in variants:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            with torch.no_grad():
                model = load(a.weights, a.device, dtype)
                run = sampler(model, batch, a.device, dtype)
                if graph:
                    run = graphed(run)
                med, low = timed(run, a.repeats, a.device)
            print(f"| {label} | {batch} | {med:.2f} | {low:.2f} |", flush=True)


if __name__ == "__main__":
    main()
