"""Magnitude importance: the L1 norm of every weight a unit owns.

For a unit that is the sum of |w| over its producer rows (including their bias entries) and
its consumer columns, i.e. exactly the parameters that disappear with it. Data-free, so it is
the cheapest non-random baseline. Read-only: it never changes a weight.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from ukmp.adapters.base import get_module
from ukmp.groups import PrunableGroup
from ukmp.method_scores import MethodScores
from ukmp.methods.base import Scorer, ScoringInputs


@torch.no_grad()
def unit_l1(model: nn.Module, group: PrunableGroup) -> torch.Tensor:
    """Per-unit L1 norm (float64) of the group's weights in the dense ``model``."""
    units = torch.arange(group.num_units)
    total = torch.zeros(group.num_units, dtype=torch.float64)
    for member in group.members:
        module = get_module(model, member.module)
        index = member.indices(units).to(module.weight.device)
        part = module.weight.index_select(member.dim, index).abs().to(torch.float64)
        per_index = part.sum(dim=1 - member.dim)
        if member.dim == 0 and module.bias is not None:
            per_index = per_index + module.bias.index_select(0, index).abs().to(torch.float64)
        total += per_index.cpu().reshape(group.num_units, member.width).sum(dim=1)
    return total


def magnitude_scores(
    model: nn.Module, groups: list[PrunableGroup], *, seed: int = 0, progress: bool = True
) -> dict[str, torch.Tensor]:
    """L1 score per unit for every group; ``seed`` is unused (deterministic by construction)."""
    bar = tqdm(groups, desc="magnitude scores", unit="group", disable=None if progress else True)
    return {g.name: unit_l1(model, g) for g in bar}


class MagnitudeScorer(Scorer):
    """L1 norm of each unit's weights; needs no data."""

    name = "magnitude"
    compared_by_default = True
    calibrated = False

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        return MethodScores(
            self.name, magnitude_scores(inputs.model, inputs.groups, seed=inputs.seed, progress=inputs.progress)
        )
