"""`ukmp prune --scores FILE` with a flag that decides scores: it cannot apply, so it must match the file.

Before, --threshold, --taylor, --num-samples, --score-dtype (every flag that only changes how scores
are computed) were ignored without a word when the scores came from a file. Now a typed one is
compared with the settings the file records: equal is fine (it changes nothing), otherwise one
sentence. Flags that only change planning (--ratio, --norm, --schedule...) apply as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_tiny_model import tiny_model_dir
from ukmp.cli import main
from ukmp.data.world_writer import write_split


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("saved")
    calib = write_split("train", 8, root / "calib")
    out = {}
    for method in ("llm-pruner-global", "ukmp", "magnitude"):
        argv = ["prune", str(tiny_model_dir()), "--method", method, "--ratio", "0.2", "--out", str(root / method)]
        assert main([*argv, "--calib", str(calib), "--num-samples", "3", "--no-progress"]) == 0
        out[method] = root / method / "scores.safetensors"
    return out


def _replan(scores: dict[str, Path], method: str, out: Path, *extra: str) -> int:
    argv = ["prune", str(tiny_model_dir()), "--method", method, "--ratio", "0.3", "--out", str(out)]
    return main([*argv, "--scores", str(scores[method]), "--no-progress", *extra])


@pytest.mark.parametrize(
    ("method", "extra", "said"),
    [
        ("llm-pruner-global", ["--taylor", "second"], "--taylor second cannot apply to saved scores: {} was made with "
         "--taylor first"),
        ("llm-pruner-global", ["--num-samples", "5"], "--num-samples 5 cannot apply to saved scores: {} was made with "
         "--num-samples 3"),
        ("llm-pruner-global", ["--score-dtype", "bfloat16"], "was made with --score-dtype float32"),
        ("llm-pruner-global", ["--skip-layers", "none"], "was made with --skip-layers llm-pruner"),
        ("ukmp", ["--threshold", "0.5"], "--threshold 0.5 cannot apply to saved scores: {} was made with "
         "--threshold 1.0"),
        ("ukmp", ["--preset", "paper"], "--preset paper cannot apply to saved scores: {} was made with "
         "--threshold 1.0"),
        ("ukmp", ["--entropy", "off"], "was made with --entropy cosine"),
        ("ukmp", ["--selection", "target"], "was made with --selection confidence"),
        ("ukmp", ["--entropy-on-vision"], "--entropy-on-vision cannot apply to saved scores"),
        ("magnitude", ["--score-dtype", "bfloat16"], "was made with --score-dtype float32"),
    ],
)  # fmt: skip
def test_a_typed_score_flag_that_differs_from_the_file_is_one_sentence(
    method, extra, said, scores, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "replanned"
    assert _replan(scores, method, out, *extra) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ukmp prune: error:") and said.format(scores[method]) in last
    assert f"drop {extra[0]}" in last and "without --scores" in last
    assert not out.exists()


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("llm-pruner-global", ["--taylor", "first", "--num-samples", "3", "--score-dtype", "float32"]),  # as recorded
        ("llm-pruner-global", ["--threshold", "0.5", "--entropy", "off"]),  # UKMP's: do not decide these scores
        ("magnitude", ["--num-samples", "5", "--taylor", "second"]),  # a data-free method reads neither
        ("ukmp", ["--norm", "minmax", "--norm-scope", "modality", "--schedule", "global", "--of", "prunable"]),
        ("ukmp", ["--threshold", "1.0", "--batch-size", "2", "--seed", "3"]),  # seed: the plan choices' draw
    ],
)
def test_planning_flags_and_matching_score_flags_re_plan(method, extra, scores, tmp_path: Path) -> None:
    assert _replan(scores, method, tmp_path / "replanned", *extra) == 0
    assert (tmp_path / "replanned" / "pruning.json").is_file()


def test_a_file_from_before_the_records_is_checked_on_what_its_stats_show(scores, tmp_path: Path, capsys) -> None:
    from ukmp.method_scores import MethodScores

    old = MethodScores.load(scores["llm-pruner-global"])
    old.settings = {}  # as written before scores files recorded their settings
    old.save(tmp_path / "old.safetensors")
    legacy = {"llm-pruner-global": tmp_path / "old.safetensors"}
    assert _replan(legacy, "llm-pruner-global", tmp_path / "a", "--taylor", "second") == 2
    assert "was made with --taylor first" in capsys.readouterr().err  # from its stats' options
    assert _replan(legacy, "llm-pruner-global", tmp_path / "b", "--score-dtype", "float32") == 2
    assert "does not record its --score-dtype" in capsys.readouterr().err
    assert _replan(legacy, "llm-pruner-global", tmp_path / "c", "--num-samples", "3") == 0  # in its calibration stats
