"""Exact parameter counts per component, and FLOPs per forward.

Counts iterate ``named_parameters()``, which yields a shared (tied) tensor once, so T5's
``shared`` / ``embed_tokens`` / ``lm_head`` are counted once. Buckets come from the adapter:
``vision``, ``qformer``, ``projection``, ``lm_encoder``, ``lm_decoder``, ``lm`` (decoder-only
layers), ``lm_embeddings`` (token/position embeddings and the LM head), ``other``.
FLOPs are measured, not estimated, with ``torch.utils.flop_counter.FlopCounterMode`` on an
example input, so they reflect exactly what the sliced model executes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ukmp.adapters import ModelAdapter, find_adapter
from ukmp.groups import PrunableGroup


def parameter_counts(model: nn.Module, adapter: ModelAdapter | None = None) -> dict[str, int]:
    """Parameters per accounting bucket, plus ``total`` (each tensor counted once)."""
    adapter = adapter or find_adapter(model)
    counts: dict[str, int] = {}
    for name, param in model.named_parameters():
        bucket = adapter.param_component(name)
        counts[bucket] = counts.get(bucket, 0) + param.numel()
    counts = dict(sorted(counts.items()))
    counts["total"] = sum(counts.values())
    return counts


def prunable_parameters(groups: Iterable[PrunableGroup]) -> int:
    """Parameters that live in prunable units (a group's full, dense size)."""
    return sum(g.total_params for g in groups)


def counts_after_plan(
    before: Mapping[str, int], groups: Iterable[PrunableGroup], kept: Mapping[str, list[int]]
) -> dict[str, int]:
    """Per-bucket counts a plan leads to, computed from group costs (no model needed).

    Group components equal accounting buckets for every layer parameter, so the removed
    parameters of a group are subtracted from the bucket named by its component.
    """
    after = dict(before)
    for group in groups:
        if group.name in kept:
            removed = (group.num_units - len(kept[group.name])) * group.params_per_unit
            after[group.component] -= removed
            after["total"] -= removed
    return after


def forward_flops(model: nn.Module, inputs: Mapping[str, Any]) -> int:
    """Total FLOPs of one ``model(**inputs)`` call (matmul-type ops, as counted by torch).

    Parameters are switched to ``requires_grad=False`` for the count (and restored): the
    counter's module tracker fails on grad-requiring tensors under ``no_grad``, and building an
    autograd graph just to count would waste memory.
    """
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(**inputs)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return int(counter.get_total_flops())


def example_inputs(model: nn.Module, *, batch: int = 1, text_len: int = 16) -> dict[str, torch.Tensor]:
    """A deterministic synthetic input of realistic shape, for FLOP counts and smoke checks (from the adapter)."""
    return find_adapter(model).example_inputs(model, batch=batch, text_len=text_len)
