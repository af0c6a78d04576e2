"""LLM-Pruner's group Taylor importance (Ma et al., 2023), over ukmp's groups.

Per weight element: first-order ``|w * g|``, second-order ``0.5 * w^2 * F`` with F the accumulated
squared per-sample gradients (the diagonal Fisher), or mix = first + second; ``g`` is the gradient
of the plain next-token cross-entropy over all target tokens, summed over calibration samples (the
shared pass in ``calibration_pass.py``). A unit's score is the SUM over every weight it owns in
the coupled layers (group reduction ``sum``, no per-parameter normalisation): unlike UKMI's
block-wise mean, a wide unit is not divided by its width.

LLM-Pruner skips the first and last layers (LLaMA-7B: only layers 4..29 of 32 are pruned); the same
fractions of every stack are left dense here (`end_layers.py`, whose rule ``--keep-end-layers`` also
lends any other method). ``skip='none'`` prunes every layer. The schedules are
``global`` (one threshold over all units, no normalisation) and ``local`` (the same fraction of
units in every group).

``LLMPrunerGlobalScorer`` and ``LLMPrunerLocalScorer`` (at the end) are the two schedules as registered methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ukmp.adapters.base import get_module
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup
from ukmp.method_scores import MethodScores
from ukmp.methods.base import Scorer, ScoringInputs
from ukmp.methods.end_layers import END_LAYER_RULES, end_layer_groups
from ukmp.methods.option_flag import option_flag
from ukmp.methods.ukmi import salience
from ukmp.methods.unit_sums import unit_sums

TERMS = ("first", "second", "mix")
#: which first/last layers LLM-Pruner leaves dense (``--skip-layers``; the rule is `end_layers.py`'s)
SKIPS = END_LAYER_RULES


@dataclass
class LLMPrunerOptions:
    flag_group: ClassVar[str] = "LLM-Pruner (docs/compare.md)"

    taylor: str = option_flag("first", "--taylor", "Taylor term of UKMP's and LLM-Pruner's importance", choices=TERMS)
    skip: str = option_flag(
        "llm-pruner", "--skip-layers", "LLM-Pruner: leave its first/last layer fractions dense", choices=SKIPS
    )

    def validate(self) -> None:
        if self.taylor not in TERMS:
            raise UserError(f"--taylor must be one of {', '.join(TERMS)}, got {self.taylor!r}.")
        if self.skip not in SKIPS:
            raise UserError(f"--skip-layers must be one of {', '.join(SKIPS)}, got {self.skip!r}.")


def llm_pruner_scores(
    model: nn.Module,
    groups: list[PrunableGroup],
    grads: dict[str, torch.Tensor],
    fisher: dict[str, torch.Tensor],
    taylor: str = "first",
) -> dict[str, torch.Tensor]:
    """Summed Taylor salience per unit for every group."""
    if taylor not in TERMS:
        raise UserError(f"--taylor must be one of {', '.join(TERMS)}, got {taylor!r}.")
    cache: dict[str, torch.Tensor] = {}

    def values(name: str) -> torch.Tensor:
        if name not in cache:
            weight = get_module(model, name).weight
            cache[name] = salience(weight, grads[name], fisher.get(name), taylor)
        return cache[name]

    return {g.name: unit_sums(g, values) for g in groups}


class LLMPrunerGlobalScorer(Scorer):
    """Taylor importance of each unit's weights (first order by default), one global ranking."""

    name = "llm-pruner-global"
    compared_by_default = True
    schedule = "global"
    options_name = "llm_pruner"
    options_type = LLMPrunerOptions

    def calibration_needs(self) -> set[str]:
        return {"gradients"} | ({"fisher"} if self.own_options.taylor != "first" else set())

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        opts = self.own_options
        opts.validate()
        grads, fisher = inputs.calibration_pass().gradients(fisher="fisher" in self.calibration_needs())
        scores = llm_pruner_scores(inputs.model, inputs.groups, grads, fisher, opts.taylor)
        stats = {"frozen_groups": end_layer_groups(inputs.groups, opts.skip), "options": dict(opts.__dict__)}
        return MethodScores(self.name, scores, stats)

    def plannable_groups(self, scored: MethodScores, groups: list[PrunableGroup]) -> list[PrunableGroup]:
        """LLM-Pruner leaves its skipped first and last layers dense."""
        frozen = set(scored.stats.get("frozen_groups", []))
        return [g for g in groups if g.name not in frozen]


class LLMPrunerLocalScorer(LLMPrunerGlobalScorer):
    """The same importance, the same ratio in every group."""

    name = "llm-pruner-local"
    schedule = "local"
