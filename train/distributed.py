"""Data-parallel training under torchrun: one process per GPU over NCCL, or per CPU worker over gloo.

    torchrun --nproc_per_node=8 train/train.py --data ... --batch 512   # 8 x 512 = 4,096 a step

Every rank holds the same model and draws its own batch (its generator is seeded by its rank);
DistributedDataParallel averages the gradients in the backward pass, so every rank applies the
same update and keeps the same EMA. Decisions that depend on a clock (stop, save) are rank 0's,
broadcast each step, so no rank waits on a collective the others skipped. Without torchrun
(WORLD_SIZE unset) everything here is a no-op.
"""
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


class Dist:
    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available()
        self.device = f"cuda:{local}" if cuda else "cpu"
        if self.world > 1:
            if cuda:
                torch.cuda.set_device(local)
            dist.init_process_group("nccl" if cuda else "gloo")
        self.local = local

    @property
    def main(self):
        return self.rank == 0

    def wrap(self, model):
        if self.world == 1:
            return model
        return DistributedDataParallel(model, device_ids=[self.local] if self.device.startswith("cuda") else None)

    def mean(self, tensor):
        """The mean over ranks, in place."""
        if self.world > 1:
            dist.all_reduce(tensor)
            tensor /= self.world
        return tensor

    def decide(self, value, device):
        """Rank 0's `value`, on every rank."""
        if self.world == 1:
            return bool(value)
        flag = torch.tensor([1.0 if value else 0.0], device=device)
        dist.broadcast(flag, 0)
        return bool(flag.item())

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def close(self):
        if self.world > 1:
            dist.destroy_process_group()


def scaled_lr(lr, world, rule):
    """The learning rate for `world` ranks at the same per-rank batch: 'sqrt' (the default: Adam's
    update noise falls with the square root of the batch), 'linear', or 'none'."""
    return lr * {"sqrt": world ** 0.5, "linear": float(world), "none": 1.0}[rule]
