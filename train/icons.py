"""The icon file from examples/dataset.rs, shared by the diffusion trainer and the classifier.

The file holds `rgba` (u8 [N, H, W, 4], premultiplied: the icon on a transparent background) and
metadata: `vocab` (word i is prompt row i + 1) and `icons` (set, name, label and word rows, and
`mono` for glyph sets drawn in one colour). Glyphs are painted here, fresh for every sample, in a
colour from PALETTE, whose word goes into the prompt ("red cloud").
"""
import json
import lzma

import torch
from safetensors.torch import load as load_bytes

# Icons whose meaning flips with a mirror image keep their orientation.
NO_FLIP_WORDS = {"left", "right", "flag", "letter", "latin", "digit", "keycap", "clock", "oclock", "arrow", "symbol", "sign"}

# Glyph colours and their words (examples/dataset.rs puts every one in the vocabulary).
PALETTE = {
    "red": (0.86, 0.16, 0.16), "orange": (0.96, 0.55, 0.10), "yellow": (0.98, 0.82, 0.12),
    "green": (0.20, 0.66, 0.25), "blue": (0.16, 0.40, 0.86), "purple": (0.52, 0.26, 0.74),
    "pink": (0.95, 0.45, 0.68), "brown": (0.55, 0.34, 0.18), "black": (0.10, 0.10, 0.10),
    "gray": (0.50, 0.50, 0.50),
}


def icon_key(icon):
    return f"{icon['set']}:{icon['name']}"


def read_heldout(path):
    """The frozen held-out split: one `set:name` per line."""
    with open(path) as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


class IconFile:
    """Pixels and labels on `device`; `keep` selects the icons used (e.g. not held out)."""

    def __init__(self, path, device, exclude=frozenset()):
        raw = lzma.open(path).read() if path.endswith(".xz") else open(path, "rb").read()
        header_len = int.from_bytes(raw[:8], "little")
        meta = json.loads(raw[8:8 + header_len])["__metadata__"]
        icons = json.loads(meta["icons"])
        keep = [k for k, icon in enumerate(icons) if icon_key(icon) not in exclude]
        self.excluded = len(icons) - len(keep)
        self.rgba = load_bytes(raw)["rgba"][keep].to(device)
        self.vocab = json.loads(meta["vocab"])
        self.icons = [icons[k] for k in keep]
        n = len(self.icons)
        pad = lambda key: max(1, max(len(i[key]) for i in self.icons))
        self.label = torch.zeros(n, pad("label"), dtype=torch.long)
        self.words = torch.zeros(n, pad("words"), dtype=torch.long)
        self.label_count = torch.zeros(n, dtype=torch.long)
        self.words_count = torch.zeros(n, dtype=torch.long)
        flip = torch.ones(n, dtype=torch.bool)
        mono = torch.zeros(n, dtype=torch.bool)
        banned = {self.vocab.index(w) + 1 for w in NO_FLIP_WORDS if w in self.vocab}
        for k, icon in enumerate(self.icons):
            self.label[k, :len(icon["label"])] = torch.tensor(icon["label"], dtype=torch.long)
            self.words[k, :len(icon["words"])] = torch.tensor(icon["words"], dtype=torch.long)
            self.label_count[k], self.words_count[k] = len(icon["label"]), len(icon["words"])
            flip[k] = not banned.intersection(icon["words"])
            mono[k] = bool(icon.get("mono", False))
        self.label, self.words, self.label_count, self.words_count, self.flip, self.mono = (
            t.to(device) for t in (self.label, self.words, self.label_count, self.words_count, flip, mono))
        self.palette_rgb = torch.tensor(list(PALETTE.values()), device=device)
        self.palette_rows = torch.tensor([self.vocab.index(w) + 1 for w in PALETTE], device=device)

    def __len__(self):
        return len(self.icons)

    def paint(self, idx, gen):
        """Premultiplied RGBA in [0, 1], [B, 4, H, W], glyphs painted in a random palette colour,
        mirrored half of the time where allowed; and each sample's colour row (0 for emoji)."""
        dev = self.rgba.device
        rgba = self.rgba[idx].permute(0, 3, 1, 2).float() / 255.0
        pick = torch.randint(len(self.palette_rgb), (len(idx),), device=dev, generator=gen)
        mono = self.mono[idx]
        colour = self.palette_rgb[pick][:, :, None, None] * rgba[:, 3:]
        rgba = torch.cat([torch.where(mono[:, None, None, None], colour, rgba[:, :3]), rgba[:, 3:]], 1)
        mirror = (torch.rand(len(idx), device=dev, generator=gen) < 0.5) & self.flip[idx]
        rgba = torch.where(mirror[:, None, None, None], rgba.flip(-1), rgba)
        return rgba, torch.where(mono, self.palette_rows[pick], 0)
