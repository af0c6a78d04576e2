"""The scorer registry and the one prune path: methods are found by name, and every caller prunes alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from eval_tiny_model import tiny_model_dir
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.errors import UserError
from ukmp.groups import PruningPlan
from ukmp.method_scores import MethodScores
from ukmp.methods.base import Scorer, ScoringInputs
from ukmp.methods.magnitude import magnitude_scores
from ukmp.methods.registry import compared_by_default, get_scorer, is_proposed, register_scorer, scorer_names
from ukmp.methods.token_selection import PAPER_THRESHOLD
from ukmp.planning.schedules import SCHEDULES, plan_from_scores
from ukmp.pruning import PruneConfig, load_dense, prune


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 8, tmp_path_factory.mktemp("calib"))


def test_every_registered_method_names_a_schedule_and_the_paper_method_is_first() -> None:
    names = scorer_names()
    assert names[0] == "ukmp" and len(set(names)) == len(names)
    for name in names:
        scorer = get_scorer(name)
        assert scorer.name == name and scorer.schedule in SCHEDULES
    assert [n for n in names if is_proposed(n)] == ["ukmp"] and is_proposed("ukmp:1.0")


def test_the_default_comparison_is_the_built_in_methods_that_opt_in_in_registration_order() -> None:
    from ukmp.compare.config import DEFAULT_METHODS

    builtin = ("ukmp", "llm-pruner-global", "llm-pruner-local", "flap", "wanda-sp", "ecoflap-sp", "upop")
    assert DEFAULT_METHODS == (*builtin, "magnitude", "random") == compared_by_default()
    assert DEFAULT_METHODS == tuple(n for n in scorer_names() if get_scorer(n).compared_by_default)


def test_variants_configure_the_scorer_and_bad_names_are_one_sentence() -> None:
    assert get_scorer("ukmp:1.0").options.ukmi.threshold == 1.0
    assert get_scorer("ukmp:paper").options.ukmi.threshold == PAPER_THRESHOLD
    assert get_scorer("ukmp:q0.34").label == "ukmp:q0.34"
    assert get_scorer("ukmp").options.ukmi.threshold != PAPER_THRESHOLD  # a variant does not leak into defaults
    no_entropy = get_scorer("ukmp:no-entropy")
    assert no_entropy.options.ukmi.entropy == "off" and no_entropy.label == "ukmp:no-entropy"
    assert no_entropy.options.ukmi.threshold == get_scorer("ukmp").options.ukmi.threshold
    assert get_scorer("ukmp").options.ukmi.entropy != "off"
    with pytest.raises(UserError, match="unknown method 'obs'"):
        get_scorer("obs")
    with pytest.raises(UserError, match="flap takes no variant"):
        get_scorer("flap:0.3")
    with pytest.raises(UserError, match=r"must be in \(0, 1\]"):
        get_scorer("ukmp:q2")
    with pytest.raises(UserError, match="a preset .* or no-entropy"):
        get_scorer("ukmp:entropy-off")


class _InverseMagnitude(Scorer):
    """A method defined outside the package in a few lines: it removes the *largest* units first."""

    name = "inverse-magnitude-test"
    calibrated = False

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        scores = magnitude_scores(inputs.model, inputs.groups)
        return MethodScores(self.name, {k: -v for k, v in scores.items()})


def test_a_new_scorer_is_one_class_and_prunes_through_the_same_path(tmp_path: Path) -> None:
    register_scorer(_InverseMagnitude)
    register_scorer(_InverseMagnitude)  # registering the same class twice is harmless
    with pytest.raises(ValueError, match="already registered"):
        register_scorer(type("Clash", (_InverseMagnitude,), {}))
    config = PruneConfig(str(tiny_model_dir()), tmp_path / "inv", "inverse-magnitude-test", 0.3)
    prune(config, verbose=False)
    manifest = json.loads((tmp_path / "inv" / "pruning.json").read_text())
    assert manifest["method"]["name"] == "inverse-magnitude-test"
    dense = load_dense(config)
    scores = {k: -v for k, v in magnitude_scores(dense.model, dense.groups).items()}
    expected = plan_from_scores(scores, dense.groups, schedule="global", target_ratio=0.3, basis_params=dense.basis)
    assert PruningPlan.from_dict(manifest["groups"]).kept == expected.plan.kept


@pytest.mark.parametrize("method", ["flap", "ukmp:1.0"])
def test_compare_and_prune_make_the_same_model_from_the_same_draw(method: str, calib: Path, tmp_path: Path) -> None:
    """One prune path: the artifact `ukmp compare` writes equals the one `ukmp prune` writes."""
    model = str(tiny_model_dir())
    common = ["--calib", str(calib), "--num-samples", "3", "--seed", "1"]
    argv = [
        "compare",
        model,
        "--methods",
        method,
        "--ratios",
        "0.3",
        "--eval",
        str(calib),
        "--tasks",
        "vqa",
        "--eval-split",
        "train",
    ]
    assert main([*argv, "--limit", "2", "--out", str(tmp_path / "cmp"), "--no-progress", *common]) == 0
    base, _, variant = method.partition(":")
    extra = ["--threshold", variant] if variant else []
    argv = ["prune", model, "--method", base, "--ratio", "0.3", "--calib-split", "train", *extra]
    assert main([*argv, "--out", str(tmp_path / "prune"), *common]) == 0
    compared = load_file(str(tmp_path / "cmp" / "artifacts" / f"{method.replace(':', '-')}-30" / "model.safetensors"))
    pruned = load_file(str(tmp_path / "prune" / "model.safetensors"))
    assert compared.keys() == pruned.keys()
    for key, value in pruned.items():
        assert torch.equal(compared[key], value), key
