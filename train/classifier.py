"""The quality benchmark's yardstick: a multi-label word classifier trained from scratch on the
training icons (never on the held-out split, never on generated images).

    python3 train/classifier.py --data train/data/pack/icons.safetensors.xz \
        --heldout train/quality/heldout.txt --out train/quality --minutes 2

It sees an icon composited on a random background (pastel, grey, white or any colour; glyphs in a
random colour) and predicts the icon's words (label, tags and name words in the vocabulary) with
a softmax over the vocabulary against the uniform distribution on the icon's words, so its top-5
ranks words. Its 256-wide pooled features are the space of the benchmark's Fréchet distance and
diversity. Export folds each batch norm into its convolution: the file holds plain convolutions
(`conv{i}.weight` / `.bias`, 3x3, padding 1, ReLU, a 2x2 max pool after every second one) and
`head.weight` / `.bias`, in f16, with the vocabulary as metadata; examples/quality/ runs it in
candle, pinned by tests/fixtures/classifier_io.safetensors (written here from the exported file).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from icons import IconFile, read_heldout  # noqa: E402

WIDTHS = [32, 32, 64, 64, 128, 128, 256, 256]


class Classifier(nn.Module):
    def __init__(self, classes):
        super().__init__()
        chans = [3] + WIDTHS
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False) for i in range(len(WIDTHS)))
        self.norms = nn.ModuleList(nn.BatchNorm2d(w) for w in WIDTHS)
        self.head = nn.Linear(WIDTHS[-1], classes)

    def features(self, x):
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = F.relu(norm(conv(x)))
            if i % 2 == 1 and i < len(WIDTHS) - 1:
                x = F.max_pool2d(x, 2)
        return x.mean((2, 3))

    def forward(self, x):
        return self.head(self.features(x))


class Folded(nn.Module):
    """The exported form: convolutions with bias, no batch norm (what candle runs)."""

    def __init__(self, tensors):
        super().__init__()
        self.t = tensors

    def features(self, x):
        for i in range(len(WIDTHS)):
            x = F.relu(F.conv2d(x, self.t[f"conv{i}.weight"].float(), self.t[f"conv{i}.bias"].float(), padding=1))
            if i % 2 == 1 and i < len(WIDTHS) - 1:
                x = F.max_pool2d(x, 2)
        return x.mean((2, 3))

    def forward(self, x):
        f = self.features(x)
        return F.linear(f, self.t["head.weight"].float(), self.t["head.bias"].float()), f


def fold(model):
    out = {}
    for i, (conv, norm) in enumerate(zip(model.convs, model.norms)):
        scale = norm.weight / (norm.running_var + norm.eps).sqrt()
        out[f"conv{i}.weight"] = (conv.weight * scale[:, None, None, None]).detach()
        out[f"conv{i}.bias"] = (norm.bias - norm.running_mean * scale).detach()
    out["head.weight"] = model.head.weight.detach()
    out["head.bias"] = model.head.bias.detach()
    return {k: v.half().cpu().contiguous() for k, v in out.items()}


def composite(rgba, background):
    """Premultiplied RGBA in [0, 1] over an RGB background: RGB in [-1, 1]."""
    return (rgba[:, :3] + background * (1 - rgba[:, 3:])) * 2 - 1


def random_backgrounds(n, device, gen):
    kind = torch.randint(4, (n, 1, 1, 1), device=device, generator=gen)
    pastel = 0.72 + 0.28 * torch.rand(n, 3, 1, 1, device=device, generator=gen)
    grey = torch.full((n, 3, 1, 1), 0.5, device=device)
    white = torch.ones(n, 3, 1, 1, device=device)
    anything = torch.rand(n, 3, 1, 1, device=device, generator=gen)
    return torch.where(kind == 0, pastel, torch.where(kind == 1, grey, torch.where(kind == 2, white, anything)))


def targets(data, idx, classes):
    """The uniform distribution over each icon's words."""
    words = data.words[idx]
    hot = torch.zeros(len(idx), classes + 1, device=words.device).scatter_(1, words, 1.0)[:, 1:]
    return hot / hot.sum(1, keepdim=True).clamp(min=1)


def augment(x, gen, shift_gen):
    """Small shifts (one per batch) and pixel noise: generated icons are not pixel-perfect."""
    n = x.shape[0]
    dx, dy = (int(v) for v in torch.randint(-3, 4, (2,), generator=shift_gen))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    sigma = 0.08 * torch.rand(n, 1, 1, 1, device=x.device, generator=gen)
    return x + sigma * torch.randn(x.shape, device=x.device, generator=gen)


@torch.no_grad()
def top5_rate(model, data, idx, device):
    """The share of icons (composited on mid-grey) with one of their words in the top 5."""
    hits = 0
    for chunk in idx.split(1024):
        rgba, _ = data.paint(chunk, torch.Generator(device=device).manual_seed(7))
        logits = model(composite(rgba, torch.full((len(chunk), 3, 1, 1), 0.5, device=device)))
        top = logits.topk(5, dim=1).indices + 1
        hits += (top[:, :, None] == data.words[chunk][:, None, :]).any(2).any(1).sum().item()
    return hits / max(1, len(idx))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--heldout", required=True)
    p.add_argument("--out", required=True, help="folder for classifier.safetensors")
    p.add_argument("--fixture", default=None, help="also write this PyTorch fixture for the candle test")
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=2e-3)
    a = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    heldout = read_heldout(a.heldout)
    data = IconFile(a.data, device, exclude=heldout)
    held = IconFile(a.data, device, exclude={k for k in (f"{i['set']}:{i['name']}" for i in data.icons)})
    classes = len(data.vocab)
    print(f"classifier: {len(data)} training icons, {len(held)} held out, {classes} words", flush=True)
    model = Classifier(classes).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.05)
    gen = torch.Generator(device=device).manual_seed(0)
    shift_gen = torch.Generator().manual_seed(0)
    start, step = time.time(), 0
    deadline = start + a.minutes * 60
    while time.time() < deadline:
        done = (time.time() - start) / (deadline - start)
        for g in opt.param_groups:
            g["lr"] = a.lr * min(1.0, (step + 1) / 300) * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
        idx = torch.randint(len(data), (a.batch,), device=device, generator=gen)
        rgba, _ = data.paint(idx, gen)
        x = augment(composite(rgba, random_backgrounds(len(idx), device, gen)), gen, shift_gen)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            logits = model(x.contiguous(memory_format=torch.channels_last))
        loss = -(targets(data, idx, classes) * F.log_softmax(logits.float(), 1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 500 == 0:
            print(f"step {step} loss {loss.item():.3f} {time.time() - start:.0f}s", flush=True)
    model.eval()
    tensors = fold(model)
    folded = Folded({k: v.to(device) for k, v in tensors.items()})
    train_rate = top5_rate(lambda x: folded(x)[0], data, torch.arange(min(len(data), 4096), device=device), device)
    held_rate = top5_rate(lambda x: folded(x)[0], held, torch.arange(len(held), device=device), device)
    print(f"stopped at step {step}; one of an icon's words in the top 5: training {train_rate:.3f}, held out {held_rate:.3f}", flush=True)
    os.makedirs(a.out, exist_ok=True)
    meta = {"vocab": json.dumps(data.vocab), "steps": str(step), "widths": json.dumps(WIDTHS),
            "top5_heldout": f"{held_rate:.4f}"}
    save_file(tensors, os.path.join(a.out, "classifier.safetensors"), metadata=meta)
    if a.fixture:
        # Eight held-out icons on mid-grey through the exported (f16, folded) weights in f32.
        with torch.no_grad():
            rgba, _ = held.paint(torch.arange(8, device=device), torch.Generator(device=device).manual_seed(3))
            x = composite(rgba, torch.full((8, 3, 1, 1), 0.5, device=device)).float()
            cpu = Folded({k: v.float() for k, v in tensors.items()})
            logits, feats = cpu(x.cpu())
        save_file({"images": x.cpu().contiguous(), "logits": logits.contiguous(), "features": feats.contiguous()}, a.fixture)
    print(f"wrote {a.out}/classifier.safetensors, {time.time() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
