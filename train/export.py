"""Exports the EMA weights that train/train.py brought back to the Rust checkpoint format.

    python3 train/export.py --ema /work/.device/.../out --weights weights

Writes weights/config.json (the Config fields, vocabulary inline) and weights/model.safetensors
(f16, the names of src/weights.rs), then tests/fixtures/trained_io.safetensors: a fixed input and
the PyTorch model's (eps, x0) on it, computed in fp32 from the f16-rounded weights, so
tests/trained.rs can check that the Rust CPU path reproduces the shipped model.
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, DiT  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (prompt, timestep) per fixture row: a noisy start, a middle step and a clean end.
FIXTURE_ROWS = [("hippo", 31), ("red heart", 12), ("", 0)]


def load_ema(folder):
    tensors = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith("ema-") and name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(folder, name)))
    if not tensors:
        raise SystemExit(f"{folder}: no ema-*.safetensors files")
    progress = json.load(open(os.path.join(folder, "progress.json")))
    return tensors, progress


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ema", required=True, help="folder with ema-*.safetensors and progress.json")
    p.add_argument("--weights", default=os.path.join(ROOT, "weights"))
    p.add_argument("--fixture", default=os.path.join(ROOT, "tests/fixtures/trained_io.safetensors"))
    p.add_argument("--updates", type=int, default=None,
                   help="optimizer updates actually applied, when progress.json's step counts skipped steps")
    a = p.parse_args()

    tensors, progress = load_ema(a.ema)
    cfg = Config(**progress["config"])
    model = DiT(cfg)
    tensors.pop("pos_embed.pos_emb", None)
    f16 = {k: v.to(torch.float16).contiguous() for k, v in tensors.items()}
    result = model.load_state_dict({k: v.float() for k, v in f16.items()}, strict=False)
    if result.unexpected_keys or result.missing_keys != ["pos_embed.pos_emb"]:
        raise SystemExit(f"state dict does not match the model: {result}")

    os.makedirs(a.weights, exist_ok=True)
    with open(os.path.join(a.weights, "config.json"), "w") as f:
        json.dump(cfg.to_json(), f, indent=1)
        f.write("\n")
    meta = {"step": str(progress["step"]), "trained_s": f"{progress['trained_s']:.0f}"}
    if a.updates is not None:
        meta["updates"] = str(a.updates)
    save_file(f16, os.path.join(a.weights, "model.safetensors"), metadata=meta)
    size = os.path.getsize(os.path.join(a.weights, "model.safetensors"))
    print(f"wrote {a.weights}: {sum(v.numel() for v in f16.values())} parameters, {size / 1e6:.1f} MB, "
          f"step {progress['step']}{'' if a.updates is None else f' ({a.updates} updates applied)'}, {len(cfg.vocab)} words")

    gen = torch.Generator().manual_seed(20261127)
    b = len(FIXTURE_ROWS)
    x = torch.randn(b, cfg.channels, cfg.image_size, cfg.image_size, generator=gen)
    t = torch.tensor([float(step) for _, step in FIXTURE_ROWS])
    ids = [[cfg.vocab.index(w) + 1 for w in prompt.split()] for prompt, _ in FIXTURE_ROWS]
    width = max(1, max(len(i) for i in ids))
    words = torch.tensor([i + [0] * (width - len(i)) for i in ids])
    counts = torch.tensor([len(i) for i in ids])
    with torch.no_grad():
        eps, x0 = model.eval()(x, t, words, counts)
    save_file({"x": x, "t": t, "eps": eps.contiguous(), "x0": x0.contiguous()}, a.fixture,
              metadata={"prompts": json.dumps([prompt for prompt, _ in FIXTURE_ROWS])})
    print(f"wrote {a.fixture} ({os.path.getsize(a.fixture) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
