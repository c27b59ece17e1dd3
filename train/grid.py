"""Tiles the sample example's 2x2 batches into docs/grid.png rows, on a checkerboard so that
transparency shows (the RGBA model's icons are transparent around the glyph).

    python3 train/grid.py tile docs/grid.png row0.png row1.png ...

Copying is measured by the quality benchmark (`cargo run --release --example quality`).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from png import read_png, write_png  # noqa: E402

SIZE, GAP, SQUARE = 64, 2, 8


def tiles_of_batch(img):
    """The four 64x64 images of a 2x2 batch grid (2 px gaps), in seed order."""
    step = SIZE + GAP
    return [img[r * step:r * step + SIZE, c * step:c * step + SIZE] for r in range(2) for c in range(2)]


def on_checkerboard(tile):
    """An RGB or RGBA tile composited on light grey squares."""
    if tile.shape[2] == 3:
        return tile
    y, x = np.mgrid[:SIZE, :SIZE]
    board = np.where(((x // SQUARE + y // SQUARE) % 2 == 0), 204.0, 242.0)[..., None]
    alpha = tile[..., 3:].astype(np.float32) / 255
    return np.round(tile[..., :3] * alpha + board * (1 - alpha)).astype(np.uint8)


def tile(out, rows):
    step = SIZE + GAP
    grid = np.full((len(rows) * step - GAP, 4 * step - GAP, 3), 255, np.uint8)
    for r, path in enumerate(rows):
        for c, t in enumerate(tiles_of_batch(read_png(path))):
            grid[r * step:r * step + SIZE, c * step:c * step + SIZE] = on_checkerboard(t)
    write_png(out, grid)
    print(f"wrote {out}: {len(rows)} rows of 4")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "tile":
        tile(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(__doc__)
