"""Schedules: how a plan is drawn from scores, costs and a parameter target.

Every method names its default schedule (its scorer's ``schedule``); ``--schedule`` overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ukmp.errors import UserError
from ukmp.groups import PrunableGroup
from ukmp.planning.allocated import allocated_schedule
from ukmp.planning.global_schedule import GroupCost, PlanResult, global_schedule
from ukmp.planning.iterative import IterativeOptions, iterative_schedule, local_schedule

SCHEDULES = ("iterative", "global", "local", "allocated")


def plan_from_scores(
    scores: Mapping[str, torch.Tensor],
    groups: list[PrunableGroup],
    *,
    schedule: str,
    target_ratio: float,
    basis_params: int,
    iterative_options: IterativeOptions | None = None,
    block_scores: Mapping[str, float] | None = None,
    max_sparsity_margin: float = 0.1,
) -> PlanResult:
    """Run the chosen schedule; pure apart from reading group metadata.

    Only the scores of ``groups`` are planned (a method may leave some groups dense); ``allocated``
    (ECoFLaP-sp) also needs the per-group ``block_scores``.
    """
    costs = {g.name: GroupCost(g.num_units, g.params_per_unit) for g in groups}
    scores = {g.name: scores[g.name] for g in groups}
    if schedule == "allocated":
        if block_scores is None:
            raise UserError("the allocated schedule needs block scores; use it with --method ecoflap-sp.")
        return allocated_schedule(
            scores,
            costs,
            block_scores,
            target_ratio=target_ratio,
            basis_params=basis_params,
            max_sparsity_margin=max_sparsity_margin,
        )
    if schedule == "iterative":
        modality = {g.name: g.modality for g in groups}
        return iterative_schedule(
            scores,
            costs,
            modality,
            target_ratio=target_ratio,
            basis_params=basis_params,
            options=iterative_options,
            kind={g.name: g.kind for g in groups},
        )
    if schedule == "local":
        return local_schedule(scores, costs, target_ratio=target_ratio, basis_params=basis_params)
    if schedule == "global":
        return global_schedule(scores, costs, target_ratio=target_ratio, basis_params=basis_params)
    raise UserError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}.")
