"""`ukmp prune --method ukmp` end to end on a tiny saved model with world calibration data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ukmp
from eval_tiny_model import tiny_model_dir
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.method_scores import MethodScores
from ukmp.methods.token_selection import DEFAULT_THRESHOLD, PAPER_THRESHOLD


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 8, tmp_path_factory.mktemp("calib"))


def _prune(out: Path, calib: Path, *extra: str) -> int:
    argv = ["prune", str(tiny_model_dir()), "--method", "ukmp", "--ratio", "0.3", "--calib", str(calib)]
    return main([*argv, "--num-samples", "3", "--batch-size", "2", "--out", str(out), *extra])


def test_ukmp_prune_writes_artifact_scores_and_manifest(calib: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pruned"
    assert _prune(out, calib) == 0
    manifest = json.loads((out / "pruning.json").read_text())
    assert manifest["method"]["name"] == "ukmp"
    assert manifest["method"]["options"]["ukmi"]["threshold"] == DEFAULT_THRESHOLD
    assert manifest["achieved_ratio"] >= 0.3
    stats = manifest["extra"]["scoring"]
    assert stats["gradient_pass"]["samples"] == 3 and stats["entropy_pass"]["samples"] == 3
    assert stats["gradient_pass"]["peak_memory_mb"] > 0
    scores = MethodScores.load(out / "scores.safetensors")
    assert set(scores.factors) == {"taylor", "entropy"}
    model = ukmp.load_pruned(out)
    assert sum(p.numel() for p in model.parameters()) == manifest["parameters"]["after"]["total"]

    # the same seed and data give the same plan, bit for bit
    again = tmp_path / "again"
    assert _prune(again, calib) == 0
    assert json.loads((again / "pruning.json").read_text())["groups"] == manifest["groups"]

    # re-planning another ratio from the saved scores needs no calibration data
    replanned = tmp_path / "replanned"
    argv = ["prune", str(tiny_model_dir()), "--method", "ukmp", "--ratio", "0.2"]
    assert main([*argv, "--scores", str(out / "scores.safetensors"), "--out", str(replanned)]) == 0
    small = json.loads((replanned / "pruning.json").read_text())
    assert 0.2 <= small["achieved_ratio"] < manifest["achieved_ratio"]
    kept_small = sum(len(g["kept"]) for g in small["groups"].values())
    kept_big = sum(len(g["kept"]) for g in manifest["groups"].values())
    assert kept_small > kept_big


def test_ablation_switches_change_the_scores(calib: Path, tmp_path: Path) -> None:
    base, no_entropy = tmp_path / "a", tmp_path / "b"
    assert _prune(base, calib) == 0
    assert _prune(no_entropy, calib, "--entropy", "off", "--taylor", "mix") == 0
    a = MethodScores.load(base / "scores.safetensors")
    b = MethodScores.load(no_entropy / "scores.safetensors")
    assert "entropy" not in b.factors
    assert any(not torch.allclose(a.scores[n], b.scores[n]) for n in a.scores)


def test_ukmp_without_calibration_data_is_one_sentence(tmp_path: Path, capsys) -> None:
    argv = [
        "prune",
        str(tiny_model_dir()),
        "--method",
        "ukmp",
        "--ratio",
        "0.3",
        "--out",
        str(tmp_path / "x"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "needs calibration data" in err and err.count("\n") == 0
    assert not (tmp_path / "x").exists()


def test_too_few_calibration_samples_is_one_sentence(calib: Path, tmp_path: Path, capsys) -> None:
    assert _prune(tmp_path / "y", calib, "--num-samples", "50") == 2
    assert "calibration needs 100 samples" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_preset_paper_and_relative_threshold_reach_the_manifest(calib: Path, tmp_path: Path, capsys) -> None:
    paper, relative = tmp_path / "paper", tmp_path / "relative"
    assert _prune(paper, calib, "--preset", "paper") == 0
    options = json.loads((paper / "pruning.json").read_text())["method"]["options"]
    assert options["ukmi"]["threshold"] == PAPER_THRESHOLD and options["iterative"]["norm"] == "mean"
    # explicit flags override the preset
    assert _prune(relative, calib, "--preset", "paper", "--threshold", "q0.3", "--norm", "none") == 0
    options = json.loads((relative / "pruning.json").read_text())["method"]["options"]
    assert options["ukmi"]["threshold"] == "q0.3" and options["iterative"]["norm"] == "none"
    stats = json.loads((relative / "pruning.json").read_text())["extra"]["scoring"]["gradient_pass"]
    assert stats["backpropagated_tokens"] < stats["target_tokens"]
    assert _prune(tmp_path / "bad", calib, "--threshold", "q1.5") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--threshold must be in (0, 1]" in err and not (tmp_path / "bad").exists()


def test_norm_scope_kind_replans_saved_scores_with_one_normaliser_per_kind(calib: Path, tmp_path: Path) -> None:
    from ukmp.planning.iterative import IterativeOptions
    from ukmp.planning.schedules import plan_from_scores
    from ukmp.pruning import PruneConfig, load_dense

    scored = tmp_path / "scored"
    assert _prune(scored, calib) == 0
    scores = scored / "scores.safetensors"
    kind = tmp_path / "kind"
    argv = ["prune", str(tiny_model_dir()), "--method", "ukmp", "--ratio", "0.3", "--scores", str(scores)]
    assert main([*argv, "--norm-scope", "kind", "--out", str(kind)]) == 0
    manifest = json.loads((kind / "pruning.json").read_text())
    assert manifest["method"]["options"]["iterative"]["scope"] == "kind"
    # the saved plan is the schedule's, with attention and MLP units of each modality normalised apart
    dense = load_dense(PruneConfig(str(tiny_model_dir()), kind, "ukmp", 0.3))
    expected = plan_from_scores(
        MethodScores.load(scores).scores, dense.groups, schedule="iterative", target_ratio=0.3,
        basis_params=dense.basis, iterative_options=IterativeOptions(scope="kind"),
    )  # fmt: skip
    assert {n: g["kept"] for n, g in manifest["groups"].items()} == expected.plan.kept
    pools = set(expected.steps[0]["normalisers"])
    assert pools == {f"{g.modality}/{g.kind}" for g in dense.groups}
    assert json.loads((scored / "pruning.json").read_text())["method"]["options"]["iterative"]["scope"] == "auto"
