"""Parameter counts per component and measured FLOPs."""

from __future__ import annotations

import copy

import torch

from tiny_models import blip2_inputs, tiny_blip2
from ukmp.accounting import counts_after_plan, example_inputs, forward_flops, parameter_counts
from ukmp.adapters import find_adapter
from ukmp.groups import PruningPlan
from ukmp.surgery import apply_plan_physically


def test_components_partition_all_parameters_once():
    model = tiny_blip2("t5")
    counts = parameter_counts(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())  # shared embedding once
    assert counts["lm_embeddings"] == 96 * 32  # shared == encoder/decoder embed_tokens == lm_head
    assert counts["projection"] == 32 * 32 + 32
    assert counts["qformer"] == sum(p.numel() for p in model.qformer.parameters()) + model.query_tokens.numel()
    assert counts["vision"] == sum(p.numel() for p in model.vision_model.parameters())
    assert set(counts) == {
        "vision",
        "qformer",
        "projection",
        "lm_encoder",
        "lm_decoder",
        "lm_embeddings",
        "total",
    }


def test_counts_after_plan_predicts_the_sliced_model_and_flops_drop():
    model = tiny_blip2("t5")
    adapter = find_adapter(model)
    groups = adapter.groups(model)
    plan = PruningPlan()
    for group in groups:
        plan.keep(group, list(range(0, group.num_units, 2)))
    before = parameter_counts(model)
    sliced = apply_plan_physically(copy.deepcopy(model), plan)
    assert parameter_counts(sliced) == counts_after_plan(before, groups, plan.kept)

    inputs = blip2_inputs("t5")
    dense_flops, sliced_flops = forward_flops(model, inputs), forward_flops(sliced, inputs)
    assert 0 < sliced_flops < dense_flops
    assert all(p.requires_grad for p in model.parameters())  # restored after counting
    # the example input runs on every supported BLIP-2 flavour
    for lm in ("opt", "llama"):
        other = tiny_blip2(lm)
        assert forward_flops(other, example_inputs(other)) > 0
    with torch.no_grad():
        model(**example_inputs(model))
