"""UKMI formulas on cases small enough to compute by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ukmp.groups import Member, PrunableGroup
from ukmp.methods.entropy import RowAngleHistogram, entropy_of_values
from ukmp.methods.token_selection import selected_token_loss
from ukmp.methods.ukmi import entropy_unit_scores, taylor_unit_scores


def _logits_for(probs: list[list[float]]) -> torch.Tensor:
    return torch.log(torch.tensor(probs)).unsqueeze(0)  # (1, L, V)


def test_confidence_selection_keeps_low_confidence_tokens_only():
    # position 0: top-1 0.9 (well fitted), position 1: top-1 0.3, position 2: top-1 0.5
    logits = _logits_for([[0.9, 0.05, 0.05], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]])
    labels = torch.tensor([[0, 1, 2]])
    out = selected_token_loss(logits, labels, threshold=0.4, mode="confidence")
    # only position 1 has max prob 0.4 <= 0.4 ; CE there = -log p(label=1) = -log 0.3
    assert out.selected_tokens.tolist() == [1]
    assert out.loss.item() == pytest.approx(-math.log(0.3), rel=1e-6)


def test_threshold_floor_keeps_at_least_the_least_confident_token():
    logits = _logits_for([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]])
    labels = torch.tensor([[1, 0]])
    out = selected_token_loss(logits, labels, threshold=0.4, mode="confidence")
    # nothing is <= 0.4, so tau' = min confidence = 0.8 selects position 1 only
    assert out.selected_tokens.tolist() == [1]
    assert out.loss.item() == pytest.approx(-math.log(0.8), rel=1e-6)


def test_target_mode_uses_ground_truth_probability():
    # confidently wrong at position 0: top-1 0.9 but label prob 0.05 -> selected in target mode only
    logits = _logits_for([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    labels = torch.tensor([[1, 1]])
    conf = selected_token_loss(logits, labels, threshold=0.4, mode="confidence")
    target = selected_token_loss(logits, labels, threshold=0.4, mode="target")
    assert conf.selected_tokens.tolist() == [1]  # floor: min confidence is 0.7 at position 1
    assert target.selected_tokens.tolist() == [1]
    assert target.loss.item() == pytest.approx(-math.log(0.05), rel=1e-6)


def test_padding_is_never_selected_and_samples_are_weighted_equally():
    logits = torch.log(torch.tensor([[[0.3, 0.7], [0.5, 0.5]], [[0.4, 0.6], [0.5, 0.5]]]))
    labels = torch.tensor([[0, -100], [0, 1]])
    out = selected_token_loss(logits, labels, threshold=1.0)
    assert out.selected_tokens.tolist() == [1, 2]
    expected = -math.log(0.3) + (-math.log(0.4) - math.log(0.5)) / 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)


class _TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(2, 2, bias=False)
        self.down = nn.Linear(2, 2, bias=False)


def _mlp_group(width: int = 1, units: int = 2) -> PrunableGroup:
    return PrunableGroup(
        name="toy.mlp",
        component="lm_encoder",
        modality="language",
        kind="mlp",
        layer=0,
        owner="",
        producers=(Member("up", 0, width),),
        consumers=(Member("down", 1, width),),
        unit_size=width,
        num_units=units,
        params_per_unit=4 // units * 2,
    )


def test_first_order_taylor_is_mean_abs_w_times_g_per_attached_weight():
    model = _TwoLayer()
    with torch.no_grad():
        model.up.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        model.down.weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 0.5]]))
    grads = {"up": torch.tensor([[1.0, -1.0], [0.5, 0.0]]), "down": torch.tensor([[2.0, 1.0], [1.0, 4.0]])}
    scores = taylor_unit_scores(model, [_mlp_group()], grads, {}, "first")["toy.mlp"]
    # channel 0: up row 0 |1*1|+|2*-1| = 3 ; down col 0 |1*2|+|2*1| = 4 ; 4 weights -> 7/4
    # channel 1: up row 1 |3*.5|+|4*0| = 1.5 ; down col 1 |-1*1|+|.5*4| = 3 ; -> 4.5/4
    assert scores.tolist() == pytest.approx([7 / 4, 4.5 / 4])


def test_second_order_and_mix_use_the_fisher():
    model = _TwoLayer()
    with torch.no_grad():
        model.up.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        model.down.weight.fill_(1.0)
    grads = {"up": torch.ones(2, 2), "down": torch.zeros(2, 2)}
    fisher = {"up": torch.full((2, 2), 2.0), "down": torch.ones(2, 2)}
    second = taylor_unit_scores(model, [_mlp_group()], grads, fisher, "second")["toy.mlp"]
    # 0.5*w^2*F: up row0 0.5*(1+4)*2 = 5, down col0 0.5*(1+1)*1 = 1 -> 6/4
    #            up row1 0.5*(9+16)*2 = 25, down col1 1 -> 26/4
    assert second.tolist() == pytest.approx([6 / 4, 26 / 4])
    mix = taylor_unit_scores(model, [_mlp_group()], grads, fisher, "mix")["toy.mlp"]
    # first: up row0 3, row1 7 ; down 0 -> mix = (3+6)/4, (7+26)/4
    assert mix.tolist() == pytest.approx([9 / 4, 33 / 4])


def test_head_score_is_the_mean_over_its_dims():
    model = _TwoLayer()
    with torch.no_grad():
        model.up.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        model.down.weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 0.5]]))
    grads = {"up": torch.ones(2, 2), "down": torch.ones(2, 2)}
    per_dim = taylor_unit_scores(model, [_mlp_group()], grads, {}, "first")["toy.mlp"]
    head = taylor_unit_scores(model, [_mlp_group(width=2, units=1)], grads, {}, "first")["toy.mlp"]
    assert head.item() == pytest.approx(per_dim.mean().item())


def test_streamed_entropy_equals_entropy_of_stored_cosines():
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(5, 12, generator=gen)
    tokens = torch.randn(4, 30, 12, generator=gen)
    hist = RowAngleHistogram(weight)
    for chunk in tokens:  # streamed in four pieces
        hist.update(chunk, weight)
    x = tokens.reshape(-1, 12)
    cos = (x / x.norm(dim=-1, keepdim=True)) @ (weight / weight.norm(dim=-1, keepdim=True)).T
    stored = [entropy_of_values(cos[:, i].clamp(-1, 1)) for i in range(5)]
    assert hist.entropy().tolist() == pytest.approx(stored, abs=1e-6)


def test_entropy_of_a_uniform_spread_is_log_bins():
    weight = torch.tensor([[1.0, 0.0]])
    angles = torch.linspace(0, math.pi, 1001)[:-1] + math.pi / 2000  # cosines cover [-1, 1]
    tokens = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    hist = RowAngleHistogram(weight, bins=4, mode="arccos")  # equal angle bins -> uniform
    hist.update(tokens, weight)
    assert hist.entropy().item() == pytest.approx(math.log(4), abs=1e-6)


def test_group_entropy_is_mean_over_producer_rows():
    group = PrunableGroup(
        name="toy.attn",
        component="lm_encoder",
        modality="language",
        kind="attention",
        layer=0,
        owner="",
        producers=(Member("q", 0, 2), Member("k", 0, 2)),
        consumers=(Member("o", 1, 2),),
        unit_size=2,
        num_units=2,
        params_per_unit=1,
    )
    rows = {"q": torch.tensor([1.0, 2.0, 3.0, 4.0]), "k": torch.tensor([5.0, 6.0, 7.0, 8.0])}
    scores = entropy_unit_scores([group], rows)["toy.attn"]
    assert scores.tolist() == pytest.approx([(1 + 2 + 5 + 6) / 4, (3 + 4 + 7 + 8) / 4])
