"""Every baseline scorer on a case small enough to compute by hand (two Linears, four channels)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ukmp.groups import Member, PrunableGroup
from ukmp.methods.activation_stats import record_input_stats
from ukmp.methods.ecoflap_sp import block_scores, zeroth_order_gradients
from ukmp.methods.end_layers import end_layer_groups
from ukmp.methods.flap import standardise_by_kind, wifv_scores
from ukmp.methods.llm_pruner import llm_pruner_scores
from ukmp.methods.upop import mask_gradients, upop_scores
from ukmp.methods.wanda_sp import wanda_sp_scores
from ukmp.planning.allocated import allocate_sparsity, allocated_schedule
from ukmp.planning.global_schedule import GroupCost

W_DOWN = [[1.0, -2.0, 0.0, 1.0], [3.0, 0.0, -1.0, 2.0]]
X = [[1.0, 0.0, 2.0, 0.0], [1.0, 1.0, 0.0, 2.0]]  # two tokens entering `down`


class Toy(nn.Module):
    """up: 2 -> 4 (producer rows), down: 4 -> 2 (consumer columns)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(2, 4, bias=False)
        self.down = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0], [2.0, 1.0], [-1.0, 1.0]]))
            self.down.weight.copy_(torch.tensor(W_DOWN))


def group(width: int = 1, kind: str = "mlp", layer: int = 0, component: str = "lm_encoder") -> PrunableGroup:
    return PrunableGroup(
        name=f"{component}.layers.{layer}.{kind}",
        component=component,
        modality="language",
        kind=kind,
        layer=layer,
        owner="",
        producers=(Member("up", 0, width),),
        consumers=(Member("down", 1, width),),
        unit_size=width,
        num_units=4 // width,
        params_per_unit=4 * width,
    )


def toy_stats(model: Toy) -> dict:
    with record_input_stats(model, ["down"]) as stats:
        model.down(torch.tensor(X))
    return stats


def test_activation_stats_are_mean_variance_and_l2_over_tokens():
    s = toy_stats(Toy())["down"]
    assert s.count == 2
    assert s.mean.tolist() == [1.0, 0.5, 1.0, 1.0]
    assert s.var.tolist() == [0.0, 0.25, 1.0, 1.0]
    assert s.l2.tolist() == pytest.approx([math.sqrt(2), 1.0, 2.0, 2.0])


def test_wanda_sp_is_column_magnitude_times_input_norm():
    model = Toy()
    stats = toy_stats(model)
    channels = wanda_sp_scores(model, [group(1)], stats)["lm_encoder.layers.0.mlp"]
    # col 0: (|1|+|3|)*sqrt2, col 1: (2+0)*1, col 2: (0+1)*2, col 3: (1+2)*2
    assert channels.tolist() == pytest.approx([4 * math.sqrt(2), 2.0, 2.0, 6.0])
    heads = wanda_sp_scores(model, [group(2, "attention")], stats)["lm_encoder.layers.0.attention"]
    assert heads.tolist() == pytest.approx([4 * math.sqrt(2) + 2.0, 8.0])


def test_flap_wifv_is_variance_times_squared_column_norm_then_standardised_per_kind():
    model = Toy()
    raw = wifv_scores(model, [group(1)], toy_stats(model))["lm_encoder.layers.0.mlp"]
    # var [0, .25, 1, 1] x ||W[:, j]||^2 [10, 4, 1, 5]
    assert raw.tolist() == pytest.approx([0.0, 1.0, 1.0, 5.0])
    attn = torch.tensor([2.0, 4.0], dtype=torch.float64)
    groups = [group(1), group(2, "attention")]
    z = standardise_by_kind({groups[0].name: raw, groups[1].name: attn}, groups)
    mean, std = 1.75, math.sqrt(((1.75) ** 2 + 0.75**2 * 2 + 3.25**2) / 4)
    assert z[groups[0].name].tolist() == pytest.approx([(v - mean) / std for v in [0, 1, 1, 5]])
    assert z[groups[1].name].tolist() == pytest.approx([-1.0, 1.0])  # attention pooled on its own


def _grads() -> dict[str, torch.Tensor]:
    return {
        "up": torch.tensor([[1.0, 2.0], [0.5, 0.0], [-1.0, 1.0], [0.0, 3.0]]),
        "down": torch.tensor([[0.5, 1.0, 2.0, -1.0], [1.0, -1.0, 0.0, 0.5]]),
    }


def test_llm_pruner_first_order_sums_abs_w_times_g_over_rows_and_columns():
    model, grads = Toy(), _grads()
    first = llm_pruner_scores(model, [group(1)], grads, {}, "first")["lm_encoder.layers.0.mlp"]
    # unit 0: up row |1*1|+|0*2| = 1, down col |1*.5|+|3*1| = 3.5 -> 4.5
    # unit 1: up row 0 + |-1*0| = 0, down col |-2*1| + 0 = 2 -> 2
    # unit 2: |2*-1|+|1*1| = 3, down |0|+|-1*0| = 0 -> 3
    # unit 3: |-1*0|+|1*3| = 3, down |1*-1|+|2*.5| = 2 -> 5
    assert first.tolist() == pytest.approx([4.5, 2.0, 3.0, 5.0])


def test_llm_pruner_second_order_and_mix_use_the_fisher_without_normalising():
    model, grads = Toy(), _grads()
    fisher = {"up": torch.ones(4, 2), "down": torch.full((2, 4), 2.0)}
    second = llm_pruner_scores(model, [group(1)], grads, fisher, "second")["lm_encoder.layers.0.mlp"]
    # 0.5 * w^2 * F: unit 0: up .5*(1+0) + down .5*2*(1+9) = 0.5 + 10 = 10.5
    assert second[0].item() == pytest.approx(10.5)
    mix = llm_pruner_scores(model, [group(1)], grads, fisher, "mix")["lm_encoder.layers.0.mlp"]
    first = llm_pruner_scores(model, [group(1)], grads, fisher, "first")["lm_encoder.layers.0.mlp"]
    assert mix.tolist() == pytest.approx((first + second).tolist())


def test_llm_pruner_skips_its_layer_fractions_scaled_to_depth():
    deep = [group(1, layer=i) for i in range(32)]
    skipped = {int(n.split(".")[2]) for n in end_layer_groups(deep)}
    assert skipped == {0, 1, 2, 3, 30, 31}  # LLaMA-7B: layers 4..29 pruned
    assert end_layer_groups([group(1, layer=i) for i in range(4)]) == []
    assert end_layer_groups(deep, "none") == []


def test_upop_mask_gradient_equals_autograd_on_an_explicit_mask():
    model = Toy()
    x = torch.tensor([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.3]])
    target = torch.tensor([[0.2, -0.1], [1.0, 0.0], [0.0, 0.5]])
    mask = torch.ones(4, requires_grad=True)
    loss = ((model.down(model.up(x) * mask) - target) ** 2).sum()
    loss.backward()
    model.zero_grad()
    ((model.down(model.up(x)) - target) ** 2).sum().backward()
    grads = {"up": model.up.weight.grad.clone(), "down": model.down.weight.grad.clone()}
    got = mask_gradients(model, [group(1)], grads)["lm_encoder.layers.0.mlp"]
    assert got.tolist() == pytest.approx(mask.grad.tolist(), rel=1e-5)
    z = upop_scores(model, [group(1)], grads)["lm_encoder.layers.0.mlp"]
    a = mask.grad.abs().double()
    assert z.tolist() == pytest.approx(((a - a.mean()) / a.std(unbiased=False)).tolist(), rel=1e-5)


class _LinearLoss(nn.Module):
    """A model whose 'loss' is <c, W_up> + <d, W_down>: its gradient is known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Toy()
        self.c = torch.arange(8.0).reshape(4, 2) - 3
        self.d = torch.ones(2, 4)

    def forward(self, **_batch):
        loss = (self.inner.up.weight * self.c).sum() + (self.inner.down.weight * self.d).sum()
        return SimpleNamespace(logits=loss)


def test_zeroth_order_estimate_points_along_the_gradient_and_restores_weights():
    model = _LinearLoss()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = PrunableGroup(**{**group(1).__dict__, "producers": (Member("inner.up", 0, 1),),
                         "consumers": (Member("inner.down", 1, 1),)})  # fmt: skip
    batches = [{"labels": None}] * 600
    est, stats = zeroth_order_gradients(
        model, [g], batches, lambda _m, logits, _l: logits, epsilon=1e-3, seed=0, progress=False
    )
    assert stats["forward_passes"] == 1200
    flat = torch.cat([est["inner.up"].reshape(-1), est["inner.down"].reshape(-1)]) / 600
    truth = torch.cat([model.c.reshape(-1), model.d.reshape(-1)])
    assert torch.nn.functional.cosine_similarity(flat, truth, dim=0) > 0.9
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])  # bit-identical after the perturbations
    blocks = block_scores(model, [g], {"inner.up": model.c, "inner.down": model.d})
    expected = (model.inner.up.weight * model.c).abs().sum() + (model.inner.down.weight * model.d).abs().sum()
    assert blocks[g.name] == pytest.approx(float(expected.detach()))


def test_ecoflap_allocation_shares_kept_parameters_in_proportion_to_block_scores():
    # two groups of 100 parameters, keep 100 in all, cap 0.9: each keeps 10, the other 80 go 3:1
    sparsity = allocate_sparsity({"a": 3.0, "b": 1.0}, {"a": 100, "b": 100}, 100, 0.9)
    assert sparsity == pytest.approx({"a": 0.3, "b": 0.7})
    # floors 50 + 50; 90 more go 81:9, but a overflows at 100, so the 31 left over go to b
    sparsity = allocate_sparsity({"a": 9.0, "b": 1.0}, {"a": 100, "b": 100}, 190, 0.5)
    assert sparsity == pytest.approx({"a": 0.0, "b": 0.1})


def test_allocated_schedule_reaches_the_target_and_removes_the_lowest_units_per_group():
    scores = {"a": torch.tensor([4.0, 1.0, 3.0, 2.0] * 5), "b": torch.arange(10.0)}
    costs = {"a": GroupCost(10, 10), "b": GroupCost(10, 10)}
    result = allocated_schedule(scores, costs, {"a": 9.0, "b": 1.0}, target_ratio=0.3, basis_params=200)
    assert 60 <= result.removed_params <= 70
    removed = result.removed_units
    assert len(removed["b"]) > len(removed.get("a", []))  # the weaker block loses more
    assert removed["b"] == list(range(len(removed["b"])))  # lowest Wanda-sp scores first
