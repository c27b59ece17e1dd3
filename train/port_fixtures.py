"""Writes the porting and hostile-input fixtures under tests/fixtures/port and tests/fixtures/hostile
(run from the repo root: `python3 train/port_fixtures.py`).

port/: tiny checkpoints saved by PyTorch itself (torch.save of a state dict, f32 and f16), the same
tensors written by the `safetensors` package as the reference the Rust reader is checked against,
the config each was built from, and a WTS1 file written by the independent writer below,
straight from the WTS1 spec.

hostile/: PyTorch-written files a loader must refuse: a pickle that calls `os.system`, the legacy
non-zip format, an integer tensor and a non-contiguous view.
"""
import json
import os
import struct
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from model import Config, DiT  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
PORT, HOSTILE = os.path.join(ROOT, "port"), os.path.join(ROOT, "hostile")
MARKER = "/tmp/favicon-diffusor-pickle-ran"


def tiny(vocab=None):
    return Config(image_size=8, patch_size=4, channels=3, dim=16, depth=2, heads=2, head_dim=4,
                  mlp_mult=2, time_dim=8, timesteps=8, vocab=vocab)


def wts1_key(name):
    """Our state-dict name -> the seed's WTS1 key."""
    if name.startswith("blocks."):
        _, index, rest = name.split(".", 2)
        name = f"block_{index}.{rest}"
    for long, short in ((".scale_proj.weight", ".scale.weight"), (".shift_proj.weight", ".shift.weight")):
        if name.endswith(long):
            name = name[: -len(long)] + short
    return name


def write_wts1(path, state):
    """WTS1: b"WTS1", u32 count; per tensor u32 key length, key, zero pad to 4, u32 ndims,
    u32 dims, u32 element count, f32 data; all little-endian. No proj_fin, no position buffer."""
    items = [(k, v) for k, v in state.items() if not k.startswith("proj_fin") and k != "pos_embed.pos_emb"]
    out = bytearray(b"WTS1") + struct.pack("<I", len(items))
    for name, tensor in items:
        key = wts1_key(name).encode()
        out += struct.pack("<I", len(key)) + key + b"\0" * ((4 - len(key) % 4) % 4)
        out += struct.pack("<I", tensor.dim()) + struct.pack(f"<{tensor.dim()}I", *tensor.shape)
        out += struct.pack("<I", tensor.numel()) + tensor.float().contiguous().numpy().astype("<f4").tobytes()
    with open(path, "wb") as f:
        f.write(out)


class CallsSystem:
    """Unpickling this would run a shell command; a safe loader must refuse it."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def main():
    os.makedirs(PORT, exist_ok=True)
    os.makedirs(HOSTILE, exist_ok=True)
    torch.manual_seed(6)
    for case, cfg in (("uncond", tiny()), ("cond", tiny(["hippo", "red", "cat"]))):
        model = DiT(cfg)
        with torch.no_grad():
            model.proj_fin.bias.normal_()
        state = model.state_dict()
        torch.save(state, os.path.join(PORT, f"{case}.pt"))
        save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(PORT, f"{case}_reference.safetensors"))
        with open(os.path.join(PORT, f"{case}_config.json"), "w") as f:
            json.dump(cfg.to_json(), f, indent=2)
        if cfg.vocab is None:
            write_wts1(os.path.join(PORT, f"{case}.wts1"), state)
            torch.save({k: v.half() for k, v in state.items()}, os.path.join(PORT, f"{case}_f16.pt"))
        else:
            with open(os.path.join(PORT, f"{case}_vocab.txt"), "w") as f:
                f.write("\n".join(cfg.vocab) + "\n")

    torch.save({"patch_embed.weight": CallsSystem()}, os.path.join(HOSTILE, "calls_system.pt"))
    torch.save({"patch_embed.weight": torch.zeros(2, 3)}, os.path.join(HOSTILE, "legacy.pt"),
               _use_new_zipfile_serialization=False)
    torch.save({"patch_embed.weight": torch.arange(6).reshape(2, 3)}, os.path.join(HOSTILE, "int64.pt"))
    torch.save({"patch_embed.weight": torch.ones(3, 2).t()}, os.path.join(HOSTILE, "transposed.pt"))


if __name__ == "__main__":
    main()
