"""The data-free reference points: random scores and weight magnitude (L1 of each unit's weights)."""

from __future__ import annotations

from ukmp.method_scores import MethodScores
from ukmp.scorers.base import Scorer, ScoringInputs
from ukmp.scoring.magnitude import magnitude_scores
from ukmp.scoring.random import random_scores


class MagnitudeScorer(Scorer):
    """L1 norm of each unit's weights; needs no data."""

    name = "magnitude"
    compared_by_default = True
    calibrated = False

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        return MethodScores(
            self.name, magnitude_scores(inputs.model, inputs.groups, seed=inputs.seed, progress=inputs.progress)
        )


class RandomScorer(Scorer):
    """Seeded random scores: the floor every method must beat."""

    name = "random"
    compared_by_default = True
    calibrated = False
    seeded = True

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        return MethodScores(self.name, random_scores(inputs.model, inputs.groups, seed=inputs.seed))
