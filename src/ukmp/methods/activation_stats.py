"""Streaming per-input-channel statistics of the Linears that consume a group's units.

FLAP needs the mean and variance of every input channel of ``o`` / ``wo`` / ``fc2`` over the
calibration tokens, Wanda-sp and ECoFLaP-sp the L2 norm. Storing the activations would cost
tokens x width floats per layer; a running count, sum and sum of squares in float64 gives all
three exactly (up to rounding) in width floats, so one forward pass serves every method.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ukmp.adapters.base import get_module
from ukmp.groups import PrunableGroup


class ChannelStats:
    """Count, sum and sum of squares per input channel, accumulated in float64."""

    def __init__(self, width: int) -> None:
        self.count = 0
        self.sum = torch.zeros(width, dtype=torch.float64)
        self.sumsq = torch.zeros(width, dtype=torch.float64)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Add every token of ``x`` (any leading shape, channels last)."""
        flat = x.detach().reshape(-1, x.shape[-1]).to(torch.float64).cpu()
        self.count += flat.shape[0]
        self.sum += flat.sum(dim=0)
        self.sumsq += (flat * flat).sum(dim=0)

    @property
    def mean(self) -> torch.Tensor:
        return self.sum / max(self.count, 1)

    @property
    def var(self) -> torch.Tensor:
        """Population variance over tokens (clamped at 0 against rounding)."""
        return (self.sumsq / max(self.count, 1) - self.mean**2).clamp_min(0.0)

    @property
    def l2(self) -> torch.Tensor:
        """L2 norm of the channel over all tokens (Wanda's ||X_j||)."""
        return self.sumsq.sqrt()


def consumer_names(groups: list[PrunableGroup]) -> list[str]:
    """Every Linear that reads a group's units on its input side, in a stable order."""
    return sorted({m.module for g in groups for m in g.consumers})


@contextlib.contextmanager
def record_input_stats(model: nn.Module, names: list[str]) -> Iterator[dict[str, ChannelStats]]:
    """Forward hooks that feed each named Linear's input into a ``ChannelStats``; removed on exit."""
    stats: dict[str, ChannelStats] = {}
    hooks = []
    for name in names:
        module = get_module(model, name)
        stats[name] = ChannelStats(module.in_features)

        def hook(_mod: nn.Module, args: tuple, name: str = name) -> None:
            stats[name].update(args[0])

        hooks.append(module.register_forward_pre_hook(hook))
    try:
        yield stats
    finally:
        for h in hooks:
            h.remove()
