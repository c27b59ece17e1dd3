"""Tiles the sample example's 2x2 batches into docs/grid.png rows, and measures how close each
generated sample is to its nearest training image (does the model copy?).

    python3 train/grid.py tile docs/grid.png row0.png row1.png ...
    python3 train/grid.py nearest docs/grid.png train/data/icons.safetensors
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from png import read_png, write_png  # noqa: E402

PROMPTS = ["hippo", "pizza", "rocket", "red heart", "cat", "sun", "tree", "grinning face", "(empty)"]
SIZE, GAP = 64, 2


def tiles_of_batch(img):
    """The four 64x64 images of a 2x2 batch grid (2 px gaps), in seed order."""
    step = SIZE + GAP
    return [img[r * step:r * step + SIZE, c * step:c * step + SIZE] for r in range(2) for c in range(2)]


def tile(out, rows):
    step = SIZE + GAP
    grid = np.full((len(rows) * step - GAP, 4 * step - GAP, 3), 255, np.uint8)
    for r, path in enumerate(rows):
        for c, t in enumerate(tiles_of_batch(read_png(path))):
            grid[r * step:r * step + SIZE, c * step:c * step + SIZE] = t
    write_png(out, grid)
    print(f"wrote {out}: {len(rows)} rows of 4")


def grid_tiles(path):
    g = read_png(path)
    step = SIZE + GAP
    rows = (g.shape[0] + GAP) // step
    return [[g[r * step:r * step + SIZE, c * step:c * step + SIZE] for c in range(4)] for r in range(rows)]


def nearest(grid_path, data_path):
    from safetensors import safe_open
    with safe_open(data_path, "np") as f:
        meta, rgba = f.metadata(), f.get_tensor("rgba")
    icons = json.loads(meta["icons"])
    premul = rgba[..., :3].astype(np.float32) / 255
    alpha = rgba[..., 3:].astype(np.float32) / 255
    # Compare at 32x32 (2x2 mean) to keep memory small; mirrored icons count too.
    down = lambda x: x.reshape(x.shape[0], 32, 2, 32, 2, -1).mean((2, 4))
    premul, alpha = down(premul), down(alpha)
    premul = np.concatenate([premul, premul[:, :, ::-1]])
    alpha = np.concatenate([alpha, alpha[:, :, ::-1]])
    names = [f"{i['set']}:{i['name']}" for i in icons] * 2

    def distances(img):
        """RMSE (0-255) to every training icon, each composited on this image's border colour."""
        x = img.astype(np.float32) / 255
        border = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])
        bg = np.median(border, axis=0)
        x = down(x[None])[0]
        composite = premul + bg * (1 - alpha)
        return np.sqrt(((composite - x) ** 2).mean((1, 2, 3))) * 255

    print("| prompt | nearest RMSE (0-255) per seed | nearest training icon (seed 0) |")
    print("|---|---|---|")
    all_d = []
    for prompt, row in zip(PROMPTS, grid_tiles(grid_path)):
        ds, first = [], None
        for img in row:
            d = distances(img)
            k = int(d.argmin())
            ds.append(d[k])
            first = first or names[k]
        all_d += ds
        print(f"| {prompt} | {' / '.join(f'{v:.1f}' for v in ds)} | {first} |")
    # Scale: how far a training icon is from its nearest *other* training icon.
    rng = np.random.default_rng(0)
    ref = []
    n = len(icons)
    for k in rng.choice(n, 100, replace=False):
        img = (premul[k] + 0.85 * (1 - alpha[k]))
        composite = premul + 0.85 * (1 - alpha)
        d = np.sqrt(((composite - img) ** 2).mean((1, 2, 3))) * 255
        d[k] = d[k + n] = np.inf
        ref.append(d.min())
    print(f"\ngenerated: median {np.median(all_d):.1f}, min {np.min(all_d):.1f}; "
          f"training icon to its nearest other training icon (100 random): median {np.median(ref):.1f}, "
          f"min {np.min(ref):.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "tile":
        tile(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "nearest":
        nearest(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
