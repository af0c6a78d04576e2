"""Plan search on a language model: held-out windows of the calibration text choose the plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ukmp
from tiny_lm import tiny_tokenizer
from ukmp.cli import main
from ukmp.data.calibration import TextCalibrationSource, load_calibration_samples
from ukmp.errors import UserError
from ukmp.planning.search import PlanSearchOptions, selection_batches
from ukmp.removal_cost import mean_target_nll

PRUNE = ["--method", "ukmp", "--ratio", "0.25", "--seq-len", "12", "--num-samples", "4", "--batch-size", "2"]


def test_selection_windows_are_the_tail_of_the_calibration_order_with_every_token_a_target(corpus: Path) -> None:
    tokenizer = tiny_tokenizer()
    source = TextCalibrationSource(corpus, 12, tokenizer=tokenizer)
    windows = load_calibration_samples(source, "train", seed=3)
    options = PlanSearchOptions(candidates=2, samples=5, batch_size=2)
    batches = selection_batches(tokenizer, None, source, options, 3, reserved=8)
    rows = [
        tuple(ids[mask.bool()].tolist())
        for batch in batches
        for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
    ]
    assert rows == [w.ids for w in windows[-5:]]
    assert not set(rows) & {w.ids for w in windows[:8]}  # the scorer's windows stay out
    for batch in batches:
        labelled = batch["labels"] != -100
        assert torch.equal(labelled, batch["attention_mask"].bool())
        assert torch.equal(batch["labels"][labelled], batch["input_ids"][labelled])


def test_too_little_text_for_both_is_one_sentence(corpus: Path) -> None:
    tokenizer = tiny_tokenizer()
    source = TextCalibrationSource(corpus, 12, tokenizer=tokenizer)
    count = len(load_calibration_samples(source, "train", seed=0))
    options = PlanSearchOptions(candidates=2, samples=count - 7)
    with pytest.raises(UserError, match="lower --plan-search-samples"):
        selection_batches(tokenizer, None, source, options, 0, reserved=8)


def test_prune_searches_on_held_out_text_and_re_planning_saved_scores_searches_alike(
    lm_dir: Path, corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "searched"
    search = ["--plan-search", "4", "--plan-search-samples", "3", "--plan-search-spread", "1.0"]
    argv = ["prune", str(lm_dir), *PRUNE, "--seed", "1", "--calib", str(corpus), *search]
    assert main([*argv, "--out", str(out)]) == 0
    manifest = json.loads((out / "pruning.json").read_text())
    trace = manifest["method"]["options"]["plan_search"]
    assert len(trace["losses"]) == 4 and trace["data"] == str(corpus)
    assert trace["losses"][trace["chosen"]] == min(trace["losses"])
    assert len(set(trace["losses"])) > 1  # the perturbed plans differ, so the choice is a real one

    # the recorded loss of the chosen (masked) candidate is the sliced, saved model's loss on those windows
    tokenizer = tiny_tokenizer()
    source = TextCalibrationSource(corpus, 12, tokenizer=tokenizer)
    batches = selection_batches(tokenizer, None, source, PlanSearchOptions(candidates=4, samples=3), 1, reserved=8)
    with torch.no_grad():
        loss = mean_target_nll(ukmp.load_pruned(out).eval(), batches)
    assert loss == pytest.approx(min(trace["losses"]), abs=1e-5)

    # saved scores, re-planned without their --num-samples (the default, 1000, would reserve every window):
    # the held-out windows are still the scores' own; a typed --num-samples that differs is refused
    again = tmp_path / "replanned"
    replan = ["prune", str(lm_dir), *PRUNE[:4], "--seed", "1", "--calib", str(corpus)]
    saved = ["--scores", str(out / "scores.safetensors"), *search]
    assert main([*replan, "--num-samples", "1", *saved, "--out", str(again)]) == 2
    assert main([*replan, *saved, "--out", str(again)]) == 0
    redone = json.loads((again / "pruning.json").read_text())
    assert redone["method"]["options"]["plan_search"]["losses"] == trace["losses"]
    assert redone["groups"] == manifest["groups"]
