"""Writes the fixtures for checkpoints in the seed's own formats (run from the repo root:
`python3 train/seed_fixtures.py`):

port/uncond_export.pt, port/uncond_export.safetensors: the port/ `uncond` tensors (read from
  port/uncond_reference.safetensors) under the names the seed's `dit.py` `export_matrices()`
  gives them (`block_0.attn.to_q.weight`, `norm1.scale.weight`, ...), without the x0 head,
  saved by torch.save and by the `safetensors` package.

seed_eps/: a WTS1 file (the seed's browser export, written by port_fixtures.write_wts1 straight
  from the format, so without an x0 head) and io.safetensors: the seed's epsilon-only DDPM loop
  run on it by the PyTorch twin in float64, with the crate's Philox noise (initial noise from
  tag 0xFFFFFFFF, step t's noise from tag t). Every step is the seed's update
  x <- (x - beta/sqrt(1-abar) eps)/sqrt(1-beta) + sqrt(beta) z, t = T-1 included. Weights are
  rounded to f16 so the GPU, which stores f16, holds them exactly.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
from fixtures import random_state  # noqa: E402
from model import Config, DiT, cosine_schedule, ddpm_step  # noqa: E402
from philox import normals  # noqa: E402
from port_fixtures import wts1_key, write_wts1  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
PORT, SEED_EPS = os.path.join(ROOT, "port"), os.path.join(ROOT, "seed_eps")
INITIAL_NOISE_TAG = 0xFFFFFFFF


def export_names():
    state = load_file(os.path.join(PORT, "uncond_reference.safetensors"))
    exported = {wts1_key(k): v for k, v in state.items() if not k.startswith("proj_fin") and k != "pos_embed.pos_emb"}
    torch.save(exported, os.path.join(PORT, "uncond_export.pt"))
    save_file(exported, os.path.join(PORT, "uncond_export.safetensors"))


def seed_eps():
    # What the converter cannot read from WTS1 shapes (no position buffer, heads x head_dim only).
    hints = {"heads": 2, "image_size": 16, "timesteps": 8, "schedule_offset": 3e-5}
    cfg = Config(image_size=16, patch_size=4, dim=32, depth=2, heads=2, head_dim=8, mlp_mult=2, time_dim=16,
                 timesteps=hints["timesteps"], schedule_offset=hints["schedule_offset"], x0_head=False)
    state = {k: v.half().float() for k, v in random_state(cfg, 41).items()}
    os.makedirs(SEED_EPS, exist_ok=True)
    write_wts1(os.path.join(SEED_EPS, "model.wts1"), state)

    model = DiT(cfg).double().eval()
    missing, unexpected = model.load_state_dict({k: v.double() for k, v in state.items()}, strict=False)
    assert missing == ["pos_embed.pos_emb"] and not unexpected, (missing, unexpected)
    betas, alpha_bars = cosine_schedule(cfg.timesteps, cfg.schedule_offset)
    seed, shape = 7, (1, cfg.channels, cfg.image_size, cfg.image_size)
    n = int(np.prod(shape))
    noise = lambda tag: torch.from_numpy(normals(seed, tag, n).astype(np.float64)).view(shape)
    x = noise(INITIAL_NOISE_TAG)
    xs, epss, previews = [], [], []
    with torch.no_grad():
        for t in reversed(range(cfg.timesteps)):
            eps, x0 = model(x, torch.tensor([float(t)], dtype=torch.float64))
            assert x0 is None
            ab = alpha_bars[t].item()
            xs.append(x)
            epss.append(eps)
            previews.append((x - (1 - ab) ** 0.5 * eps) / ab ** 0.5)
            x = ddpm_step(x, eps, noise(t), t, betas, alpha_bars)
    io = {"xs": torch.stack(xs), "eps": torch.stack(epss), "x0_previews": torch.stack(previews), "x_final": x}
    io = {k: v.float().contiguous() for k, v in io.items()}
    meta = {"seed": str(seed), "hints": json.dumps(hints)}
    save_file(io, os.path.join(SEED_EPS, "io.safetensors"), metadata=meta)


if __name__ == "__main__":
    export_names()
    seed_eps()
