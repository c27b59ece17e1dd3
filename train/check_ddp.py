"""Checks that data-parallel training computes the single-process gradients.

    torchrun --nproc_per_node=2 train/check_ddp.py      # CPU: two gloo processes

Every rank builds the same small DiT (same seed) and the same global batch of 8 samples. Each
rank first computes train.py's loss on all 8 without DDP (the single-process reference), then a
DDP copy (train/distributed.py's wrap) takes rank r's share, samples [4r, 4r + 4), through the
same `losses`; DDP averages the two halves' gradients in backward. Rank 0 compares every
parameter's gradient with the reference and exits non-zero past 1e-5 of the gradient scale.
"""
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distributed import Dist  # noqa: E402
from model import Config, DiT, cosine_schedule  # noqa: E402
from train import losses  # noqa: E402


def main():
    d = Dist()
    if d.world != 2:
        raise SystemExit("run under torchrun --nproc_per_node=2")
    torch.manual_seed(0)
    cfg = Config(dim=64, depth=2, head_dim=32, time_dim=32, channels=4, matte=0.86, qk_norm=True,
                 vocab=["red", "heart", "cloud", "hippo"])
    model = DiT(cfg)
    reference = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(1)
    n = 8
    x0 = torch.rand(n, 4, 64, 64, generator=gen) * 2 - 1
    eps = torch.randn(x0.shape, generator=gen)
    t = torch.randint(cfg.timesteps, (n,), generator=gen)
    rows = torch.randint(1, 5, (n, 3), generator=gen)
    counts = torch.randint(0, 4, (n,), generator=gen)
    betas, abar = cosine_schedule(cfg.timesteps, cfg.schedule_offset)
    sqrt_ab, sqrt_1m = abar.sqrt().float(), (1 - abar).sqrt().float()
    weight_t = torch.ones(cfg.timesteps)

    loss, _, _ = losses(reference, x0, rows, counts, t, eps, sqrt_ab, sqrt_1m, weight_t, 0.6, False)
    loss.backward()
    share = slice(4 * d.rank, 4 * d.rank + 4)
    wrapped = d.wrap(model)
    loss, _, _ = losses(wrapped, x0[share], rows[share], counts[share], t[share], eps[share], sqrt_ab, sqrt_1m, weight_t, 0.6, False)
    loss.backward()
    worst = 0.0
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
        scale = q.grad.abs().max().item()
        worst = max(worst, (p.grad - q.grad).abs().max().item() / max(scale, 1e-12))
    d.close()
    if d.main:
        print(f"2 ranks vs 1 process: largest gradient difference {worst:.2e} of its parameter's gradient scale "
              f"({sum(1 for _ in model.parameters())} parameters)")
        if worst > 1e-5:
            raise SystemExit("data-parallel gradients differ from the single-process ones")


if __name__ == "__main__":
    main()
