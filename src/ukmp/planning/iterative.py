"""UKMP's schedule: iterative global pruning with modality-wise normalisation (docs/method-notes.md).

Unit scores are static (Taylor × entropy never change), but vision and language units live on
different scales, so every step divides each unit's score by a statistic of its own modality
computed over the units still standing ("mean w/ iterative", the default). As weak units leave,
the modality means rise and the balance between modalities drifts; that drift is the point.

Each step:
1. a group takes part only while it keeps at least `layer_floor` (10%) of its units and more than
   `min_keep` units (the authors' `max_pruning_ratio = 0.9` cap);
2. the surviving units of the taking-part groups are normalised per modality (`mean`, `minmax`,
   `standardize` or `none`), recomputed every step (`iterative`) or frozen at the first step;
   with ``scope = kind`` (beyond the paper) per modality and unit kind, so attention units and
   MLP channels each have their own normaliser;
3. every unit at or below the k-th smallest normalised score is removed (ties go together), while
   each group keeps at least `min_keep` units (the authors' code had no such guard);
4. stop at the first step whose removed parameters reach the target, never short of it.

Step size: the paper removed k = 1000 units per step, then 100 once past 90% of the target (and
100 throughout for targets <= 0.2), on BLIP-2 FlanT5-XL with ~488k units. We express k as a
fraction of all units so it scales with the model: 1000/488k ≈ 0.2% and 100/488k ≈ 0.02%.
Pure tensors and numbers: no model, no module names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ukmp.errors import UserError
from ukmp.groups import PruningPlan
from ukmp.planning.global_schedule import GroupCost, PlanResult, plan_removing_lowest, smallest_reaching

NORMALISATIONS = ("mean", "minmax", "standardize", "none")
#: what one normaliser pools: a whole modality (the paper), or one kind of unit inside a modality
SCOPES = ("modality", "kind")
#: ``auto`` (beyond the paper) plans with both scopes and keeps the lower calibration loss (`planning.scope_choice`)
SCOPE_CHOICES = (*SCOPES, "auto")


@dataclass
class IterativeOptions:
    """The schedule's switches; defaults follow the paper (scaled to the model's unit count)."""

    norm: str = "mean"
    #: ``kind`` (beyond the paper) normalises attention units and MLP channels of a modality apart,
    #: as FLAP and UPop do, so neither kind's scale decides how much of the other is removed
    scope: str = "modality"
    iterative: bool = True
    step_fraction: float = 1000 / 488_000
    fine_step_fraction: float = 100 / 488_000
    fine_after: float = 0.9
    fine_throughout_below: float = 0.2
    layer_floor: float = 0.1
    min_keep: int = 1

    def validate(self) -> None:
        if self.norm not in NORMALISATIONS:
            raise UserError(f"--norm must be one of {', '.join(NORMALISATIONS)}, got {self.norm!r}.")
        if self.scope not in SCOPE_CHOICES:
            raise UserError(f"--norm-scope must be one of {', '.join(SCOPE_CHOICES)}, got {self.scope!r}.")
        if not 0 < self.fine_step_fraction <= self.step_fraction <= 1:
            raise UserError("step fractions must satisfy 0 < fine step <= step <= 1.")


@dataclass
class IterativeResult(PlanResult):
    """The plan plus the trace of every step (for plots and for the tests)."""

    steps: list[dict] = field(default_factory=list)


def _normaliser(values: torch.Tensor, norm: str) -> tuple[float, float]:
    """(shift, scale) such that normalised = (u - shift) / scale."""
    if norm == "mean":
        return 0.0, float(values.mean())
    if norm == "minmax":
        lo, hi = float(values.min()), float(values.max())
        return lo, (hi - lo) or 1.0
    if norm == "standardize":
        std = float(values.std(unbiased=False)) if values.numel() > 1 else 1.0
        return float(values.mean()), std or 1.0
    return 0.0, 1.0


def iterative_schedule(
    scores: Mapping[str, torch.Tensor],
    costs: Mapping[str, GroupCost],
    modality: Mapping[str, str],
    *,
    target_ratio: float,
    basis_params: int,
    options: IterativeOptions | None = None,
    kind: Mapping[str, str] | None = None,
) -> IterativeResult:
    """Plan the removal of `target_ratio * basis_params` parameters with UKMP's schedule.

    ``kind`` (each group's unit kind, e.g. attention or mlp) is needed only with ``scope = kind``.
    """
    options = options or IterativeOptions()
    options.validate()
    if options.scope == "kind" and kind is None:
        raise ValueError("normalising per kind needs each group's kind")
    if options.scope not in SCOPES:
        raise ValueError(f"scope {options.scope!r} is a choice between plans; plan with one of {SCOPES}")
    pool_of = {n: modality[n] if options.scope == "modality" else f"{modality[n]}/{kind[n]}" for n in scores}
    if not 0.0 < target_ratio < 1.0:
        raise UserError(f"the pruning ratio must be between 0 and 1 (exclusive), got {target_ratio}.")
    names = list(scores)
    u = {n: torch.as_tensor(scores[n]).detach().double().reshape(-1).cpu() for n in names}
    for n in names:
        if u[n].numel() != costs[n].num_units:
            raise ValueError(f"{n}: {u[n].numel()} scores for {costs[n].num_units} units")
        if torch.isnan(u[n]).any():
            raise ValueError(f"scores of {n} contain NaN")
    alive = {n: torch.ones(costs[n].num_units, dtype=torch.bool) for n in names}
    budget = math.ceil(target_ratio * basis_params)
    total_units = sum(costs[n].num_units for n in names)
    k_coarse = max(1, round(options.step_fraction * total_units))
    k_fine = max(1, round(options.fine_step_fraction * total_units))
    removed = 0
    frozen: dict[str, tuple[float, float]] = {}
    steps: list[dict] = []

    while removed < budget:
        taking = [
            n
            for n in names
            if int(alive[n].sum()) >= options.layer_floor * costs[n].num_units
            and int(alive[n].sum()) > options.min_keep
        ]
        if not taking:
            raise UserError(
                f"a ratio of {target_ratio:g} cannot be reached with every layer keeping "
                f"{options.layer_floor:.0%} of its units; choose a smaller --ratio."
            )
        stats: dict[str, tuple[float, float]] = {}
        for key in sorted({pool_of[n] for n in taking}):
            if options.iterative or key not in frozen:
                pool = torch.cat([u[n][alive[n]] for n in taking if pool_of[n] == key])
                frozen[key] = _normaliser(pool, options.norm)
            stats[key] = frozen[key]
        normalised = {n: (u[n] - stats[pool_of[n]][0]) / stats[pool_of[n]][1] for n in taking}
        pool = torch.cat([normalised[n][alive[n]] for n in taking])
        fine = target_ratio <= options.fine_throughout_below or removed > options.fine_after * budget
        k = min(k_fine if fine else k_coarse, pool.numel())
        threshold = float(torch.kthvalue(pool, k).values)
        step_removed = 0
        for n in taking:
            candidates = alive[n] & (normalised[n] <= threshold)
            survivors = int(alive[n].sum()) - int(candidates.sum())
            if survivors < options.min_keep:  # keep the strongest candidates of this group
                idx = candidates.nonzero().reshape(-1)
                order = torch.sort(normalised[n][idx], descending=True, stable=True).indices
                candidates[idx[order[: options.min_keep - survivors]]] = False
            alive[n] &= ~candidates
            step_removed += int(candidates.sum()) * costs[n].params_per_unit
        removed += step_removed
        steps.append(
            {
                "step": len(steps),
                "k": k,
                "threshold": threshold,
                "removed_params": removed,
                "normalisers": {m: list(s) for m, s in stats.items()},
            }
        )

    plan = PruningPlan()
    for n in names:
        plan.kept[n] = alive[n].nonzero().reshape(-1).tolist()
        plan.num_units[n] = costs[n].num_units
    return IterativeResult(
        plan=plan,
        removed_params=removed,
        basis_params=basis_params,
        target_ratio=target_ratio,
        removed_units={n: (~alive[n]).nonzero().reshape(-1).tolist() for n in names if not alive[n].all()},
        steps=steps,
    )


def local_schedule(
    scores: Mapping[str, torch.Tensor],
    costs: Mapping[str, GroupCost],
    *,
    target_ratio: float,
    basis_params: int,
    min_keep: int = 1,
) -> PlanResult:
    """The same fraction of units from every group (LLM-Pruner's local mode), lowest scores first.

    The fraction is the smallest one whose removals reach the target; each group removes
    ceil(fraction * units), capped so it keeps `min_keep` units.
    """
    if not 0.0 < target_ratio < 1.0:
        raise UserError(f"the pruning ratio must be between 0 and 1 (exclusive), got {target_ratio}.")
    budget = math.ceil(target_ratio * basis_params)
    names = list(scores)

    def counts(fraction: float) -> dict[str, int]:
        return {n: min(math.ceil(fraction * costs[n].num_units - 1e-9), costs[n].num_units - min_keep) for n in names}

    def removed_params(c: dict[str, int]) -> int:
        return sum(c[n] * costs[n].params_per_unit for n in names)

    if removed_params(counts(1.0)) < budget:
        raise UserError(f"a ratio of {target_ratio:g} cannot be reached by local pruning; choose a smaller --ratio.")
    fraction = smallest_reaching(lambda f: removed_params(counts(f)) >= budget, 0.0, 1.0)
    return plan_removing_lowest(scores, costs, counts(fraction), basis_params=basis_params, target_ratio=target_ratio)
