"""FLAP: fluctuation of each unit's input, standardised per kind, with bias compensation after slicing."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ukmp.adapters.base import get_module
from ukmp.groups import PrunableGroup, PruningPlan
from ukmp.method_scores import MethodScores
from ukmp.scorers.base import Scorer, ScoringInputs
from ukmp.scoring import flap


class FLAPScorer(Scorer):
    """WIFV scores (`scoring/flap.py`); the removed units' mean contribution moves into the biases."""

    name = "flap"
    compared_by_default = True
    schedule = "global"

    def calibration_needs(self) -> set[str]:
        return {"activations"}

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        acts = inputs.calibration_pass().activations()
        scores = flap.standardise_by_kind(flap.wifv_scores(inputs.model, inputs.groups, acts), inputs.groups)
        factors = {"input_mean": {name: acts[name].mean.clone() for name in sorted(acts)}}
        return MethodScores(self.name, scores, factors=factors)

    def planning_ratio(
        self, scored: MethodScores, model: nn.Module, groups: list[PrunableGroup], ratio: float, basis: int
    ) -> float:
        """Plan for more than ``ratio``, so the saved model still meets it after compensation adds biases.

        Compensation creates a bias on every consumer that lacks one (T5's ``o`` and ``wo``); those
        parameters count in the pruned model, so the plan removes that many more (an upper bound:
        every such consumer of a plannable group), keeping the achieved ratio >= the target.
        """
        names = {m.module for g in self.plannable_groups(scored, groups) for m in g.consumers}
        extra = sum(get_module(model, n).out_features for n in names if get_module(model, n).bias is None)
        return ratio + extra / basis

    def finalize(
        self,
        model: nn.Module,
        groups: list[PrunableGroup],
        plan: PruningPlan,
        scored: MethodScores,
        slice_model: Callable[[], None],
    ) -> None:
        """Bias deltas from the dense weights, then the surgery, then the deltas added."""
        deltas = flap.compensation_deltas(model, groups, plan, scored.factors.get("input_mean") or {})
        slice_model()
        flap.add_to_biases(model, deltas)
