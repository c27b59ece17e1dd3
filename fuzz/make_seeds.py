"""Writes the seed corpora under fuzz/seeds/ (run from the repo root: `python3 fuzz/make_seeds.py`).
Valid files use the tiny config the fuzz targets load against; the rest are one-line
variations that reach the loaders' error paths."""
import io
import os
import struct
import sys
import zipfile

import torch
from safetensors.torch import save

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "..", "train"))
from model import Config, DiT  # noqa: E402
from port_fixtures import CallsSystem, write_wts1  # noqa: E402

FUZZ_CONFIG = Config(image_size=8, patch_size=4, channels=3, dim=8, depth=1, heads=2, head_dim=4,
                     mlp_mult=2, time_dim=4, timesteps=4)


def out(target, name, data):
    os.makedirs(os.path.join(ROOT, "seeds", target), exist_ok=True)
    with open(os.path.join(ROOT, "seeds", target, name), "wb") as f:
        f.write(data)


def safetensors_raw(header, data=b""):
    return struct.pack("<Q", len(header)) + header.encode() + data


def main():
    torch.manual_seed(0)
    state = DiT(FUZZ_CONFIG).state_dict()

    out("safetensors", "valid", save({k: v.contiguous() for k, v in state.items()}))
    out("safetensors", "f16", save({k: v.half().contiguous() for k, v in state.items()}))
    out("safetensors", "overlap", safetensors_raw(
        '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}',
        bytes(24)))
    out("safetensors", "metadata", safetensors_raw('{"__metadata__":{"k":"v"},"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', bytes(8)))

    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.wts1")
        write_wts1(path, state)
        out("wts1", "valid", open(path, "rb").read())
    out("wts1", "one", b"WTS1" + struct.pack("<II", 1, 1) + b"a\0\0\0" + struct.pack("<IIII", 1, 2, 2, 0) + struct.pack("<2f", 1, 2))

    buf = io.BytesIO()
    torch.save(state, buf)
    pt = buf.getvalue()
    out("pickle", "valid.pt", pt)
    z = zipfile.ZipFile(io.BytesIO(pt))
    out("pickle", "valid.pkl", z.read([n for n in z.namelist() if n.endswith("data.pkl")][0]))
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2, 3).half().t()}, buf)
    z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out("pickle", "view.pkl", z.read([n for n in z.namelist() if n.endswith("data.pkl")][0]))
    buf = io.BytesIO()
    torch.save({"w": CallsSystem()}, buf)
    z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out("pickle", "calls_system.pkl", z.read([n for n in z.namelist() if n.endswith("data.pkl")][0]))


if __name__ == "__main__":
    main()
