"""UPop, approximated one-shot: the gradient of a unit mask at 1, standardised per kind."""

from __future__ import annotations

from ukmp.method_scores import MethodScores
from ukmp.scorers.base import Scorer, ScoringInputs
from ukmp.scoring import upop


class UPopScorer(Scorer):
    """One mask-gradient pass over the calibration samples (`scoring/upop.py`)."""

    name = "upop"
    compared_by_default = True
    schedule = "global"
    approximation = "one-shot mask-gradient approximation (no progressive mask shrinking, no retraining in the search)"

    def calibration_needs(self) -> set[str]:
        return {"gradients"}

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        grads, _ = inputs.calibration_pass().gradients()
        return MethodScores(self.name, upop.upop_scores(inputs.model, inputs.groups, grads))
