"""Masked dense model == physically sliced model, on logits and on greedy/beam generation."""

from __future__ import annotations

import copy

import pytest
import torch

from tiny_models import blip2_inputs, instructblip_inputs, tiny_blip2, tiny_instructblip
from ukmp.adapters import find_adapter
from ukmp.errors import UserError
from ukmp.groups import PruningPlan
from ukmp.pruned_modules import PrunedBlip2Attention, PrunedT5Attention
from ukmp.surgery import apply_plan_as_masks, apply_plan_physically


def heterogeneous_plan(model, seed: int) -> PruningPlan:
    """Random kept sets per group: some groups untouched, some left with a single unit."""
    gen = torch.Generator().manual_seed(seed)
    plan = PruningPlan()
    for i, group in enumerate(find_adapter(model).all_groups(model)):
        mode = i % 4
        if mode == 0:
            continue  # untouched (absent from the plan)
        if mode == 1:
            count = 1  # a single head / channel left
        else:
            count = int(torch.randint(1, group.num_units, (1,), generator=gen))
        plan.keep(group, torch.randperm(group.num_units, generator=gen)[:count].tolist())
    return plan


def _generate(model, inputs, **kw):
    kwargs = {k: v for k, v in inputs.items() if k != "decoder_input_ids"}
    return model.generate(**kwargs, max_new_tokens=6, do_sample=False, **kw)


@pytest.mark.parametrize("lm", ["t5", "opt", "llama"])
@pytest.mark.parametrize("seed", [0, 1])
def test_masked_and_sliced_models_agree(lm, seed):
    model = tiny_blip2(lm, seed=seed)
    plan = heterogeneous_plan(model, seed)
    assert any(len(k) == 1 for k in plan.kept.values())
    masked = apply_plan_as_masks(copy.deepcopy(model), plan)
    sliced = apply_plan_physically(copy.deepcopy(model), plan)
    assert sum(p.numel() for p in sliced.parameters()) < sum(p.numel() for p in masked.parameters())

    inputs = blip2_inputs(lm, seed=seed)
    with torch.no_grad():
        dense_logits = model(**inputs).logits
        masked_logits = masked(**inputs).logits
        sliced_logits = sliced(**inputs).logits
    assert not torch.allclose(dense_logits, masked_logits, atol=1e-3)  # the plan does change the model
    torch.testing.assert_close(sliced_logits, masked_logits, atol=1e-5, rtol=0)

    for kw in ({}, {"num_beams": 3}, {"cache_implementation": "static"}):
        expected = _generate(masked, inputs, **kw)
        assert torch.equal(_generate(sliced, inputs, **kw), expected), kw


@pytest.mark.parametrize("lm", ["t5", "llama"])
def test_instructblip_masked_and_sliced_agree_including_qformer_text_ffn(lm):
    model = tiny_instructblip(lm)
    plan = heterogeneous_plan(model, 2)
    assert any(name.endswith("text_mlp") for name in plan.kept)
    masked = apply_plan_as_masks(copy.deepcopy(model), plan)
    sliced = apply_plan_physically(copy.deepcopy(model), plan)
    inputs = instructblip_inputs(lm)
    with torch.no_grad():
        torch.testing.assert_close(sliced(**inputs).logits, masked(**inputs).logits, atol=1e-5, rtol=0)
    assert torch.equal(_generate(sliced, inputs, num_beams=2), _generate(masked, inputs, num_beams=2))


def test_sliced_model_keeps_dtype_device_and_fixes_attributes():
    model = tiny_blip2("t5").to(torch.bfloat16)
    adapter = find_adapter(model)
    groups = {g.name: g for g in adapter.all_groups(model)}
    plan = PruningPlan()
    plan.keep(groups["vision.layers.1.attn"], [3])
    plan.keep(groups["lm_decoder.layers.1.cross_attn"], [0, 2])
    plan.keep(groups["lm_encoder.layers.0.mlp"], list(range(0, 48, 2)))
    plan.keep(groups["vision.layers.0.attn"], [0, 1, 2, 3])  # keeps everything: left untouched
    apply_plan_physically(model, plan)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    vision = model.vision_model.encoder.layers
    assert type(vision[0].self_attn).__name__ == "Blip2Attention"
    assert isinstance(vision[1].self_attn, PrunedBlip2Attention) and vision[1].self_attn.num_heads == 1
    assert vision[1].self_attn.qkv.weight.shape == (3 * 8, 32)
    cross = model.language_model.decoder.block[1].layer[1].EncDecAttention
    assert isinstance(cross, PrunedT5Attention)
    assert (cross.n_heads, cross.inner_dim, cross.kept_heads.tolist()) == (2, 16, [0, 2])
    assert model.language_model.encoder.block[0].layer[1].DenseReluDense.wo.in_features == 24
    with torch.no_grad():
        model(**{k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in blip2_inputs().items()})


def test_plans_are_validated():
    model = tiny_blip2("opt")
    group = find_adapter(model).groups(model)[0]
    with pytest.raises(UserError, match="keeps no unit of vision.layers.0.attn"):
        PruningPlan().keep(group, [])
    bad = PruningPlan(kept={group.name: []}, num_units={group.name: 4})
    with pytest.raises(UserError, match="keeps no unit"):
        apply_plan_physically(copy.deepcopy(model), bad)
    with pytest.raises(UserError, match="has units 0..3"):
        PruningPlan().keep(group, [0, 4])
    with pytest.raises(UserError, match="does not have"):
        apply_plan_physically(copy.deepcopy(model), PruningPlan(kept={"nope": [0]}, num_units={"nope": 2}))
    plan = PruningPlan()
    plan.keep(group, [1])
    once = apply_plan_physically(copy.deepcopy(model), plan)
    with pytest.raises(UserError, match="already pruned"):
        apply_plan_physically(once, plan)


def test_plan_json_round_trip():
    model = tiny_blip2("llama")
    plan = heterogeneous_plan(model, 3)
    again = PruningPlan.from_json(plan.to_json())
    assert again.kept == {k: sorted(v) for k, v in plan.kept.items()} and again.num_units == plan.num_units
