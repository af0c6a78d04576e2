"""UKMP's iterative, modality-normalised schedule, step by step on synthetic scores."""

from __future__ import annotations

import pytest
import torch

from ukmp.errors import UserError
from ukmp.planning.global_schedule import GroupCost
from ukmp.planning.iterative import IterativeOptions, iterative_schedule, local_schedule

COSTS = {"v": GroupCost(4, 10), "l": GroupCost(4, 10)}
MODALITY = {"v": "vision", "l": "language"}


def _opts(**kw) -> IterativeOptions:
    base = dict(step_fraction=1 / 8, fine_step_fraction=1 / 8, layer_floor=0.0)
    base.update(kw)
    return IterativeOptions(**base)


def test_mean_normalisation_balances_modalities():
    # vision scores are 100x larger; without normalisation every language unit would go first
    scores = {"v": torch.tensor([100.0, 200.0, 300.0, 400.0]), "l": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    res = iterative_schedule(scores, COSTS, MODALITY, target_ratio=0.25, basis_params=80, options=_opts())
    # step 0: both means give normalised [0.4, 0.8, 1.2, 1.6] -> k=1 ties remove unit 0 of both groups
    assert res.steps[0]["threshold"] == pytest.approx(0.4)
    assert res.plan.kept == {"v": [1, 2, 3], "l": [1, 2, 3]}
    raw = iterative_schedule(scores, COSTS, MODALITY, target_ratio=0.25, basis_params=80, options=_opts(norm="none"))
    assert raw.plan.kept["v"] == [0, 1, 2, 3] and raw.plan.kept["l"] == [2, 3]


def test_kind_scope_normalises_attention_and_mlp_apart():
    # one modality: an attention group (2 units of 10 params) and an MLP group (4 units of 1 param)
    costs = {"attn": GroupCost(2, 10), "mlp": GroupCost(4, 1)}
    scores = {"attn": torch.tensor([1.0, 3.0]), "mlp": torch.tensor([10.0, 20.0, 30.0, 40.0])}
    modality = {"attn": "language", "mlp": "language"}
    kind = {"attn": "attention", "mlp": "mlp"}
    opts = _opts(step_fraction=1 / 6, fine_step_fraction=1 / 6)
    pooled = iterative_schedule(scores, costs, modality, target_ratio=0.01, basis_params=100, options=opts, kind=kind)
    # one mean over all six units (104/6): attention unit 0 (1/17.3) is the lowest, and its 10 params reach the budget
    assert pooled.steps[0]["normalisers"]["language"][1] == pytest.approx(104 / 6)
    assert pooled.removed_units == {"attn": [0]}
    opts.scope = "kind"
    apart = iterative_schedule(scores, costs, modality, target_ratio=0.01, basis_params=100, options=opts, kind=kind)
    # attention / 2 = [0.5, 1.5], MLP / 25 = [0.4, 0.8, 1.2, 1.6]: MLP channel 0 goes first
    assert apart.steps[0]["normalisers"] == {"language/attention": [0.0, 2.0], "language/mlp": [0.0, 25.0]}
    assert apart.removed_units == {"mlp": [0]}
    with pytest.raises(ValueError, match="kind"):
        iterative_schedule(scores, costs, modality, target_ratio=0.01, basis_params=100, options=_opts(scope="kind"))
    with pytest.raises(UserError, match="--norm-scope"):
        IterativeOptions(scope="layer").validate()


def test_iterative_renormalisation_recomputes_means_over_survivors():
    scores = {"v": torch.tensor([1.0, 2.0, 3.0, 10.0]), "l": torch.tensor([2.0, 2.1, 2.2, 2.3])}
    res = iterative_schedule(scores, COSTS, MODALITY, target_ratio=0.5, basis_params=80, options=_opts())
    first, second = res.steps[0]["normalisers"], res.steps[1]["normalisers"]
    assert first["vision"][1] == pytest.approx(4.0)  # mean of 1,2,3,10
    # after the first step removed vision unit 0 (1/4 = 0.25 is the smallest), the mean is 5
    assert res.plan.kept["v"][0] != 0
    assert second["vision"][1] == pytest.approx(5.0)
    once = iterative_schedule(
        scores, COSTS, MODALITY, target_ratio=0.5, basis_params=80, options=_opts(iterative=False)
    )
    assert once.steps[1]["normalisers"]["vision"][1] == pytest.approx(4.0)


def test_never_short_of_target_and_stops_at_first_step_reaching_it():
    gen = torch.Generator().manual_seed(0)
    scores = {"v": torch.rand(4, generator=gen), "l": torch.rand(4, generator=gen)}
    res = iterative_schedule(scores, COSTS, MODALITY, target_ratio=0.3, basis_params=80, options=_opts())
    assert res.removed_params >= 24
    assert res.steps[-2]["removed_params"] < 24 if len(res.steps) > 1 else True


def test_layer_floor_stops_taking_from_a_thin_group_and_last_unit_is_kept():
    costs = {"v": GroupCost(10, 1), "l": GroupCost(10, 1)}
    scores = {"v": torch.arange(10.0) / 100, "l": torch.arange(10.0) + 1}
    opts = IterativeOptions(step_fraction=1 / 20, fine_step_fraction=1 / 20, layer_floor=0.5, norm="none")
    res = iterative_schedule(scores, costs, MODALITY, target_ratio=0.5, basis_params=20, options=opts)
    # "v" takes part while it keeps >= 5 units, so it ends with 4 (the step that crossed), then "l" pays
    assert len(res.plan.kept["v"]) == 4
    assert len(res.plan.kept["l"]) == 6
    with pytest.raises(UserError):
        iterative_schedule(
            scores,
            costs,
            MODALITY,
            target_ratio=0.99,
            basis_params=20,
            options=IterativeOptions(layer_floor=0.0),
        )


def test_same_inputs_same_plan():
    gen = torch.Generator().manual_seed(3)
    scores = {"v": torch.rand(4, generator=gen), "l": torch.rand(4, generator=gen)}
    a = iterative_schedule(scores, COSTS, MODALITY, target_ratio=0.4, basis_params=80, options=_opts())
    b = iterative_schedule(scores, COSTS, MODALITY, target_ratio=0.4, basis_params=80, options=_opts())
    assert a.plan.kept == b.plan.kept


def test_minmax_and_standardize_are_per_modality():
    scores = {"v": torch.tensor([10.0, 20.0, 30.0, 40.0]), "l": torch.tensor([1.0, 1.5, 3.0, 4.0])}
    res = iterative_schedule(scores, COSTS, MODALITY, target_ratio=0.1, basis_params=80, options=_opts(norm="minmax"))
    assert res.steps[0]["normalisers"]["vision"] == [10.0, 30.0]
    assert res.steps[0]["normalisers"]["language"] == [1.0, 3.0]
    std = iterative_schedule(
        scores, COSTS, MODALITY, target_ratio=0.1, basis_params=80, options=_opts(norm="standardize")
    )
    assert std.steps[0]["normalisers"]["vision"][0] == pytest.approx(25.0)


def test_local_schedule_takes_the_same_fraction_everywhere():
    costs = {"a": GroupCost(10, 1), "b": GroupCost(20, 1)}
    scores = {"a": torch.arange(10.0), "b": -torch.arange(20.0)}
    res = local_schedule(scores, costs, target_ratio=0.3, basis_params=30)
    assert res.plan.kept["a"] == list(range(3, 10))
    assert res.plan.kept["b"] == list(range(0, 14))
    assert res.removed_params == 9
