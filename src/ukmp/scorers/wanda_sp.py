"""Wanda-sp: structured Wanda (weight magnitude times input norm) as shipped with FLAP."""

from __future__ import annotations

from ukmp.method_scores import MethodScores
from ukmp.scorers.base import Scorer, ScoringInputs
from ukmp.scoring import wanda_sp


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
        return MethodScores(self.name, wanda_sp.wanda_sp_scores(inputs.model, inputs.groups, acts))
