"""`ukmp prune` and `ukmp inspect` end to end on a tiny BLIP-2-T5 saved by the test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertModel

from tiny_models import blip2_inputs, tiny_blip2
from ukmp.artifact import load_pruned
from ukmp.cli import main
from ukmp.groups import PruningPlan
from ukmp.loading import load_model
from ukmp.surgery import apply_plan_as_masks, apply_plan_physically


@pytest.fixture(scope="module")
def dense_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("dense") / "blip2-t5"
    tiny_blip2("t5").save_pretrained(path)
    return path


def run_cli(capsys, *argv):
    capsys.readouterr()  # drop output of earlier steps (e.g. save_pretrained progress bars)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_sentence_error(code: int, err: str, pattern: str) -> None:
    """Exit code != 0, no traceback, and exactly one error line (progress bars aside)."""
    assert code != 0
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert pattern in lines[0], lines[0]
    assert lines[0].rstrip().endswith(".") and lines[0].count(". ") == 0, lines[0]


@pytest.mark.parametrize(
    ("ratio", "message"),
    [("0", "between 0 and 1"), ("1", "between 0 and 1"), ("1.5", "between 0 and 1"), ("50", "pass --ratio 0.5"),
     ("-0.1", "between 0 and 1"),
     ("nan", "between 0 and 1"), ("100", "between 0 and 1")],
)  # fmt: skip
def test_ratio_outside_zero_one(capsys, dense_dir, tmp_path, ratio, message):
    code, _, err = run_cli(capsys, "prune", dense_dir, "--method", "random", "--ratio", ratio, "--out", tmp_path / "o")
    assert_one_sentence_error(code, err, message)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["prune", "inspect"])
def test_missing_model_path(capsys, tmp_path, command):
    extra = ["--method", "random", "--ratio", "0.5", "--out", tmp_path / "o"] if command == "prune" else []
    code, _, err = run_cli(capsys, command, tmp_path / "no-such-model", *extra)
    assert_one_sentence_error(code, err, "does not exist")


def test_unsupported_architecture(capsys, tmp_path):
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32))  # fmt: skip
    bert.save_pretrained(tmp_path / "bert")
    code, _, err = run_cli(capsys, "prune", tmp_path / "bert", "--method", "magnitude", "--ratio", "0.3",
                           "--out", tmp_path / "o")  # fmt: skip
    assert_one_sentence_error(code, err, "no adapter for BertModel (model_type 'bert')")


def test_real_console_entry_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ukmp.cli", "prune", str(tmp_path / "nope"), "--method", "random",
         "--ratio", "0.5", "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert_one_sentence_error(proc.returncode, proc.stderr, "does not exist")


def test_prune_half_then_inspect_then_reload(capsys, dense_dir, tmp_path):
    out = tmp_path / "pruned"
    code, stdout, err = run_cli(capsys, "prune", dense_dir, "--method", "magnitude", "--ratio", "0.5", "--out", out)
    assert code == 0, err
    assert f"wrote {out.resolve()}" in stdout and "achieved" in stdout
    manifest = json.loads((out / "pruning.json").read_text())
    assert 0.5 <= manifest["achieved_ratio"] <= 0.51
    before, after = manifest["parameters"]["before"]["total"], manifest["parameters"]["after"]["total"]
    assert (before - after) / before == pytest.approx(manifest["achieved_ratio"])
    assert manifest["method"]["name"] == "magnitude" and manifest["base_model"]["sha256"]

    code, stdout, err = run_cli(capsys, "inspect", out)
    assert code == 0, err
    assert "pruned artifact: method magnitude" in stdout and "kept / original" in stdout
    for component in ("vision", "lm_encoder", "lm_decoder", "qformer"):
        assert f"\n{component}" in stdout

    reloaded = load_pruned(out)
    dense = load_model(dense_dir)
    plan = PruningPlan.from_dict(manifest["groups"])
    inputs = blip2_inputs("t5")
    with torch.no_grad():
        got = reloaded(**inputs).logits
        assert torch.equal(got, apply_plan_physically(load_model(dense_dir), plan)(**inputs).logits)
        torch.testing.assert_close(got, apply_plan_as_masks(dense, plan)(**inputs).logits, atol=1e-5, rtol=0)

    code, _, err = run_cli(capsys, "prune", dense_dir, "--method", "magnitude", "--ratio", "0.5", "--out", out)
    assert_one_sentence_error(code, err, "already exists; pass --overwrite")
    code, _, err = run_cli(capsys, "prune", out, "--method", "random", "--ratio", "0.2", "--out", tmp_path / "x")
    assert_one_sentence_error(code, err, "already a pruned model")


@pytest.mark.parametrize("ratio", [0.2, 0.5])
def test_random_of_prunable_hits_its_target(capsys, dense_dir, tmp_path, ratio):
    out = tmp_path / "r"
    args = [
        "--ratio",
        ratio,
        "--of",
        "prunable",
        "--seed",
        "3",
        "--out",
        out,
        "--components",
        "vision,qformer",
    ]
    code, _, err = run_cli(capsys, "prune", dense_dir, "--method", "random", *args)
    assert code == 0, err
    manifest = json.loads((out / "pruning.json").read_text())
    assert manifest["ratio_basis"] == "prunable" and manifest["seed"] == 3
    assert ratio <= manifest["achieved_ratio"] <= ratio + 0.01
    assert {n.split(".")[0] for n in manifest["groups"]} == {"vision", "qformer"}
    with torch.no_grad():
        load_pruned(out)(**blip2_inputs("t5"))


def test_inspect_dense_model(capsys, dense_dir):
    code, stdout, err = run_cli(capsys, "inspect", dense_dir, "--flops")
    assert code == 0, err
    assert "4/4 heads" in stdout and "48/48 channels" in stdout and "FLOPs per forward" in stdout
    assert "qformer (opt-in" in stdout
