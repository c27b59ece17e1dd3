"""Starts a model from a checkpoint of another shape: RGB to premultiplied RGBA, another vocabulary.

The transformer body carries over unchanged; only the pixel-facing matrices and the prompt rows
change shape:
- An RGB model saw icons composited on pastel backgrounds (0.72-1, mean 0.86). The RGBA model's
  colour channels are the premultiplied colour over a grey matte m (c*a + m*(1-a)): with m = 0.86
  they are exactly such a composite, so `patch_embed`'s colour columns stay and its alpha columns
  start at zero, and both heads keep their colour rows. Measured on the CPU (TRAINING_LOG.md): the
  first loss from the session-5 weights (batch 128, same draws) is 0.51 with the matte, most of
  it the untrained alpha channel, against 2.11 for premultiplied colour over black (m = 0), where
  the alpha columns have to undo the black.
- `to_pixels` (the eps head): noise is per channel, so the alpha rows start as the mean of the
  colour rows. `proj_fin` (the x0 head): alpha rows start at zero.
- `prompt_embed`: rows follow their words into the new vocabulary; new words start at zero.
"""
import json
import os

import torch


def source_config(spec):
    folder = spec if os.path.isdir(spec) else os.path.dirname(spec.split(",")[0])
    for name in ("config.json", "progress.json"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            cfg = json.load(open(path))
            return cfg.get("config", cfg)
    return None


def widen_channels(tensors, old, new, pixels, matte):
    if old == new:
        return tensors
    if (old, new) != (3, 4):
        raise SystemExit(f"--resume-ema: cannot start a {new}-channel model from a {old}-channel one")
    out = dict(tensors)
    w = tensors["patch_embed.weight"]  # [dim, 3 * pixels]
    colour = w.reshape(w.shape[0], 3, pixels)
    # Over black (m = 0) the RGB model's input ~ x_c - x_a + 1: alpha columns undo the black.
    alpha = torch.zeros_like(colour[:, :1]) if matte > 0 else -colour.sum(1, keepdim=True)
    out["patch_embed.weight"] = torch.cat([colour, alpha], 1).reshape(w.shape[0], 4 * pixels)
    eps = tensors["to_pixels.weight"].reshape(3, pixels, -1)
    out["to_pixels.weight"] = torch.cat([eps, eps.mean(0, keepdim=True)], 0).reshape(4 * pixels, -1)
    x0 = tensors["proj_fin.weight"].reshape(3, pixels, -1)
    out["proj_fin.weight"] = torch.cat([x0, torch.zeros_like(x0[:1])], 0).reshape(4 * pixels, -1)
    b = tensors["proj_fin.bias"].reshape(3, pixels)
    out["proj_fin.bias"] = torch.cat([b, torch.zeros_like(b[:1])], 0).reshape(4 * pixels)
    print(f"widened {old} -> {new} channels", flush=True)
    return out


def remap_vocab(tensors, old_vocab, new_vocab):
    if old_vocab == new_vocab or "prompt_embed.weight" not in tensors:
        return tensors
    old = tensors["prompt_embed.weight"]
    new = torch.zeros(len(new_vocab) + 1, old.shape[1], dtype=old.dtype)
    new[0] = old[0]
    row = {w: i + 1 for i, w in enumerate(old_vocab)}
    kept = 0
    for i, w in enumerate(new_vocab):
        if w in row:
            new[i + 1] = old[row[w]]
            kept += 1
    print(f"prompt rows: {kept} of {len(new_vocab)} words carried over from {len(old_vocab)}", flush=True)
    return {**tensors, "prompt_embed.weight": new}


def adapt_state(tensors, spec, cfg):
    """`tensors` (from `spec`) reshaped for the model of `cfg`."""
    src = source_config(spec)
    if src is None:
        return tensors
    pixels = cfg.patch_size ** 2
    tensors = widen_channels(tensors, src.get("channels", 3), cfg.channels, pixels, cfg.matte)
    return remap_vocab(tensors, src.get("vocab") or [], cfg.vocab or [])
