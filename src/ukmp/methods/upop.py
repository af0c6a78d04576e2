"""UPop-style importance (Shi et al., 2023): gradients of learnable unit masks, unified pools.

UPop inserts a learnable scalar mask on every attention head and MLP channel (initialised at 1),
accumulates the masks' gradients while training, shrinks the masks progressively and retrains.
``ukmp`` implements the ONE-SHOT APPROXIMATION: the gradient of each mask at m = 1, summed over the
calibration samples, with no progressive shrinking and no retraining during the search.

A mask m_j on a unit's output channel j scales the consumer's input column j, so
``dL/dm_j = sum_t x_tj * (W^T dL/dy_t)_j = sum_i W_ij * G_ij`` with G the weight gradient of the
consumer: the mask gradient is the signed column sum of ``W * G`` over the unit's consumer columns,
available from the shared gradient pass at no extra cost. The importance is its absolute value.
Attention and MLP scores are z-scored separately, then pooled across modalities and layers and
ranked globally against the parameter budget (each unit costs its exact parameter count).

``UPopScorer`` (at the end) is the method as the prune path runs it.
"""

from __future__ import annotations

import torch
from torch import nn

from ukmp.adapters.base import get_module
from ukmp.groups import PrunableGroup
from ukmp.method_scores import MethodScores
from ukmp.methods.base import Scorer, ScoringInputs
from ukmp.methods.flap import standardise_by_kind
from ukmp.methods.unit_sums import unit_sums

APPROXIMATION = "one-shot mask-gradient approximation of UPop (no progressive mask shrinking, no retraining)"


def mask_gradients(
    model: nn.Module, groups: list[PrunableGroup], grads: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """dL/dm per unit (signed), summed over calibration samples."""

    def values(name: str) -> torch.Tensor:
        return get_module(model, name).weight.detach().double() * grads[name].double()

    return {g.name: unit_sums(g, values, side="consumers") for g in groups}


def upop_scores(
    model: nn.Module, groups: list[PrunableGroup], grads: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """|mask gradient|, z-scored per module type over all layers and modalities."""
    raw = {name: value.abs() for name, value in mask_gradients(model, groups, grads).items()}
    return standardise_by_kind(raw, groups)


class UPopScorer(Scorer):
    """One mask-gradient pass over the calibration samples (above)."""

    name = "upop"
    compared_by_default = True
    schedule = "global"
    approximation = "one-shot mask-gradient approximation (no progressive mask shrinking, no retraining in the search)"

    def calibration_needs(self) -> set[str]:
        return {"gradients"}

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        grads, _ = inputs.calibration_pass().gradients()
        return MethodScores(self.name, upop_scores(inputs.model, inputs.groups, grads))
