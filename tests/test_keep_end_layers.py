"""`--keep-end-layers llm-pruner` leaves the first 4/32 and last 2/32 of every stack dense, for any method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiny_lm import tiny_llama, tiny_tokenizer
from ukmp.cli import main
from ukmp.errors import UserError
from ukmp.pruning import PruneConfig, prune


@pytest.fixture(scope="module")
def deep_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 layers: LLM-Pruner's rule keeps layers 0-1 (floor(16 * 4/32)) and 15 (floor(16 * 2/32)) dense."""
    folder = tmp_path_factory.mktemp("deep-lm")
    tokenizer = tiny_tokenizer()
    tiny_llama(len(tokenizer), num_hidden_layers=16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _kept_fraction(out: Path) -> tuple[dict[str, float], dict]:
    manifest = json.loads((out / "pruning.json").read_text())
    fractions = {name: len(g["kept"]) / g["num_units"] for name, g in manifest["groups"].items()}
    return fractions, manifest


def test_end_layers_stay_dense_and_the_ratio_is_still_reached(deep_lm: Path, tmp_path: Path) -> None:
    argv = ["prune", str(deep_lm), "--method", "magnitude", "--ratio", "0.3", "--of", "prunable"]
    assert main([*argv, "--out", str(tmp_path / "all")]) == 0
    assert main([*argv, "--keep-end-layers", "llm-pruner", "--out", str(tmp_path / "ends")]) == 0
    everywhere, _ = _kept_fraction(tmp_path / "all")
    ends, manifest = _kept_fraction(tmp_path / "ends")
    end_groups = [n for n in everywhere if any(f".layers.{i}." in n for i in (0, 1, 15))]
    assert len(end_groups) == 6  # attention and MLP of three layers
    assert min(everywhere[n] for n in end_groups) < 1.0  # without the flag the planner does prune them
    assert all(ends.get(n, 1.0) == 1.0 for n in end_groups)  # left out of the plan: dense
    assert len(ends) == len(everywhere) - 6 and min(ends.values()) < 1.0
    assert manifest["achieved_ratio"] >= 0.3
    assert manifest["method"]["options"]["keep_end_layers"] == "llm-pruner"


def test_unknown_rule_is_one_sentence(deep_lm: Path, tmp_path: Path) -> None:
    config = PruneConfig(str(deep_lm), tmp_path / "x", "magnitude", 0.3, keep_end_layers="first")
    with pytest.raises(UserError, match="--keep-end-layers must be one of"):
        prune(config, verbose=False)
