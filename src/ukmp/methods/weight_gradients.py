"""The weights whose gradients scoring reads, and taking their accumulated gradients off them.

UKMI's gradient pass and the baselines' shared pass both backpropagate into every member Linear of
the prunable groups and then collect (and clear) each weight's ``.grad``.
"""

from __future__ import annotations

import torch
from torch import nn

from ukmp.adapters.base import get_module
from ukmp.groups import PrunableGroup


def member_modules(model: nn.Module, groups: list[PrunableGroup]) -> dict[str, nn.Linear]:
    """Every member Linear of ``groups``, by module name."""
    return {m.module: get_module(model, m.module) for g in groups for m in g.members}


def take_gradients(modules: dict[str, nn.Linear]) -> dict[str, torch.Tensor]:
    """Each weight's accumulated ``.grad`` (zeros where none arrived), detached from its module."""
    grads = {}
    for name, module in modules.items():
        grads[name] = module.weight.grad if module.weight.grad is not None else torch.zeros_like(module.weight)
        module.weight.grad = None
    return grads
