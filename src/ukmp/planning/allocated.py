"""ECoFLaP's schedule: per-group sparsities from block scores, then local ranking inside each group.

Pure tensors and numbers, like ``global_schedule.py``. The parameters to KEEP in the prunable groups are
shared out in proportion to each group's block score: every group first keeps ``1 - cap`` of its
parameters (the per-layer sparsity cap), then the rest of the keep budget is handed out pro rata
to the groups that are not full yet, until it is spent. A group's sparsity becomes a number of
units to remove (scaled together by the smallest factor that reaches the parameter target, so
rounding never leaves the model short of it), and the group's lowest-scored units go.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from ukmp.errors import UserError
from ukmp.planning.global_schedule import GroupCost, PlanResult, plan_removing_lowest, smallest_reaching


def allocate_sparsity(
    block_scores: Mapping[str, float],
    params: Mapping[str, int],
    keep_total: float,
    max_sparsity: float,
) -> dict[str, float]:
    """Group -> sparsity such that the kept parameters sum to ``keep_total`` (when reachable)."""
    names = list(params)
    keep = {n: params[n] * (1.0 - max_sparsity) for n in names}
    scores = {n: max(float(block_scores.get(n, 0.0)), 0.0) for n in names}
    if sum(scores.values()) <= 0:  # no signal: share out by size
        scores = {n: float(params[n]) for n in names}
    for _ in range(len(names) + 1):
        rest = keep_total - sum(keep.values())
        active = [n for n in names if keep[n] < params[n] and scores[n] > 0]
        if rest <= 1e-9 or not active:
            break
        weight = sum(scores[n] for n in active)
        for n in active:
            keep[n] = min(params[n], keep[n] + rest * scores[n] / weight)
    return {n: 1.0 - keep[n] / params[n] if params[n] else 0.0 for n in names}


def allocated_schedule(
    scores: Mapping[str, torch.Tensor],
    costs: Mapping[str, GroupCost],
    block_scores: Mapping[str, float],
    *,
    target_ratio: float,
    basis_params: int,
    max_sparsity_margin: float = 0.1,
    min_keep: int = 1,
) -> PlanResult:
    """Remove ``target_ratio * basis_params`` parameters with per-group ratios from ``block_scores``."""
    if not 0.0 < target_ratio < 1.0:
        raise UserError(f"the pruning ratio must be between 0 and 1 (exclusive), got {target_ratio}.")
    names = list(scores)
    budget = math.ceil(target_ratio * basis_params)
    params = {n: costs[n].num_units * costs[n].params_per_unit for n in names}
    prunable = sum(params.values())
    reachable = sum(costs[n].params_per_unit * (costs[n].num_units - min_keep) for n in names)
    if reachable < budget:
        raise UserError(
            f"a ratio of {target_ratio:g} cannot be reached: at most {reachable / basis_params:.3f} of the "
            "parameters are in prunable units; choose a smaller --ratio."
        )
    max_sparsity = min(budget / prunable + max_sparsity_margin, 1.0)
    sparsity = allocate_sparsity(block_scores, params, prunable - budget, max_sparsity)

    def counts(scale: float) -> dict[str, int]:
        return {
            n: min(math.ceil(scale * sparsity[n] * costs[n].num_units - 1e-9), costs[n].num_units - min_keep)
            for n in names
        }

    def removed(c: Mapping[str, int]) -> int:
        return sum(c[n] * costs[n].params_per_unit for n in names)

    lo, hi = 0.0, 1.0
    while removed(counts(hi)) < budget and hi < 1e6:
        hi *= 2
    if removed(counts(hi)) < budget:  # every group with zero allocated sparsity: fall back to uniform
        sparsity = {n: 1.0 for n in names}
        lo, hi = 0.0, 1.0
    scale = smallest_reaching(lambda s: removed(counts(s)) >= budget, lo, hi)
    return plan_removing_lowest(scores, costs, counts(scale), basis_params=basis_params, target_ratio=target_ratio)
