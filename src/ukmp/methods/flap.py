"""FLAP (An et al., 2024): fluctuation-based importance, adaptive structure, bias compensation.

Score (WIFV): for each input channel j of a consumer Linear (``o`` / ``wo`` / ``fc2`` /
``projection``), the variance of x_j over the calibration tokens times the squared L2 norm of the
weight column W[:, j]: how much the output would fluctuate if the channel were replaced by its
mean. A head's score is the sum over its channels.

Adaptive structure: the scores are standardised (z-score) per module type, attention heads
against attention heads and MLP channels against MLP channels, pooled over all layers and
modalities, and one global threshold (ukmp's ``global`` schedule, which counts parameters) removes
the lowest.

Bias compensation, retraining-free: a removed channel is replaced by its calibration mean, which
the consumer folds into its bias: ``b += W[:, removed] @ mean(x[removed])``. The deltas are
computed from the DENSE weights before slicing and added after; a consumer without a bias (T5's
``o`` and ``wo``) gets one, and the model remembers it (``ukmp_added_biases``) so the artifact
records it and reloads bit-identically.

``FLAPScorer`` (at the end) is the method as the prune path runs it: these scores, planned globally, with the
compensation around the surgery.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch
from torch import nn

from ukmp.adapters.base import get_module
from ukmp.groups import PrunableGroup, PruningPlan
from ukmp.method_scores import MethodScores
from ukmp.methods.activation_stats import ChannelStats
from ukmp.methods.base import Scorer, ScoringInputs
from ukmp.methods.unit_sums import unit_sums

ADDED_BIASES_ATTR = "ukmp_added_biases"


def wifv_scores(
    model: nn.Module, groups: list[PrunableGroup], stats: dict[str, ChannelStats]
) -> dict[str, torch.Tensor]:
    """Raw WIFV per unit: sum over its consumer channels of var(x_j) * ||W[:, j]||^2."""

    def values(name: str) -> torch.Tensor:
        weight = get_module(model, name).weight.detach().to(torch.float64)
        return weight.pow(2) * stats[name].var.to(weight.device).reshape(1, -1)

    return {g.name: unit_sums(g, values, side="consumers") for g in groups}


def standardise_by_kind(scores: dict[str, torch.Tensor], groups: list[PrunableGroup]) -> dict[str, torch.Tensor]:
    """z-score each module type (attention vs MLP) over all its units in all layers."""
    kind = {g.name: "attention" if g.kind == "attention" else "mlp" for g in groups}
    out: dict[str, torch.Tensor] = {}
    for k in sorted(set(kind.values())):
        names = [n for n in scores if kind[n] == k]
        pool = torch.cat([scores[n].double().reshape(-1) for n in names])
        mean = pool.mean()
        std = pool.std(unbiased=False) if pool.numel() > 1 else torch.tensor(1.0, dtype=torch.float64)
        std = std if float(std) > 0 else torch.tensor(1.0, dtype=torch.float64)
        for n in names:
            out[n] = (scores[n].double() - mean) / std
    return {n: out[n] for n in scores}


@torch.no_grad()
def compensation_deltas(
    model: nn.Module, groups: list[PrunableGroup], plan: PruningPlan, means: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Consumer name -> ``W[:, removed] @ mean(x[removed])`` from the dense ``model``'s weights.

    ``means`` maps each consumer Linear to the calibration mean of its input channels.
    """
    deltas: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros(0))
    for group in groups:
        removed = plan.removed(group)
        if not removed or group.name not in plan.kept:
            continue
        for member in group.consumers:
            weight = get_module(model, member.module).weight
            cols = member.indices(removed).to(weight.device)
            mean = means[member.module].to(device=weight.device, dtype=torch.float64)
            delta = weight.index_select(1, cols).to(torch.float64) @ mean.index_select(0, cols)
            previous = deltas[member.module]
            deltas[member.module] = delta if previous.numel() == 0 else previous + delta
    return dict(deltas)


@torch.no_grad()
def add_to_biases(model: nn.Module, deltas: dict[str, torch.Tensor]) -> list[str]:
    """Add each delta to its Linear's bias, creating the bias where missing; returns created names."""
    created = []
    for name, delta in sorted(deltas.items()):
        module = get_module(model, name)
        weight = module.weight
        if module.bias is None:
            module.bias = nn.Parameter(torch.zeros(module.out_features, dtype=weight.dtype, device=weight.device))
            created.append(name)
        module.bias.add_(delta.to(dtype=module.bias.dtype, device=module.bias.device))
    added = sorted(set(getattr(model, ADDED_BIASES_ATTR, [])) | set(created))
    setattr(model, ADDED_BIASES_ATTR, added)
    return created


class FLAPScorer(Scorer):
    """WIFV scores (above); the removed units' mean contribution moves into the biases."""

    name = "flap"
    compared_by_default = True
    schedule = "global"

    def calibration_needs(self) -> set[str]:
        return {"activations"}

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        acts = inputs.calibration_pass().activations()
        scores = standardise_by_kind(wifv_scores(inputs.model, inputs.groups, acts), inputs.groups)
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
        deltas = compensation_deltas(model, groups, plan, scored.factors.get("input_mean") or {})
        slice_model()
        add_to_biases(model, deltas)
