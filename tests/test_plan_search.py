"""Plan search: masked candidates compute what sliced ones do; the search keeps the lowest-loss plan."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from eval_tiny_model import tiny_model_dir
from test_surgery_equivalence import heterogeneous_plan
from tiny_models import blip2_inputs, tiny_blip2
from ukmp.adapters import find_adapter
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.planning.schedules import plan_from_scores
from ukmp.planning.search import PlanSearchOptions, consumer_inputs_masked, perturbed_scores, search_plan
from ukmp.removal_cost import mean_target_nll
from ukmp.scoring.magnitude import magnitude_scores
from ukmp.surgery import apply_plan_physically


@pytest.mark.parametrize("lm", ["t5", "opt", "llama"])
def test_masked_consumer_inputs_compute_what_the_sliced_model_computes(lm):
    model = tiny_blip2(lm, seed=2)
    groups = find_adapter(model).all_groups(model)
    plan = heterogeneous_plan(model, 2)
    inputs = blip2_inputs(lm, seed=2)
    with torch.no_grad():
        dense = model(**inputs).logits
        with consumer_inputs_masked(model, groups, plan):
            masked = model(**inputs).logits
        after = model(**inputs).logits
        sliced = apply_plan_physically(copy.deepcopy(model), plan)(**inputs).logits
    assert not torch.allclose(dense, masked, atol=1e-3)
    torch.testing.assert_close(masked, sliced, atol=1e-5, rtol=0)
    torch.testing.assert_close(after, dense, atol=0, rtol=0)  # the hooks are gone


def test_perturbation_multiplies_each_score_by_a_seeded_log_normal_factor():
    scores = {"b": torch.tensor([1.0, -2.0]), "a": torch.tensor([4.0])}
    out = perturbed_scores(scores, 0.5, torch.Generator().manual_seed(3))
    noise = torch.randn(3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    # groups in sorted order: a draws first, then b
    torch.testing.assert_close(out["a"].double(), torch.tensor([4.0], dtype=torch.float64) * torch.exp(0.5 * noise[:1]))
    torch.testing.assert_close(
        out["b"].double(), torch.tensor([1.0, -2.0], dtype=torch.float64) * torch.exp(0.5 * noise[1:])
    )
    assert out["b"][1] < 0  # signs never change


def _setup():
    model = tiny_blip2("t5", seed=4).eval()
    groups = find_adapter(model).groups(model)
    scores = magnitude_scores(model, groups, seed=0)
    basis = sum(p.numel() for p in model.parameters())

    def make_plan(s):
        return plan_from_scores(s, groups, schedule="global", target_ratio=0.3, basis_params=basis)

    batches = []
    for seed in (5, 6):
        batch = blip2_inputs("t5", seed=seed)
        batch["labels"] = batch.pop("decoder_input_ids")
        batches.append(batch)
    return model, groups, scores, make_plan, batches


def test_one_candidate_is_the_methods_own_plan_and_the_search_keeps_the_lowest_loss():
    model, groups, scores, make_plan, batches = _setup()
    plain, trace = search_plan(model, groups, scores, make_plan, batches, PlanSearchOptions(candidates=1), seed=0)
    assert plain.plan.kept == make_plan(scores).plan.kept and trace["chosen"] == 0

    options = PlanSearchOptions(candidates=6, spread=1.0)
    chosen, trace = search_plan(model, groups, scores, make_plan, batches, options, seed=3, progress=False)
    dense_copy = copy.deepcopy(model)
    assert trace["losses"][0] == pytest.approx(
        mean_target_nll(apply_plan_physically(dense_copy, plain.plan), batches), abs=1e-5
    )
    # on this seed a perturbed plan answers better than the scores' own one, and the search keeps it
    assert trace["chosen"] != 0 and trace["losses"][trace["chosen"]] == min(trace["losses"])
    assert chosen.plan.kept != plain.plan.kept
    sliced = apply_plan_physically(copy.deepcopy(model), chosen.plan)
    assert mean_target_nll(sliced, batches) == pytest.approx(min(trace["losses"]), abs=1e-5)


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 8, tmp_path_factory.mktemp("calib"))


def test_prune_records_the_search_in_the_manifest(calib: Path, tmp_path: Path) -> None:
    out = tmp_path / "pruned"
    argv = ["prune", str(tiny_model_dir()), "--method", "magnitude", "--ratio", "0.3", "--out", str(out)]
    assert main([*argv, "--calib", str(calib), "--plan-search", "3", "--plan-search-samples", "5"]) == 0
    search = json.loads((out / "pruning.json").read_text())["method"]["options"]["plan_search"]
    assert search["candidates"] == 3 and len(search["losses"]) == 3 and search["samples"] == 5
    assert search["losses"][search["chosen"]] == min(search["losses"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--plan-search", "0"], "at least 1"), (["--plan-search", "3"], "pass --calib"),
     (["--plan-search", "2", "--plan-search-spread", "0"], "positive number")],
)  # fmt: skip
def test_plan_search_mistakes_are_one_sentence(tmp_path: Path, capsys, extra, message) -> None:
    argv = ["prune", str(tiny_model_dir()), "--method", "magnitude", "--ratio", "0.3", "--out", str(tmp_path / "o")]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
