"""`--norm-scope auto`: both scopes are planned and the one with the lower calibration loss is kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ukmp
import ukmp.planning.scope_choice as scope_choice
from eval_tiny_model import tiny_model_dir
from tiny_lm import tiny_tokenizer
from ukmp.cli import main
from ukmp.data.calibration import TextCalibrationSource, calibration_batches, load_calibration_samples
from ukmp.data.text_calibration import TextSample
from ukmp.data.world_writer import write_split
from ukmp.evaluation.model_loading import load_model_and_processor
from ukmp.planning.global_schedule import GroupCost
from ukmp.planning.iterative import IterativeOptions, iterative_schedule
from ukmp.removal_cost import mean_target_nll

LM = ["--method", "ukmp", "--ratio", "0.25", "--seq-len", "12", "--num-samples", "4", "--batch-size", "2"]


def _choice(out: Path) -> dict:
    return json.loads((out / "pruning.json").read_text())["method"]["options"]["norm_scope_choice"]


def _replan_with(model: str, scored: Path, scope: str, out: Path, *extra: str) -> dict:
    argv = ["prune", model, "--method", "ukmp", "--ratio", extra[0], "--scores", str(scored / "scores.safetensors")]
    assert main([*argv, *extra[1:], "--norm-scope", scope, "--out", str(out)]) == 0
    return json.loads((out / "pruning.json").read_text())["groups"]


def test_language_model_keeps_the_scope_with_the_lower_loss_on_held_out_windows(
    lm_dir: Path, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scope_choice, "TEXT_WINDOWS", 3)
    out = tmp_path / "auto"
    assert (
        main(
            [
                "prune",
                str(lm_dir),
                *LM,
                "--seed",
                "1",
                "--calib",
                str(corpus),
                "--norm-scope",
                "auto",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    choice = _choice(out)
    losses = choice["losses"]
    assert set(losses) == {"modality", "kind"} and choice["chosen"] == min(losses, key=losses.get)
    assert losses["modality"] != losses["kind"]  # the two scopes give two plans here, so the choice is a real one
    assert choice["samples"] == 3 and choice["data"] == str(corpus)
    # the held-out windows are the tail of the scores' calibration order (the scorer read the first 8)
    tokenizer = tiny_tokenizer()
    source = TextCalibrationSource(corpus, 12, tokenizer=tokenizer)
    held_out = load_calibration_samples(source, "train", seed=1)[-3:]
    batches = list(calibration_batches(tokenizer, [TextSample(w.ids, 0) for w in held_out], 16, encoder_decoder=False))
    with torch.no_grad():
        saved_loss = mean_target_nll(ukmp.load_pruned(out).eval(), batches)
    assert saved_loss == pytest.approx(losses[choice["chosen"]], abs=1e-5)
    # the saved plan is the chosen scope's plan of the same scores
    manifest = json.loads((out / "pruning.json").read_text())
    assert _replan_with(str(lm_dir), out, choice["chosen"], tmp_path / "fixed", "0.25") == manifest["groups"]


def test_vision_language_model_chooses_on_the_gradient_pass_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scope_choice, "IMAGE_SAMPLES", 2)
    calib = write_split("train", 8, tmp_path / "calib")
    model = str(tiny_model_dir())
    out = tmp_path / "auto"
    argv = ["prune", model, "--method", "ukmp", "--ratio", "0.3", "--calib", str(calib), "--num-samples", "3"]
    assert main([*argv, "--batch-size", "2", "--norm-scope", "auto", "--out", str(out)]) == 0
    choice = _choice(out)
    assert choice["chosen"] == min(choice["losses"], key=choice["losses"].get) and choice["samples"] == 2
    assert choice["losses"]["modality"] != choice["losses"]["kind"]
    # samples 3 and 4 of the draw's order (after the entropy pass's three), through the pruned model
    samples = load_calibration_samples(calib, "train", seed=0, pool=6)[3:5]
    pruned, processor, _ = load_model_and_processor(str(out), device="cpu")
    with torch.no_grad():
        loss = mean_target_nll(
            pruned.float().eval(), list(calibration_batches(processor, samples, 16, encoder_decoder=True))
        )
    assert loss == pytest.approx(choice["losses"][choice["chosen"]], abs=1e-4)
    manifest = json.loads((out / "pruning.json").read_text())
    assert manifest["method"]["options"]["iterative"]["scope"] == "auto"
    assert _replan_with(model, out, choice["chosen"], tmp_path / "fixed", "0.3") == manifest["groups"]


def test_re_planning_saved_scores_with_auto_reads_the_data_the_scores_name(
    lm_dir: Path, corpus: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scope_choice, "TEXT_WINDOWS", 3)
    scored = tmp_path / "scored"
    assert main(["prune", str(lm_dir), *LM, "--calib", str(corpus), "--out", str(scored)]) == 0  # auto: the default
    argv = ["prune", str(lm_dir), *LM[:4], "--seq-len", "12", "--scores", str(scored / "scores.safetensors")]
    # without --calib the choice reads the corpus the scores record, as with it
    assert main([*argv, "--out", str(tmp_path / "recorded")]) == 0
    assert main([*argv, "--calib", str(corpus), "--out", str(tmp_path / "given")]) == 0
    assert _choice(tmp_path / "recorded") == _choice(tmp_path / "given") == _choice(scored)
    # once that data is gone, one sentence names both ways on
    corpus.rename(tmp_path / "moved.txt")
    try:
        capsys.readouterr()
        assert main([*argv, "--out", str(tmp_path / "replanned")]) == 2
    finally:
        (tmp_path / "moved.txt").rename(corpus)
    err = capsys.readouterr().err
    assert "pass --calib" in err and "--norm-scope modality" in err and "Traceback" not in err
    assert not (tmp_path / "replanned").exists()


def test_the_schedule_itself_plans_one_scope() -> None:
    scores, costs = {"a": torch.tensor([1.0, 2.0])}, {"a": GroupCost(2, 1)}
    with pytest.raises(ValueError, match="choice between plans"):
        iterative_schedule(
            scores, costs, {"a": "language"}, target_ratio=0.5, basis_params=2,
            options=IterativeOptions(scope="auto"), kind={"a": "mlp"},
        )  # fmt: skip


def test_a_short_calibration_text_chooses_on_every_window_the_scorer_leaves(
    lm_dir: Path, corpus: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "auto"
    assert main(["prune", str(lm_dir), *LM, "--calib", str(corpus), "--out", str(out)]) == 0  # auto: the default
    windows = load_calibration_samples(TextCalibrationSource(corpus, 12, tokenizer=tiny_tokenizer()), "train", seed=0)
    assert len(windows) - 8 < scope_choice.TEXT_WINDOWS  # fewer held-out windows than the choice reads at most
    assert _choice(out)["samples"] == len(windows) - 8  # the scorer read 2 x 4 windows
    # a draw that reads every window leaves none to choose on: one sentence, nothing written
    every = ["--num-samples", str(len(windows) // 2), "--calib", str(corpus), "--out", str(tmp_path / "none")]
    assert main(["prune", str(lm_dir), *LM[:6], *every]) == 2
    err = capsys.readouterr().err
    assert "--norm-scope modality" in err and "Traceback" not in err and not (tmp_path / "none").exists()
