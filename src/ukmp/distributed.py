"""Scoring on several processes (``accelerate launch``): each reads its share of the calibration
samples, and the sums UKMI is made of (gradients, Fisher, entropy histograms, token counts) are
added up across processes, so every process ends with the scores one process would compute.

Why sums: G = sum_n dL_n/dW, F = sum_n (dL_n/dW)^2 and the angle histograms are all sums over
samples, so splitting the samples and adding the parts changes only the order of float additions
(the histograms are integer counts: exactly equal).

With GPUs each process scores on its own GPU (accelerate's ``PartialState.device``) and NCCL adds
the sums where they lie; on CPUs gloo does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from accelerate import PartialState

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` scoring processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    #: this process's device under a launch (accelerate gives each process its own GPU where there are GPUs)
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list[T]) -> list[T]:
        """This process's share: every ``size``-th item from ``rank`` (the shares partition ``items``)."""
        return items[self.rank :: self.size]

    def sum_(self, tensors: Iterable[torch.Tensor]) -> None:
        """Replace each tensor, in place, by its sum over all processes."""
        if self.size == 1:
            return
        for tensor in tensors:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)

    def sum_counts(self, counts: dict[str, int]) -> dict[str, int]:
        """Integer counters summed over all processes."""
        if self.size == 1:
            return dict(counts)
        names = sorted(counts)
        values = torch.tensor([counts[n] for n in names], dtype=torch.float64, device=self.device)
        self.sum_([values])
        return {n: int(v) for n, v in zip(names, values.tolist())}


#: the world of a run that was not launched on several processes
ONE_PROCESS = World()


def current_world() -> World:
    """The launch this process belongs to: ``accelerate launch`` sets WORLD_SIZE; else one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return ONE_PROCESS
    state = PartialState(cpu=not torch.cuda.is_available())  # joins the process group (NCCL on GPUs, gloo on CPUs)
    return World(state.process_index, state.num_processes, str(state.device))
