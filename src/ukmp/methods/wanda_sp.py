"""Wanda-sp: structured Wanda, as FLAP ships it as a baseline.

Wanda scores a weight by ``|W_ij| * ||X_j||_2``: its magnitude times the L2 norm of the input
channel it reads, over the calibration tokens. The structured variant applies it to the consumer
Linear (``o`` / ``wo`` / ``fc2``), whose input channels ARE the units, and sums per unit (a head's
score sums its channels). The schedule is local: the same fraction of units leaves every group.
It needs only the forward statistics of the shared calibration pass, no gradients.

``WandaSPScorer`` (at the end) is the method as the prune path runs it.
"""

from __future__ import annotations

import torch
from torch import nn

from ukmp.adapters.base import get_module
from ukmp.groups import PrunableGroup
from ukmp.method_scores import MethodScores
from ukmp.methods.activation_stats import ChannelStats
from ukmp.methods.base import Scorer, ScoringInputs
from ukmp.methods.unit_sums import unit_sums


def wanda_sp_scores(
    model: nn.Module, groups: list[PrunableGroup], stats: dict[str, ChannelStats]
) -> dict[str, torch.Tensor]:
    """Per unit: sum over its consumer columns of |W[i, j]| * ||X_j||."""

    def values(name: str) -> torch.Tensor:
        weight = get_module(model, name).weight.detach().to(torch.float64)
        return weight.abs() * stats[name].l2.to(weight.device).reshape(1, -1)

    return {g.name: unit_sums(g, values, side="consumers") for g in groups}


class WandaSPScorer(Scorer):
    """Per-unit sums of |W| times the input channel's norm, the same ratio in every group."""

    name = "wanda-sp"
    compared_by_default = True
    schedule = "local"
    approximation = "structured Wanda as shipped with FLAP"

    def calibration_needs(self) -> set[str]:
        return {"activations"}

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        acts = inputs.calibration_pass().activations()
        return MethodScores(self.name, wanda_sp_scores(inputs.model, inputs.groups, acts))
