"""Adapters: which groups each architecture exposes, their exact costs, and clear refusals."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import (
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    OPTForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

from tiny_models import TEXT, tiny_blip2
from ukmp.accounting import parameter_counts
from ukmp.adapters import find_adapter
from ukmp.errors import UserError
from ukmp.groups import PruningPlan
from ukmp.surgery import apply_plan_physically


def _llama_config(**kw) -> LlamaConfig:
    cfg = {k: v for k, v in TEXT["llama"].items() if k != "model_type"}
    cfg.update(kw)
    return LlamaConfig(**cfg)


@pytest.mark.parametrize("lm", ["t5", "opt", "llama"])
def test_blip2_default_groups_skip_qformer_which_is_opt_in(lm):
    model = tiny_blip2(lm)
    adapter = find_adapter(model)
    default = adapter.groups(model)
    assert {g.component for g in default} == (
        {"vision", "lm_encoder", "lm_decoder"} if lm == "t5" else {"vision", "lm"}
    )
    qformer = adapter.groups(model, components=("qformer",))
    # 2 layers: self-attn + query FFN each, cross-attention on layer 0 only (frequency 2)
    assert [g.name for g in qformer] == [
        "qformer.layers.0.attn",
        "qformer.layers.0.cross_attn",
        "qformer.layers.0.mlp",
        "qformer.layers.1.attn",
        "qformer.layers.1.mlp",
    ]
    with pytest.raises(UserError, match="no component 'audio'"):
        adapter.groups(model, components=("audio",))


def test_t5_groups_cover_self_cross_attention_and_gated_ffn():
    model = tiny_blip2("t5")
    names = [g.name for g in find_adapter(model).groups(model) if g.component.startswith("lm")]
    assert names == [
        "lm_encoder.layers.0.attn",
        "lm_encoder.layers.0.mlp",
        "lm_encoder.layers.1.attn",
        "lm_encoder.layers.1.mlp",
        "lm_decoder.layers.0.attn",
        "lm_decoder.layers.0.cross_attn",
        "lm_decoder.layers.0.mlp",
        "lm_decoder.layers.1.attn",
        "lm_decoder.layers.1.cross_attn",
        "lm_decoder.layers.1.mlp",
    ]
    mlp = next(g for g in find_adapter(model).groups(model) if g.name == "lm_encoder.layers.0.mlp")
    assert [m.module.rsplit(".", 1)[-1] for m in mlp.producers] == ["wi_0", "wi_1"]


def test_plain_t5_ffn_and_standalone_t5():
    model = T5ForConditionalGeneration(
        T5Config(vocab_size=50, d_model=16, d_kv=4, d_ff=24, num_layers=1, num_heads=4, feed_forward_proj="relu")
    )
    groups = find_adapter(model).groups(model)
    mlp = next(g for g in groups if g.name == "lm_encoder.layers.0.mlp")
    assert [m.module for m in mlp.producers] == ["encoder.block.0.layer.1.DenseReluDense.wi"]
    assert mlp.params_per_unit == 16 + 16  # one wi row + one wo column, no biases in T5


def test_vision_head_spans_q_k_v_blocks_of_fused_qkv_and_its_bias():
    model = tiny_blip2("t5")
    group = find_adapter(model).groups(model)[0]
    assert group.name == "vision.layers.0.attn"
    hidden, head_dim = 32, 8
    assert [(m.module.rsplit(".", 1)[-1], m.dim, m.width, m.offset) for m in group.members] == [
        ("qkv", 0, head_dim, 0),
        ("qkv", 0, head_dim, hidden),
        ("qkv", 0, head_dim, 2 * hidden),
        ("projection", 1, head_dim, 0),
    ]
    # 3 blocks of (8 rows x 32 + 8 bias) + 8 projection columns x 32 rows
    assert group.params_per_unit == 3 * (head_dim * hidden + head_dim) + head_dim * hidden
    assert group.members[1].indices([2]).tolist() == list(range(hidden + 16, hidden + 24))


@pytest.mark.parametrize("lm", ["t5", "opt", "llama"])
def test_params_per_unit_is_exact(lm):
    """Removing units drops parameter counts by exactly units x params_per_unit, per component."""
    model = tiny_blip2(lm)
    adapter = find_adapter(model)
    groups = adapter.all_groups(model)
    before = parameter_counts(model)
    plan = PruningPlan()
    expected = dict(before)
    for group in groups:
        plan.keep(group, [0])
        removed = (group.num_units - 1) * group.params_per_unit
        expected[group.component] -= removed
        expected["total"] -= removed
    after = parameter_counts(apply_plan_physically(copy.deepcopy(model), plan))
    assert after == expected
    assert before["total"] == sum(p.numel() for p in model.parameters())


def test_gqa_unit_is_one_kv_head_with_its_query_heads():
    """Rule: unit j = kv head j + query heads j*G..j*G+G-1 (G = num_key_value_groups)."""
    model = LlamaForCausalLM(_llama_config(num_attention_heads=6, num_key_value_heads=2, hidden_size=48))
    attn_group = find_adapter(model).groups(model)[0]
    head_dim, groups_per_kv = 8, 3
    assert (attn_group.num_units, attn_group.queries_per_unit, attn_group.unit_size) == (2, 3, 8)
    q, k, v = attn_group.producers
    (o,) = attn_group.consumers
    assert q.indices([1]).tolist() == list(range(3 * head_dim, 6 * head_dim))  # query heads 3, 4, 5
    assert k.indices([1]).tolist() == v.indices([1]).tolist() == list(range(head_dim, 2 * head_dim))
    assert o.indices([1]).tolist() == q.indices([1]).tolist()
    assert attn_group.params_per_unit == 48 * head_dim * (2 * groups_per_kv + 2)

    plan = PruningPlan()
    plan.keep(attn_group, [1])
    pruned = apply_plan_physically(copy.deepcopy(model), plan)
    attn = pruned.model.layers[0].self_attn
    assert attn.q_proj.out_features == 3 * head_dim and attn.k_proj.out_features == head_dim
    assert attn.num_key_value_groups == 3  # the query:kv ratio is unchanged
    # the surviving query heads are the original heads 3..5, the kv head is the original head 1
    dense = model.model.layers[0].self_attn
    assert torch.equal(attn.q_proj.weight, dense.q_proj.weight[3 * head_dim : 6 * head_dim])
    assert torch.equal(attn.k_proj.weight, dense.k_proj.weight[head_dim : 2 * head_dim])
    ids = torch.randint(3, 90, (1, 7))
    with torch.no_grad():
        pruned(input_ids=ids)  # runs with the reduced head counts


def test_standalone_decoder_lms_get_groups():
    llama = LlamaForCausalLM(_llama_config())
    opt = OPTForCausalLM(OPTConfig(**{k: v for k, v in TEXT["opt"].items() if k != "model_type"}))
    for model in (llama, opt):
        names = [g.name for g in find_adapter(model).groups(model)]
        assert names == ["lm.layers.0.attn", "lm.layers.0.mlp", "lm.layers.1.attn", "lm.layers.1.mlp"]
    counts = parameter_counts(llama)
    assert counts["lm_embeddings"] == 2 * 96 * 32  # untied embed_tokens + lm_head


def test_unsupported_architecture_names_it():
    model = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32))  # fmt: skip
    with pytest.raises(UserError, match=r"no adapter for BertModel \(model_type 'bert'\)") as info:
        find_adapter(model)
    assert "\n" not in str(info.value)
