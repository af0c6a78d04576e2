"""`ukmp compare` reuses a cached piece of its OUT folder only when it was made with this run's settings.

Before, scores, artifacts, evaluations and recoveries were reused by file name: a rerun into the
same OUT with another --num-samples kept the old scores byte for byte while results.md printed the
new setting. Each piece now records the settings that decided it (`ukmp.provenance`), and a rerun
that asks for others stops with one sentence naming the setting and the fix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval_tiny_model import build_tiny_blip2, tiny_model_dir
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.method_scores import MethodScores

METHODS = "flap,llm-pruner-global,random"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    calib = write_split("train", 8, tmp_path_factory.mktemp("calib"))
    val = write_split("val", 4, tmp_path_factory.mktemp("val"))
    return calib, val


def _compare(out: Path, data: tuple[Path, Path], *extra: str, model: Path | None = None) -> int:
    calib, val = data
    argv = ["compare", str(model or tiny_model_dir()), "--calib", str(calib), "--eval", str(val), "--out", str(out)]
    argv += ["--methods", METHODS, "--ratios", "0.3", "--num-samples", "3", "--tasks", "vqa", "--limit", "4"]
    return main([*argv, "--no-progress", *extra])


@pytest.fixture(scope="module")
def first(data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("first") / "cmp"
    assert _compare(out, data) == 0
    return out


def _stamps(out: Path) -> dict[Path, int]:
    kept = [*out.glob("scores/*"), *out.glob("evals/*"), *out.glob("artifacts/*/model.safetensors")]
    return {p: p.stat().st_mtime_ns for p in kept}


@pytest.mark.parametrize(
    ("extra", "piece", "said"),
    [
        (["--num-samples", "4"], "scores/flap.safetensors", "--num-samples 3, but this run asks for --num-samples 4"),
        (["--taylor", "second"], "scores/llm-pruner-global", "--taylor first, but this run asks for --taylor second"),
        (["--score-dtype", "bfloat16"], "scores/flap", "--score-dtype float32, but this run asks for --score-dtype bf"),
        (["--seed", "1"], "scores/flap", "--seed 0, but this run asks for --seed 1"),
        (["--of", "prunable"], "artifacts/flap-30", "--of all, but this run asks for --of prunable"),
        (["--dtype", "bfloat16"], "artifacts/flap-30", "--dtype auto, but this run asks for --dtype bfloat16"),
        (["--limit", "3"], "evals/dense.json", "--limit 4, but this run asks for --limit 3"),
        (["--tasks", "vqa,caption"], "evals/dense.json", "--tasks vqa, but this run asks for --tasks vqa,caption"),
    ],
)
def test_a_rerun_with_other_settings_is_refused_in_one_sentence(
    extra, piece, said, first: Path, data, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "cmp"
    shutil.copytree(first, out)
    before = _stamps(out)
    results = (out / "results.json").read_text()
    capsys.readouterr()
    assert _compare(out, data, *extra) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ukmp compare: error:") and piece in last and said in last
    assert "--overwrite" in last and "another --out" in last
    # nothing cached was replaced and no table claims the new settings
    assert _stamps(out) == before and (out / "results.json").read_text() == results


def test_the_same_settings_reuse_everything_and_overwrite_starts_afresh(first: Path, data, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    shutil.copytree(first, out)
    before = _stamps(out)
    assert _compare(out, data, "--batch-size", "2", "--eval-batch-size", "3") == 0  # not deciding settings
    assert _stamps(out) == before
    assert _compare(out, data, "--num-samples", "4", "--overwrite") == 0
    assert json.loads((out / "results.json").read_text())["settings"]["num_samples"] == 4
    for method in ("flap", "llm-pruner-global"):
        assert MethodScores.load(out / "scores" / f"{method}.safetensors").stats["calibration"]["num_samples"] == 4


def test_every_piece_records_what_decided_it(first: Path) -> None:
    flap = MethodScores.load(first / "scores" / "flap.safetensors").settings
    assert flap["--num-samples"] == 3 and flap["--score-dtype"] == "float32" and flap["--seed"] == 0
    assert "MODEL (weights sha256)" in flap and "--taylor" not in flap
    assert MethodScores.load(first / "scores" / "llm-pruner-global.safetensors").settings["--taylor"] == "first"
    artifact = json.loads((first / "artifacts" / "flap-30" / "pruning.json").read_text())["extra"]["settings"]
    assert artifact["--ratio"] == 0.3 and artifact["--of"] == "all" and artifact["--num-samples"] == 3
    evaluation = json.loads((first / "evals" / "flap-30.json").read_text())["settings"]
    assert evaluation["--limit"] == 4 and evaluation["--tasks"] == ["vqa"] and evaluation["--of"] == "all"


def test_a_rerun_on_another_model_is_refused(first: Path, data, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cmp"
    shutil.copytree(first, out)
    other = build_tiny_blip2(tmp_path / "other", seed=1)  # the same architecture: scores of the same shapes
    capsys.readouterr()
    assert _compare(out, data, model=other) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "evals/dense.json was made with MODEL (weights sha256)" in last and "--overwrite" in last


def test_a_recovery_made_with_other_settings_is_refused(data, tmp_path: Path, capsys) -> None:
    out = tmp_path / "rec"
    recover = ["--methods", "random", "--recover", "lora", "--recover-samples", "4", "--recover-batch-size", "4"]
    assert _compare(out, data, *recover) == 0
    record = json.loads((out / "recovered" / "random-30" / "compare_settings.json").read_text())
    assert record["--recover"] == "lora" and record["--recover-samples"] == 4
    capsys.readouterr()
    assert _compare(out, data, *recover[:-3], "6", "--recover-batch-size", "4") == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "recovered/random-30/merged was made with --recover-samples 4" in last
