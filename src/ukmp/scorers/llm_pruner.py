"""LLM-Pruner's Taylor importance, planned globally or per layer, with its first/last layers left dense."""

from __future__ import annotations

from ukmp.groups import PrunableGroup
from ukmp.method_scores import MethodScores
from ukmp.scorers.base import Scorer, ScoringInputs
from ukmp.scoring import llm_pruner
from ukmp.scoring.end_layers import end_layer_groups


class LLMPrunerGlobalScorer(Scorer):
    """Taylor importance of each unit's weights (first order by default), one global ranking."""

    name = "llm-pruner-global"
    compared_by_default = True
    schedule = "global"
    option_flags = ("llm_pruner", {"taylor": "--taylor", "skip": "--skip-layers"})

    def calibration_needs(self) -> set[str]:
        return {"gradients"} | ({"fisher"} if self.options.llm_pruner.taylor != "first" else set())

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        opts = self.options.llm_pruner
        opts.validate()
        grads, fisher = inputs.calibration_pass().gradients(fisher="fisher" in self.calibration_needs())
        scores = llm_pruner.llm_pruner_scores(inputs.model, inputs.groups, grads, fisher, opts.taylor)
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
