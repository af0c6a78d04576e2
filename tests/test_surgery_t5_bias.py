"""T5 relative position bias after heterogeneous head pruning.

Block 0 computes the bias for all original heads and the stack passes it down; every pruned
layer must attend with the bias columns of exactly its own surviving original heads.
"""

from __future__ import annotations

import copy

import pytest
import torch

from tiny_models import blip2_inputs, tiny_blip2
from ukmp.adapters import find_adapter
from ukmp.groups import PruningPlan
from ukmp.surgery import apply_plan_as_masks, apply_plan_physically

# different surviving heads in every layer, including block 0, which owns the bias embedding
KEPT = {
    "lm_encoder.layers.0.attn": [2],
    "lm_encoder.layers.1.attn": [0, 3],
    "lm_decoder.layers.0.attn": [1, 3],
    "lm_decoder.layers.1.attn": [3],
    "lm_decoder.layers.1.cross_attn": [1, 2],
}


def _model_and_plan():
    model = tiny_blip2("t5", seed=4)
    with torch.no_grad():  # make the relative bias dominate the attention scores, head by head
        for stack in (model.language_model.encoder, model.language_model.decoder):
            emb = stack.block[0].layer[0].SelfAttention.relative_attention_bias.weight
            emb.copy_(torch.randn(emb.shape, generator=torch.Generator().manual_seed(5)) * 4)
    groups = {g.name: g for g in find_adapter(model).groups(model)}
    plan = PruningPlan()
    for name, kept in KEPT.items():
        plan.keep(groups[name], kept)
    return model, plan


def _logits(model):
    with torch.no_grad():
        return model(**blip2_inputs("t5", seed=7)).logits


def test_each_layer_uses_the_bias_of_its_own_surviving_heads():
    model, plan = _model_and_plan()
    masked = _logits(apply_plan_as_masks(copy.deepcopy(model), plan))
    sliced_model = apply_plan_physically(copy.deepcopy(model), plan)
    torch.testing.assert_close(_logits(sliced_model), masked, atol=1e-5, rtol=0)
    # generation (cached decoding: the bias of one new query position) agrees too
    inputs = {k: v for k, v in blip2_inputs("t5", seed=7).items() if k != "decoder_input_ids"}
    masked_model = apply_plan_as_masks(copy.deepcopy(model), plan)
    for kw in ({}, {"num_beams": 3}):
        expected = masked_model.generate(**inputs, max_new_tokens=8, do_sample=False, **kw)
        assert torch.equal(sliced_model.generate(**inputs, max_new_tokens=8, do_sample=False, **kw), expected)
    # the bias embedding itself is never sliced
    emb = sliced_model.language_model.encoder.block[0].layer[0].SelfAttention.relative_attention_bias
    assert emb.weight.shape[1] == 4


def test_wrong_bias_columns_would_be_detected():
    """Tiling head 0's bias or taking the first k columns changes the logits: the test above bites."""
    model, plan = _model_and_plan()
    masked = _logits(apply_plan_as_masks(copy.deepcopy(model), plan))
    for wrong in ("first_columns", "tile_head_0"):
        sliced = apply_plan_physically(copy.deepcopy(model), plan)
        for stack in (sliced.language_model.encoder, sliced.language_model.decoder):
            attn = stack.block[1].layer[0].SelfAttention
            n = attn.kept_heads.numel()
            attn.kept_heads = torch.arange(n) if wrong == "first_columns" else torch.zeros(n, dtype=torch.long)
        assert not torch.allclose(_logits(sliced), masked, atol=1e-3), wrong


def test_unmodified_t5_attention_cannot_run_pruned():
    """Only slicing weights and head counts, without the pruned attention class, breaks."""
    model, plan = _model_and_plan()
    sliced = apply_plan_physically(copy.deepcopy(model), plan)
    from transformers.models.t5.modeling_t5 import T5Attention

    for stack in (sliced.language_model.encoder, sliced.language_model.decoder):
        for block in stack.block:
            for layer in block.layer[:2]:
                for attn in (getattr(layer, "SelfAttention", None), getattr(layer, "EncDecAttention", None)):
                    if attn is not None:
                        attn.__class__ = T5Attention
    with pytest.raises(RuntimeError):
        _logits(sliced)
