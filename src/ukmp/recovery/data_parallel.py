"""Several processes training one adapter: each takes its share of a step's samples, and gradients and
logged values are added up weighted by each share (explicitly, not through DDP; see ``distill.py``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ukmp.data.calibration import calibration_batches


def gradient_sync(params: list[nn.Parameter], share: float, accelerator) -> None:
    """Replace each gradient by the share-weighted sum over processes; "no gradient anywhere" stays None."""
    if accelerator.num_processes == 1:
        return
    device = params[0].device
    flat = torch.cat(
        [(p.grad.reshape(-1) * share) if p.grad is not None else torch.zeros(p.numel(), device=device) for p in params]
    )
    present = torch.tensor([float(p.grad is not None) for p in params], device=device)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    dist.all_reduce(present, op=dist.ReduceOp.MAX)
    offset = 0
    for p, has in zip(params, present.tolist()):
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone() if has else None
        offset += n


def reduce_values(values: dict[str, float], share: float, accelerator) -> dict[str, float]:
    if accelerator.num_processes == 1:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] * share for k in keys], dtype=torch.float64, device=accelerator.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.tolist()))


def local_batch(processor, samples: list, accelerator, model):
    shares = np.array_split(np.arange(len(samples)), accelerator.num_processes)
    mine = shares[accelerator.process_index]
    if len(mine) == 0:
        return None, 0
    local = [samples[i] for i in mine]
    batch = next(calibration_batches(processor, local, len(local), model=model, place=False))
    return {k: v.to(accelerator.device) for k, v in batch.items()}, len(local)
