"""Removal cost (ground truth for importance) on a tiny model: zeroing equals removing, and restores."""

from __future__ import annotations

import copy

import pytest
import torch

from eval_tiny_model import tiny_model_dir
from ukmp.adapters import find_adapter
from ukmp.data.calibration import calibration_batches, load_calibration_samples
from ukmp.data.world_writer import write_split
from ukmp.evaluation.model_loading import load_model_and_processor
from ukmp.groups import PruningPlan
from ukmp.removal_cost import Probe, mean_target_nll, probe_score, rank_agreement, removal_costs, sample_probes
from ukmp.surgery import apply_plan_physically


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data = write_split("train", 6, tmp_path_factory.mktemp("calib"))
    model, processor, _ = load_model_and_processor(str(tiny_model_dir()), device="cpu")
    model = model.float().eval()
    samples = load_calibration_samples(data, "train", seed=0)
    batches = list(calibration_batches(processor, samples, 3, encoder_decoder=True))
    groups = find_adapter(model).groups(model)
    return model, groups, batches


def test_removal_cost_is_the_loss_of_the_physically_pruned_model(setup):
    model, groups, batches = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head = next(g for g in groups if g.kind == "attention" and g.modality == "language")
    mlp = next(g for g in groups if g.kind == "mlp" and g.modality == "vision")
    probes = [Probe(head.name, (1,)), Probe(mlp.name, (0, 5, 7))]
    dense, costs = removal_costs(model, groups, probes, {"captions": batches}, progress=False)
    assert dense["captions"] == pytest.approx(mean_target_nll(model, batches))
    for probe, cost in zip(probes, costs):
        group = next(g for g in groups if g.name == probe.group)
        plan = PruningPlan.full(groups)
        plan.keep(group, [u for u in range(group.num_units) if u not in probe.units])
        pruned = apply_plan_physically(copy.deepcopy(model), plan)
        expected = mean_target_nll(pruned, batches) - dense["captions"]
        assert cost["captions"] == pytest.approx(expected, abs=1e-5)
        assert cost["captions"] != 0.0
    for key, value in model.state_dict().items():  # every zeroed slice was restored exactly
        assert torch.equal(value, before[key]), key


def test_probe_sampling_scores_and_rank_agreement(setup):
    _, groups, _ = setup
    probes = sample_probes(groups, singles=4, blocks=2, block_fraction=0.25, seed=3)
    assert probes == sample_probes(groups, singles=4, blocks=2, block_fraction=0.25, seed=3)
    for group in groups:
        mine = [p for p in probes if p.group == group.name]
        singles = [p for p in mine if not p.is_block]
        if group.num_units <= 4:
            assert [p.units for p in singles] == [(u,) for u in range(group.num_units)] and len(mine) == len(singles)
        else:
            assert len(singles) == 4 and len(mine) == 6
            assert all(len(p.units) == round(group.num_units * 0.25) for p in mine if p.is_block)
    scores = {"g": torch.tensor([1.0, 2.0, 4.0])}
    assert probe_score(scores, Probe("g", (0, 2))) == 5.0
    assert rank_agreement([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_agreement([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rank_agreement([1, 1, 1], [1, 2, 3]) != rank_agreement([1, 1, 1], [1, 2, 3])  # nan: constant side
