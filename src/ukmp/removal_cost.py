"""Ground truth for importance: what removing a unit (or a block of units) really costs.

Every scorer estimates, from gradients or activations, how much the model would lose without a
unit. This module measures it instead: zero the unit's producer rows (and their biases) and its
consumer columns, which is exactly what physical removal computes (`surgery.apply_plan_as_masks`
relies on the same fact), read the loss on fixed evaluation batches, and restore the weights. The
increase over the dense loss is the unit's removal cost. No scorer, no planner: a scorer that
tells the truth ranks units the way these costs do, which `rank_agreement` measures (Spearman).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats as scipy_stats
from torch import nn
from tqdm.auto import tqdm

from ukmp.adapters.base import get_module
from ukmp.groups import PrunableGroup
from ukmp.methods.targets import target_logits


@dataclass(frozen=True)
class Probe:
    """A set of units of one group removed together (one unit, or a block)."""

    group: str
    units: tuple[int, ...]

    @property
    def is_block(self) -> bool:
        return len(self.units) > 1


def sample_probes(
    groups: Sequence[PrunableGroup],
    *,
    singles: int = 8,
    blocks: int = 4,
    block_fraction: float = 0.125,
    seed: int = 0,
) -> list[Probe]:
    """Per group: `singles` random single units (every unit if the group has no more), and `blocks`
    random blocks of `block_fraction` of its units (groups of at most `singles` units get none:
    their single units already cover them)."""
    rng = np.random.default_rng(seed)
    out: list[Probe] = []
    for group in groups:
        n = group.num_units
        chosen = range(n) if n <= singles else sorted(int(u) for u in rng.choice(n, singles, replace=False))
        out += [Probe(group.name, (u,)) for u in chosen]
        if n > singles:
            size = max(2, round(n * block_fraction))
            for _ in range(blocks):
                out.append(Probe(group.name, tuple(sorted(int(u) for u in rng.choice(n, size, replace=False)))))
    return out


@contextmanager
@torch.no_grad()
def units_removed(model: nn.Module, group: PrunableGroup, units: Sequence[int]) -> Iterator[None]:
    """Inside the block, `units` of `group` contribute nothing (zeroed in place); restored on exit."""
    saved = []
    try:
        for member in group.members:
            module = get_module(model, member.module)
            index = member.indices(list(units)).to(module.weight.device)
            saved.append((module.weight, member.dim, index, module.weight.index_select(member.dim, index).clone()))
            module.weight.index_fill_(member.dim, index, 0.0)
            if member.dim == 0 and module.bias is not None:
                saved.append((module.bias, 0, index, module.bias.index_select(0, index).clone()))
                module.bias.index_fill_(0, index, 0.0)
        yield
    finally:
        for tensor, dim, index, values in reversed(saved):
            tensor.index_copy_(dim, index, values)


@torch.no_grad()
def mean_target_nll(model: nn.Module, batches: Sequence[Mapping[str, torch.Tensor]]) -> float:
    """Mean cross-entropy per target token (labels != -100) over all `batches`."""
    total, tokens = 0.0, 0
    for batch in batches:
        logits, labels = target_logits(model, model(**batch).logits, batch["labels"])
        total += float(F.cross_entropy(logits.transpose(1, 2).float(), labels, ignore_index=-100, reduction="sum"))
        tokens += int((labels != -100).sum())
    return total / max(tokens, 1)


def removal_costs(
    model: nn.Module,
    groups: Sequence[PrunableGroup],
    probes: Sequence[Probe],
    loss_sets: Mapping[str, Sequence[Mapping[str, torch.Tensor]]],
    *,
    progress: bool = True,
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """The dense loss of each set, and per probe the loss increase of each set when it is removed."""
    was_training = model.training
    model.eval()
    by_name = {g.name: g for g in groups}
    try:
        dense = {name: mean_target_nll(model, batches) for name, batches in loss_sets.items()}
        costs = []
        for probe in tqdm(probes, desc="removal costs", unit="probe", disable=not progress):
            with units_removed(model, by_name[probe.group], probe.units):
                costs.append({name: mean_target_nll(model, b) - dense[name] for name, b in loss_sets.items()})
    finally:
        model.train(was_training)
    return dense, costs


def probe_score(scores: Mapping[str, torch.Tensor], probe: Probe) -> float:
    """A scorer's estimate for a probe: the sum of its units' scores."""
    return float(scores[probe.group].double()[list(probe.units)].sum())


def rank_agreement(estimates: Sequence[float], truth: Sequence[float]) -> float:
    """Spearman rank correlation (nan when either side is constant or has fewer than 3 values)."""
    if len(truth) < 3 or len(set(estimates)) < 2 or len(set(truth)) < 2:
        return float("nan")
    return float(scipy_stats.spearmanr(estimates, truth).statistic)
