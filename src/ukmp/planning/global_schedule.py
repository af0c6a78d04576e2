"""From unit scores to a plan: which units to remove to reach a parameter budget.

Pure tensors and numbers: no model, no module names. The planner sees, per group, a 1-D score
tensor (higher = more important), the exact parameter cost of one unit and the unit count, and
returns a ``PruningPlan`` whose removed parameters reach the target.

Global schedule (``global_schedule``): rank every unit of every group by score, lowest first,
and remove in that order until the removed parameters reach the budget. Two rules keep the
result honest:

- never below the target: we stop only once ``removed >= budget``;
- at most ``tolerance`` above it (default 0.5% of the basis): a unit whose cost would overshoot
  ``budget + tolerance*basis`` is skipped and the next-ranked (cheaper) unit tried, so a 4 MB
  head at the boundary does not overshoot when a channel would do;
- a group always keeps at least ``min_keep`` units (default 1).

Extension points for later schedules (modality-wise normalisation, iterative pruning, local
schedules): scores are transformed *before* ``rank_units``; an iterative planner calls
``select_units`` repeatedly with a growing ``already_removed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ukmp.errors import UserError
from ukmp.groups import PruningPlan


@dataclass(frozen=True)
class GroupCost:
    """What the planner needs to know about a group besides its scores."""

    num_units: int
    params_per_unit: int


@dataclass
class PlanResult:
    """The plan plus the numbers a user wants to see."""

    plan: PruningPlan
    removed_params: int
    basis_params: int
    target_ratio: float
    removed_units: dict[str, list[int]] = field(default_factory=dict)

    @property
    def achieved_ratio(self) -> float:
        return self.removed_params / self.basis_params


def rank_units(scores: Mapping[str, torch.Tensor]) -> list[tuple[str, int]]:
    """All (group, unit) pairs, least important first; ties broken by group order, then unit index.

    Scores are compared as float64 so groups with different dtypes rank consistently, and the
    sort is stable, so equal inputs give the same plan bit for bit.
    """
    names, units, values = [], [], []
    for gi, (name, score) in enumerate(scores.items()):
        score = torch.as_tensor(score).detach().reshape(-1).to(torch.float64).cpu()
        if torch.isnan(score).any():
            raise ValueError(f"scores of {name} contain NaN")
        names.extend([gi] * score.numel())
        units.extend(range(score.numel()))
        values.append(score)
    if not values:
        return []
    order = torch.sort(torch.cat(values), stable=True).indices.tolist()
    keys = list(scores)
    return [(keys[names[i]], units[i]) for i in order]


def select_units(
    ranked: list[tuple[str, int]],
    costs: Mapping[str, GroupCost],
    budget: int,
    slack: int,
    *,
    min_keep: int = 1,
    already_removed: Mapping[str, set[int]] | None = None,
) -> dict[str, set[int]]:
    """Walk ``ranked`` removing units until ``budget`` parameters are removed (``slack`` over allowed)."""
    removed = {name: set(units) for name, units in (already_removed or {}).items()}
    total = sum(costs[n].params_per_unit * len(u) for n, u in removed.items())
    for name, unit in ranked:
        if total >= budget:
            break
        gone = removed.setdefault(name, set())
        cost = costs[name]
        if unit in gone or cost.num_units - len(gone) <= min_keep:
            continue
        if total + cost.params_per_unit > budget + slack:
            continue
        gone.add(unit)
        total += cost.params_per_unit
    return removed


def global_schedule(
    scores: Mapping[str, torch.Tensor],
    costs: Mapping[str, GroupCost],
    *,
    target_ratio: float,
    basis_params: int,
    tolerance: float = 0.005,
    min_keep: int = 1,
) -> PlanResult:
    """Remove the globally least important units until ``target_ratio * basis_params`` are gone.

    ``basis_params`` is the total parameter count of the model (``--of all``) or of its
    prunable groups (``--of prunable``); the caller decides. Raises ``UserError`` when the target
    cannot be reached while every group keeps ``min_keep`` units.
    """
    if not 0.0 < target_ratio < 1.0:
        raise UserError(f"the pruning ratio must be between 0 and 1 (exclusive), got {target_ratio}.")
    missing = [n for n in scores if n not in costs]
    if missing:
        raise ValueError(f"no cost for group {missing[0]}")
    for name, score in scores.items():
        count = torch.as_tensor(score).numel()
        if count != costs[name].num_units:
            raise ValueError(f"{name}: {count} scores for {costs[name].num_units} units")
    budget = int(-(-target_ratio * basis_params // 1))  # ceil: never below the target
    reachable = sum(costs[n].params_per_unit * max(costs[n].num_units - min_keep, 0) for n in scores)
    if reachable < budget:
        raise UserError(
            f"a ratio of {target_ratio:g} cannot be reached: at most {reachable / basis_params:.3f} of the "
            "parameters are in prunable units; choose a smaller --ratio (or --of prunable)."
        )
    ranked = rank_units(scores)
    slack = int(tolerance * basis_params)
    removed = select_units(ranked, costs, budget, slack, min_keep=min_keep)
    total = sum(costs[n].params_per_unit * len(u) for n, u in removed.items())
    if total < budget:  # nothing small enough fitted in the slack: overshoot minimally instead
        removed = select_units(ranked, costs, budget, basis_params, min_keep=min_keep, already_removed=removed)
        total = sum(costs[n].params_per_unit * len(u) for n, u in removed.items())
    plan = PruningPlan()
    for name in scores:
        n = costs[name].num_units
        gone = removed.get(name, set())
        plan.kept[name] = [u for u in range(n) if u not in gone]
        plan.num_units[name] = n
    return PlanResult(
        plan=plan,
        removed_params=total,
        basis_params=basis_params,
        target_ratio=target_ratio,
        removed_units={n: sorted(u) for n, u in removed.items() if u},
    )


def smallest_reaching(reaches, lo: float, hi: float, iterations: int = 60) -> float:
    """Bisect [lo, hi] for the smallest scale at which `reaches(scale)` holds (it must hold at `hi`).

    The per-group schedules (local, allocated) turn one scale into per-group removal counts; this
    finds the least scale whose counts meet the parameter budget.
    """
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi


def plan_removing_lowest(
    scores: Mapping[str, torch.Tensor],
    costs: Mapping[str, GroupCost],
    counts: Mapping[str, int],
    *,
    basis_params: int,
    target_ratio: float,
) -> PlanResult:
    """Remove the `counts[name]` lowest-scoring units of every group (stable order on ties)."""
    plan = PruningPlan()
    removed_units: dict[str, list[int]] = {}
    for name, count in counts.items():
        order = torch.sort(torch.as_tensor(scores[name]).double().reshape(-1), stable=True).indices
        gone = sorted(order[:count].tolist())
        removed = set(gone)
        plan.kept[name] = [u for u in range(costs[name].num_units) if u not in removed]
        plan.num_units[name] = costs[name].num_units
        if gone:
            removed_units[name] = gone
    return PlanResult(
        plan=plan,
        removed_params=sum(counts[n] * costs[n].params_per_unit for n in counts),
        basis_params=basis_params,
        target_ratio=target_ratio,
        removed_units=removed_units,
    )
