"""The weight-recalling LoRA layer: zero-init equivalence, merge equivalence, recall matrices from the plan."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from tiny_models import blip2_inputs, tiny_blip2
from ukmp.adapters import find_adapter
from ukmp.groups import PruningPlan
from ukmp.recovery.recall_lora import (
    RecallLoRALinear,
    RecallLoRAOptions,
    adapter_parameters,
    attach_recall_lora,
    merge_recall_lora,
    recall_layers,
)
from ukmp.surgery import apply_plan_physically


def _half_plan(model: nn.Module, seed: int = 3) -> PruningPlan:
    """Keep a random half of the units of every vision and LM group."""
    gen = torch.Generator().manual_seed(seed)
    plan = PruningPlan()
    for group in find_adapter(model).groups(model):
        keep = torch.randperm(group.num_units, generator=gen)[: max(1, group.num_units // 2)]
        plan.keep(group, keep.tolist())
    return plan


@pytest.fixture(scope="module")
def models():
    dense = tiny_blip2("t5", seed=0)
    plan = _half_plan(dense)
    pruned = apply_plan_physically(copy.deepcopy(dense), plan).eval()
    return dense, pruned, plan


def _randomize_adapter(model: nn.Module, seed: int = 7) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter_parameters(model).values():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def test_untrained_adapter_computes_exactly_the_pruned_model(models) -> None:
    dense, pruned, plan = models
    student = copy.deepcopy(pruned)
    attach_recall_lora(student, dense, plan, RecallLoRAOptions(), seed=0)
    inputs = blip2_inputs("t5")
    with torch.no_grad():
        expected = pruned(**inputs).logits
        got = student.eval()(**inputs).logits
    assert torch.equal(got, expected)


def test_attach_covers_every_producer_and_consumer_with_the_right_branches(models) -> None:
    dense, pruned, plan = models
    student = copy.deepcopy(pruned)
    layers = attach_recall_lora(student, dense, plan, RecallLoRAOptions(), seed=0)
    members = {m.module for g in find_adapter(dense).groups(dense) for m in g.members}
    assert set(layers) == members
    trainable = {n for n, p in student.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n.rsplit(".", 1)[-1] for n in trainable)
    for name, layer in layers.items():
        b = layer.branches
        if name.endswith("qkv"):
            assert b == {"lora": 3, "output_recall": 3, "input_recall": 0}
        elif name.endswith(("fc1", ".q", ".k", ".v", "wi_0", "wi_1")):
            assert b == {"lora": 1, "output_recall": 1, "input_recall": 0}, name
        else:  # projection, fc2, o, wo lose input columns
            assert b == {"lora": 1, "output_recall": 0, "input_recall": 1}, name
    # recall matrices are not part of the state dict (rebuilt from the base model, never stored twice)
    assert not any("recall_weight" in k or "recall_in_weight" in k for k in student.state_dict())


def test_qkv_recall_uses_the_pruned_rows_of_all_three_blocks(models) -> None:
    dense, pruned, plan = models
    student = copy.deepcopy(pruned)
    attach_recall_lora(student, dense, plan, RecallLoRAOptions(), seed=0)
    name = "vision_model.encoder.layers.0.self_attn.qkv"
    layer = student.get_submodule(name)
    group = next(g for g in find_adapter(dense).groups(dense) if g.name == "vision.layers.0.attn")
    removed = plan.removed(group)
    weight = dense.get_submodule(name).weight
    for block, member in zip(layer.blocks, group.producers):
        assert torch.equal(block.recall_weight, weight[member.indices(removed)])
    kept_rows = sum(block.rows for block in layer.blocks)
    assert kept_rows == pruned.get_submodule(name).out_features


def test_plain_lora_has_no_recall_branches(models) -> None:
    dense, pruned, plan = models
    student = copy.deepcopy(pruned)
    layers = attach_recall_lora(student, dense, plan, RecallLoRAOptions(output_recall=False, input_recall=False))
    assert all(layer.branches["output_recall"] == layer.branches["input_recall"] == 0 for layer in layers.values())


def test_merged_linear_equals_the_unmerged_layer_with_every_branch_active(models) -> None:
    dense, pruned, plan = models
    student = copy.deepcopy(pruned)
    attach_recall_lora(student, dense, plan, RecallLoRAOptions(), seed=0)
    _randomize_adapter(student)
    gen = torch.Generator().manual_seed(11)
    for name, layer in recall_layers(student).items():
        layer.eval()
        x = torch.randn(3, 5, layer.in_features, generator=gen)
        # every branch contributes something
        for block in layer.blocks:
            assert block.delta(x, x).abs().sum() > 0
            if block.recall_weight is not None:
                assert block.lora_recall_B.abs().sum() > 0 and block.recall_weight.abs().sum() > 0
        merged = layer.merge()
        assert type(merged) is nn.Linear
        assert merged.weight.shape == layer.base.weight.shape
        torch.testing.assert_close(merged(x), layer(x), rtol=1e-5, atol=1e-5, msg=name)
        assert not torch.allclose(merged.weight, layer.base.weight)

    inputs = blip2_inputs("t5")
    with torch.no_grad():
        unmerged = student.eval()(**inputs).logits
        merged_model = merge_recall_lora(copy.deepcopy(student))
        assert not recall_layers(merged_model)
        merged = merged_model(**inputs).logits
    torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(unmerged, pruned(**inputs).logits)


def test_dropout_applies_to_the_lora_branch_only() -> None:
    base = nn.Linear(6, 4)
    layer = RecallLoRALinear(base, RecallLoRAOptions(dropout=0.5))
    _randomize_adapter(layer)
    layer.train()
    x = torch.randn(2, 6)
    torch.manual_seed(0)
    a = layer(x)
    torch.manual_seed(1)
    b = layer(x)
    assert not torch.allclose(a, b)
    layer.eval()
    torch.testing.assert_close(layer(x), layer.merge()(x))
