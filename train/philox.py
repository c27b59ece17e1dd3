"""numpy twin of src/noise.rs: Philox4x32-10 + Box-Muller, keyed by (seed, tag, index).
Used to build random checkpoints that the Rust tests can regenerate without storing them."""
import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
MASK = np.uint64(0xFFFFFFFF)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    c = [np.asarray(v, dtype=np.uint32) for v in (c0, c1, c2, c3)]
    k0, k1 = np.uint32(k0), np.uint32(k1)
    with np.errstate(over="ignore"):
        for r in range(10):
            if r:
                k0, k1 = np.uint32(k0 + W0), np.uint32(k1 + W1)
            p0 = M0 * c[0].astype(np.uint64)
            p1 = M1 * c[2].astype(np.uint64)
            hi0, lo0 = (p0 >> np.uint64(32)).astype(np.uint32), (p0 & MASK).astype(np.uint32)
            hi1, lo1 = (p1 >> np.uint64(32)).astype(np.uint32), (p1 & MASK).astype(np.uint32)
            c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return c


def uniform_open(w):
    return ((w >> np.uint32(9)).astype(np.float32) + np.float32(0.5)) * np.float32(1.0 / 8388608.0)


def normals(seed: int, tag: int, n: int) -> np.ndarray:
    blocks = np.arange((n + 3) // 4, dtype=np.uint32)
    zeros = np.zeros_like(blocks)
    w = philox4x32_10(blocks, np.full_like(blocks, tag), zeros, zeros, seed & 0xFFFFFFFF, seed >> 32)
    u = [uniform_open(x) for x in w]
    out = np.empty((len(blocks), 4), dtype=np.float32)
    for pair, (a, b) in enumerate(((0, 1), (2, 3))):
        radius = np.sqrt(np.float32(-2.0) * np.log(u[a]))
        angle = np.float32(2 * np.pi) * u[b] - np.float32(np.pi)
        out[:, 2 * pair] = -radius * np.cos(angle)
        out[:, 2 * pair + 1] = -radius * np.sin(angle)
    return out.reshape(-1)[:n]
