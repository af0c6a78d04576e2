"""scripts/allocation_swap.py: a crossed plan keeps the other plan's counts, chosen by this ranking."""

from __future__ import annotations

import torch

from script_loader import load_script
from ukmp.groups import PruningPlan


def _script():
    return load_script("allocation_swap")


def test_crossed_plan_by_hand() -> None:
    allocation = PruningPlan(kept={"a": [0, 1], "b": [3]}, num_units={"a": 4, "b": 5})
    ranking = {"a": torch.tensor([0.1, 0.9, 0.5, 0.7]), "b": torch.tensor([2.0, 1.0, 3.0, 0.0, 2.5])}
    plan = _script().crossed_plan(ranking, allocation)
    assert plan.kept == {"a": [1, 3], "b": [2]}  # a: the two best (0.9, 0.7); b: the best one (3.0)
    assert plan.num_units == {"a": 4, "b": 5}
