"""`ukmp evaluate` end to end on a tiny saved model, and its one-sentence errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_tiny_model import tiny_model_dir
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.evaluation.harness import write_results


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("val", 3, tmp_path_factory.mktemp("world"))


@pytest.mark.slow
def test_evaluate_all_tasks_smoke(world: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "res" / "results.json"
    argv = [
        "evaluate",
        str(tiny_model_dir()),
        "--data",
        str(world),
        "--limit",
        "2",
        "--batch-size",
        "2",
        "--caption-max-new-tokens",
        "6",
        "--save-predictions",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "CIDEr" in printed and "accuracy %" in printed and "TR@1 %" in printed and f"wrote {out}" in printed
    assert "gqa" in printed and "not run" in printed

    results = json.loads(out.read_text())
    assert set(results["tasks"]) == {"caption", "vqa", "retrieval"}
    assert results["skipped_tasks"] == {"gqa": "the 'val' split has no gqa data"}
    caption = results["tasks"]["caption"]
    assert caption["num_images"] == 2 and len(caption["predictions"]) == 2
    assert caption["settings"] == {
        "prompt": "",
        "num_beams": 5,
        "max_new_tokens": 6,
        "min_new_tokens": 1,
        "length_penalty": 1.0,
    }
    assert set(caption["metrics"]) >= {"BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE"}
    if caption["metrics"]["SPICE"] is None:
        assert caption["notes"]["SPICE"].startswith("unavailable")
    vqa = results["tasks"]["vqa"]
    assert vqa["num_questions"] == 2 and 0.0 <= vqa["accuracy"] <= 100.0
    assert vqa["settings"]["prompt"] == "Question: {} Short answer:" and vqa["settings"]["max_new_tokens"] == 10
    assert results["tasks"]["retrieval"]["num_images"] == 2
    assert results["num_parameters"] > 0
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]  # no temp file left behind


def test_missing_data_dir_is_one_sentence(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results.json"
    code = main(["evaluate", str(tiny_model_dir()), "--data", str(tmp_path / "nope"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("ukmp evaluate: error: --data") and "does not exist" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_model_and_options(world: Path, tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "r.json")
    assert main(["evaluate", str(tmp_path / "no-model"), "--data", str(world), "--out", out]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_model_dir()), "--data", str(world), "--limit", "0", "--out", out]) == 2
    assert "--limit must be a positive number" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_model_dir()), "--data", str(world), "--task", "gqa", "--out", out]) == 2
    assert "has no gqa data" in capsys.readouterr().err


def test_write_results_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")
    write_results({"a": 1}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
