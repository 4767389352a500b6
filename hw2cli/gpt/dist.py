"""The processes of a ``torchrun --nproc-per-node N`` run (DistributedDataParallel: gloo on the
CPU, nccl on GPUs). One process is rank 0 of 1 and needs none of this; rank 0 writes the run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as tdist


@dataclass
class Dist:
    """This process's place among the processes torchrun started."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)


@contextmanager
def distributed(dist: Dist, device: torch.device) -> Iterator[None]:
    """The process group of a torchrun run; nothing for one process."""
    if dist.world_size == 1:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        tdist.destroy_process_group()


def all_mean(value: float, dist: Dist, device: torch.device) -> float:
    """Mean of ``value`` over all processes."""
    if dist.world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return t.item() / dist.world_size
