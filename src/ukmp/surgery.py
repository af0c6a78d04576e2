"""Apply a pruning plan: physically (smaller tensors) or as masks (zeros in the dense model).

Both paths go through the same index arithmetic (``removed_indices``), so they can only differ
in what they do with the indices; the equivalence tests compare them. Slicing is generic over
``nn.Linear``; the architecture-specific attribute fixes (head counts, pruned-forward classes)
are delegated to the adapter's ``after_slice``.

A group whose plan keeps every unit is left untouched (no class swap, no attribute change); a
plan that keeps zero units of a group is rejected (``validate_kept``).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from ukmp.adapters import ModelAdapter, find_adapter
from ukmp.adapters.base import get_module
from ukmp.errors import UserError
from ukmp.groups import PrunableGroup, PruningPlan, validate_kept

PLAN_ATTR = "ukmp_plan"


def _planned_groups(
    model: nn.Module, plan: PruningPlan, adapter: ModelAdapter
) -> list[tuple[PrunableGroup, list[int]]]:
    """The groups the plan actually shrinks, each with its validated kept units."""
    by_name = {g.name: g for g in adapter.all_groups(model)}
    unknown = sorted(set(plan.kept) - set(by_name))
    if unknown:
        raise UserError(
            f"the plan names group {unknown[0]!r}, which {adapter.architecture} does not have; "
            "was it made for another model?"
        )
    out = []
    for name, kept in plan.kept.items():
        group = by_name[name]
        expected = plan.num_units.get(name, group.num_units)
        if expected != group.num_units:
            raise UserError(
                f"the plan says {name} has {expected} units but the model has {group.num_units}; "
                "the plan was made for another model."
            )
        kept = validate_kept(group, kept)
        if len(kept) < group.num_units:
            out.append((group, kept))
    return out


def removed_indices(
    planned: list[tuple[PrunableGroup, list[int]]],
) -> dict[tuple[str, int], torch.Tensor]:
    """(Linear name, dim) -> sorted indices to remove along that dim, merged over all groups."""
    acc: dict[tuple[str, int], list[torch.Tensor]] = defaultdict(list)
    for group, kept in planned:
        kept_set = set(kept)
        gone = [u for u in range(group.num_units) if u not in kept_set]
        for member in group.members:
            acc[(member.module, member.dim)].append(member.indices(gone))
    return {key: torch.cat(parts).unique(sorted=True) for key, parts in acc.items()}


def _keep_index(size: int, removed: torch.Tensor) -> torch.Tensor:
    keep = torch.ones(size, dtype=torch.bool)
    keep[removed] = False
    return keep.nonzero().reshape(-1)


@torch.no_grad()
def _slice_linear(module: nn.Linear, dim: int, keep: torch.Tensor) -> None:
    """Replace the Linear's weight (and, for rows, bias) by the kept slice; same dtype/device."""
    weight = module.weight
    index = keep.to(weight.device)
    module.weight = nn.Parameter(weight.index_select(dim, index).contiguous(), weight.requires_grad)
    if dim == 0:
        if module.bias is not None:
            bias = module.bias
            module.bias = nn.Parameter(bias.index_select(0, index).contiguous(), bias.requires_grad)
        module.out_features = int(keep.numel())
    else:
        module.in_features = int(keep.numel())


def _check_dense(model: nn.Module) -> None:
    if getattr(model, PLAN_ATTR, None) is not None:
        raise UserError("this model is already pruned; apply plans to the dense base model.")


def apply_plan_physically(model: nn.Module, plan: PruningPlan, adapter: ModelAdapter | None = None) -> nn.Module:
    """Slice the dense ``model`` in place so it keeps exactly the plan's units; returns it.

    Tied or shared Linears are not part of any group, so every sliced weight is owned by one
    module. The plan is attached to the model (``model.ukmp_plan``) for saving and to refuse a
    second application (indices always refer to the dense model).
    """
    _check_dense(model)
    adapter = adapter or find_adapter(model)
    planned = _planned_groups(model, plan, adapter)
    for (module_name, dim), removed in removed_indices(planned).items():
        module = get_module(model, module_name)
        size = module.weight.shape[dim]
        _slice_linear(module, dim, _keep_index(size, removed))
    for group, kept in planned:
        adapter.after_slice(model, group, kept)
    setattr(model, PLAN_ATTR, plan)
    return model


@torch.no_grad()
def apply_plan_as_masks(model: nn.Module, plan: PruningPlan, adapter: ModelAdapter | None = None) -> nn.Module:
    """Zero, in place, every weight row/column (and producer bias entry) the plan removes.

    The model keeps its full shapes; a removed head or channel then contributes exactly nothing,
    which is what the physically sliced model computes.
    """
    adapter = adapter or find_adapter(model)
    planned = _planned_groups(model, plan, adapter)
    for (module_name, dim), removed in removed_indices(planned).items():
        module = get_module(model, module_name)
        index = removed.to(module.weight.device)
        module.weight.index_fill_(dim, index, 0.0)
        if dim == 0 and module.bias is not None:
            module.bias.index_fill_(0, index, 0.0)
    return model
