"""Random and magnitude scorers: deterministic, read-only, and exactly the L1 of a unit's weights."""

from __future__ import annotations

import torch

from tiny_models import tiny_blip2
from ukmp.adapters import find_adapter
from ukmp.methods.magnitude import magnitude_scores
from ukmp.methods.random import random_scores


def test_random_scores_depend_only_on_the_seed():
    model = tiny_blip2("opt")
    groups = find_adapter(model).groups(model)
    torch.manual_seed(123)
    a = random_scores(model, groups, seed=5)
    torch.manual_seed(999)  # the global RNG must not matter
    b = random_scores(model, groups, seed=5)
    c = random_scores(model, groups, seed=6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert [a[g.name].numel() for g in groups] == [g.num_units for g in groups]


def test_magnitude_is_l1_of_producer_rows_biases_and_consumer_columns():
    model = tiny_blip2("t5")
    groups = {g.name: g for g in find_adapter(model).groups(model)}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = magnitude_scores(model, list(groups.values()))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # read-only

    attn = model.vision_model.encoder.layers[0].self_attn
    hidden, hd, head = 32, 8, 2
    rows = [block * hidden + head * hd + r for block in range(3) for r in range(hd)]
    expected = (
        attn.qkv.weight[rows].abs().sum()
        + attn.qkv.bias[rows].abs().sum()
        + attn.projection.weight[:, head * hd : (head + 1) * hd].abs().sum()
    )
    assert torch.isclose(scores["vision.layers.0.attn"][head], expected.double(), rtol=1e-6)

    ff = model.language_model.decoder.block[1].layer[2].DenseReluDense
    ch = 17
    expected = ff.wi_0.weight[ch].abs().sum() + ff.wi_1.weight[ch].abs().sum() + ff.wo.weight[:, ch].abs().sum()
    assert torch.isclose(scores["lm_decoder.layers.1.mlp"][ch], expected.double(), rtol=1e-6)
