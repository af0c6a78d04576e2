"""`ukmp compare` on a VLM with --eval-text: every model's tasks and its language model's perplexity on plain
text, in one table. Each perplexity is what `ukmp evaluate --task perplexity` gives on the same artifact, the
tasks are unchanged by the extra column, and a rerun reuses every evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiny_llava import save_tiny_llava_with_processor
from tiny_lm import CORPUS
from ukmp.cli import main
from ukmp.data.world_writer import write_split


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("vlm-text")
    model = save_tiny_llava_with_processor(root / "llava")
    data = write_split("train", 8, root / "data")
    held_out = root / "prose.txt"
    held_out.write_text("\n\n".join(CORPUS * 3) + "\n")
    return Path(model), Path(data), held_out


def _compare(model: Path, data: Path, out: Path, *extra: str) -> int:
    argv = ["compare", str(model), "--methods", "ukmp,magnitude", "--ratios", "0.3", "--calib", str(data)]
    argv += ["--calib-split", "train", "--eval", str(data), "--eval-split", "train", "--tasks", "vqa", "--limit", "4"]
    argv += ["--num-samples", "3", "--examples", "0", "--no-progress", "--out", str(out)]
    return main([*argv, *extra])


@pytest.mark.slow
def test_tasks_and_text_perplexity_in_one_table(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model, data, held_out = setup
    text = ["--eval-text", str(held_out), "--eval-seq-len", "16"]
    assert _compare(model, data, tmp_path / "both", *text) == 0
    assert _compare(model, data, tmp_path / "tasks") == 0
    both = json.loads((tmp_path / "both" / "results.json").read_text())
    tasks = json.loads((tmp_path / "tasks" / "results.json").read_text())
    column = "perplexity (prose)"
    assert column in both["dense"]["metrics"] and "VQA accuracy (%)" in both["dense"]["metrics"]
    for mine, theirs in zip(both["rows"], tasks["rows"], strict=True):
        assert mine["metrics"]["VQA accuracy (%)"] == theirs["metrics"]["VQA accuracy (%)"]
        artifact = tmp_path / "both" / "artifacts" / mine["name"]
        out = tmp_path / f"{mine['name']}.json"
        argv = ["evaluate", str(artifact), "--task", "perplexity", "--data", str(held_out), "--seq-len", "16"]
        assert main([*argv, "--batch-size", "4", "--no-progress", "--out", str(out)]) == 0
        assert mine["metrics"][column] == json.loads(out.read_text())["tasks"]["perplexity"]["perplexity"]
    assert "read alone" in (tmp_path / "both" / "results.md").read_text()
    assert (tmp_path / "both" / "task_vs_text.png").is_file() and not (tmp_path / "tasks" / "task_vs_text.png").exists()
    evals = {p: p.stat().st_mtime_ns for p in (tmp_path / "both" / "evals").glob("*.json")}
    assert _compare(model, data, tmp_path / "both", *text) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "both" / "evals").glob("*.json")} == evals


def test_a_held_out_text_that_is_not_there_is_one_sentence(setup, tmp_path: Path, capsys) -> None:
    model, data, _ = setup
    missing = tmp_path / "missing.txt"
    assert _compare(model, data, tmp_path / "bad", "--eval-text", str(missing)) == 2
    assert f"--eval-text {missing} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_seeds_pair_the_perplexity_too(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model, data, held_out = setup
    out = tmp_path / "seeds"
    assert _compare(model, data, out, "--eval-text", str(held_out), "--eval-seq-len", "16", "--seeds", "2") == 0
    results = json.loads((out / "results.json").read_text())
    cell = next(c for c in results["cells"] if c["method"] == "ukmp")
    assert len(cell["metrics"]["perplexity (prose)"]) == 2 and len(cell["metrics"]["VQA accuracy (%)"]) == 2
    assert (out / "task_vs_text.png").is_file() and "read alone" in (out / "results.md").read_text()
