"""The global planner: pure tensors in, a plan that reaches the target (never below it) out."""

from __future__ import annotations

import pytest
import torch

from ukmp.errors import UserError
from ukmp.planning.global_schedule import GroupCost, global_schedule, rank_units


def _random_problem(seed: int):
    gen = torch.Generator().manual_seed(seed)
    costs, scores = {}, {}
    for i in range(6):
        heads = i % 2 == 0
        units = 8 if heads else 64
        costs[f"g{i}"] = GroupCost(units, 400 if heads else 13)
        scores[f"g{i}"] = torch.rand(units, generator=gen)
    return scores, costs


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ratio", [0.2, 0.5])
def test_reaches_target_never_below_and_within_one_percent(seed, ratio):
    scores, costs = _random_problem(seed)
    basis = sum(c.num_units * c.params_per_unit for c in costs.values()) + 5000  # + non-prunable params
    result = global_schedule(scores, costs, target_ratio=ratio, basis_params=basis)
    assert ratio <= result.achieved_ratio <= ratio + 0.01
    removed = sum((costs[n].num_units - len(k)) * costs[n].params_per_unit for n, k in result.plan.kept.items())
    assert removed == result.removed_params
    assert all(len(k) >= 1 for k in result.plan.kept.values())


def test_lowest_scores_go_first():
    costs = {"a": GroupCost(4, 10), "b": GroupCost(4, 10)}
    scores = {"a": torch.tensor([0.9, 0.1, 0.8, 0.2]), "b": torch.tensor([0.3, 0.7, 0.6, 0.05])}
    result = global_schedule(scores, costs, target_ratio=0.5, basis_params=80)
    assert result.plan.kept == {"a": [0, 2], "b": [1, 2]}
    assert rank_units(scores)[:2] == [("b", 3), ("a", 1)]


def test_never_removes_the_last_unit_of_a_group():
    costs = {"a": GroupCost(4, 10), "b": GroupCost(4, 10)}
    scores = {"a": torch.zeros(4), "b": torch.ones(4)}
    result = global_schedule(scores, costs, target_ratio=0.5, basis_params=80)
    assert result.plan.kept["a"] == [3] and len(result.plan.kept["b"]) == 3


def test_a_big_unit_at_the_boundary_is_skipped_for_cheaper_ones():
    costs = {"heads": GroupCost(4, 1000), "channels": GroupCost(100, 10)}
    scores = {"heads": torch.tensor([0.0, 0.5, 0.9, 0.9]), "channels": torch.linspace(0.1, 1, 100)}
    # target 1500 of 5000: head 0 (1000) then channels; head 1 would overshoot 1500 by far
    result = global_schedule(scores, costs, target_ratio=0.3, basis_params=5000)
    assert 0.3 <= result.achieved_ratio <= 0.305
    assert result.plan.kept["heads"] == [1, 2, 3]


def test_deterministic_and_bad_ratios_are_user_errors():
    scores, costs = _random_problem(0)
    basis = sum(c.num_units * c.params_per_unit for c in costs.values())
    first = global_schedule(scores, costs, target_ratio=0.3, basis_params=basis)
    assert global_schedule(scores, costs, target_ratio=0.3, basis_params=basis).plan.kept == first.plan.kept
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(UserError, match="between 0 and 1"):
            global_schedule(scores, costs, target_ratio=bad, basis_params=basis)
    with pytest.raises(UserError, match="cannot be reached"):
        global_schedule(scores, costs, target_ratio=0.9, basis_params=basis * 10)
