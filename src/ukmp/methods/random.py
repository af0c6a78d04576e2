"""Random importance: the floor every real criterion must beat.

Scores are drawn uniformly in [0, 1) from a generator seeded with ``seed`` and consumed in group
order, so the same seed and the same group list give the same plan bit for bit, independent of
the global torch RNG.
"""

from __future__ import annotations

import torch
from torch import nn

from ukmp.groups import PrunableGroup
from ukmp.method_scores import MethodScores
from ukmp.methods.base import Scorer, ScoringInputs


def random_scores(model: nn.Module | None, groups: list[PrunableGroup], *, seed: int = 0) -> dict[str, torch.Tensor]:
    """One uniform score per unit; ``model`` is unused (kept for the common scorer signature)."""
    gen = torch.Generator().manual_seed(seed)
    return {g.name: torch.rand(g.num_units, generator=gen, dtype=torch.float64) for g in groups}


class RandomScorer(Scorer):
    """Seeded random scores: the floor every method must beat."""

    name = "random"
    compared_by_default = True
    calibrated = False
    seeded = True

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        return MethodScores(self.name, random_scores(inputs.model, inputs.groups, seed=inputs.seed))
