"""`ukmp recover --preset`: ukmp's label-free defaults, the paper's values, typed flags over both."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ukmp.recovery.distill as distill
from ukmp.artifact import FORMAT_VERSION
from ukmp.cli import main
from ukmp.data.world_writer import write_split
from ukmp.errors import UserError
from ukmp.recovery.config import RecoveryConfig


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[RecoveryConfig]:
    configs: list[RecoveryConfig] = []
    monkeypatch.setattr(distill, "run_recovery", lambda config, **_: configs.append(config))
    return configs


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_split("train", 4, tmp_path_factory.mktemp("presets") / "data")


def _recover(data: Path | str, *extra: str) -> int:
    return main(["recover", "pruned-model", "--data", str(data), "--out", "out", *extra])


def test_the_paper_preset_is_the_recovery_every_earlier_figure_was_made_with(captured, data: Path) -> None:
    assert _recover(data, "--preset", "paper") == 0
    before = RecoveryConfig(pruned="pruned-model", out="out", data=str(data))  # the defaults of those runs
    assert captured[0] == before
    assert (before.lr, before.batch_size, before.max_samples, before.vqa_fraction) == (2e-5, 20, None, 0.0)


def test_ukmp_preset_by_default_reads_no_labels(captured, data: Path) -> None:
    assert _recover(data) == 0
    config = captured[0]
    assert (config.lr, config.batch_size, config.max_samples) == (3e-4, 8, 4000)
    assert (config.vqa_fraction, config.answers) == (0.5, "teacher")


@pytest.mark.parametrize(("removed", "samples"), [(0.2, 4000), (0.5, 4000), (0.65, 8000), (None, 4000)])
def test_ukmp_budget_follows_the_fraction_removed(captured, data: Path, tmp_path: Path, capsys, removed, samples):
    artifact = tmp_path / "pruned"
    artifact.mkdir()
    manifest = {"format_version": FORMAT_VERSION, "groups": {}}
    if removed is not None:
        manifest["target_ratio"] = removed
    (artifact / "pruning.json").write_text(json.dumps(manifest))
    assert main(["recover", str(artifact), "--data", str(data), "--out", str(tmp_path / "out")]) == 0
    assert captured[0].max_samples == samples
    assert f"recovery budget: {samples} samples ({samples // 8} steps of 8)" in capsys.readouterr().out
    # a typed budget wins
    typed = ["recover", str(artifact), "--data", str(data), "--out", str(tmp_path / "o"), "--max-samples", "16"]
    assert main(typed) == 0
    assert captured[1].max_samples == 16


def test_typed_flags_win_over_the_preset(captured, data: Path) -> None:
    assert _recover(data, "--lr", "1e-4", "--answers", "labels", "--preset", "paper") == 0
    config = captured[0]
    assert (config.lr, config.answers, config.batch_size) == (1e-4, "labels", 20)


def test_a_folder_without_questions_recovers_on_captions_and_says_so(captured, data: Path, tmp_path: Path, capsys):
    folder = shutil.copytree(data, tmp_path / "captions-only")
    index = json.loads((folder / "ukmp_data.json").read_text())
    for split in index["splits"].values():
        split.pop("vqa", None)
    (folder / "ukmp_data.json").write_text(json.dumps(index))
    assert _recover(folder) == 0
    assert captured[0].vqa_fraction == 0.0 and "has no questions" in capsys.readouterr().out
    # a share the user typed is kept, and the recovery then names what is missing
    assert _recover(folder, "--vqa-fraction", "0.5") == 0
    assert captured[1].vqa_fraction == 0.5
    with pytest.raises(UserError, match="has none: pass --prompts FILE"):
        distill.question_mix(captured[1], [], folder, None, None, progress=False)


def test_a_text_file_gets_a_budget_of_its_own_and_no_questions(captured, tmp_path: Path, capsys) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("some text to recover a language model on\n")
    assert _recover(text) == 0
    assert "recovery budget: 800 windows (100 steps of 8)" in capsys.readouterr().out
    config = captured[0]
    assert (config.lr, config.batch_size, config.max_samples, config.warmup_steps) == (3e-4, 8, 800, 10)
    assert config.vqa_fraction == 0.0
    assert _recover(text, "--preset", "paper") == 0
    assert (captured[1].lr, captured[1].batch_size, captured[1].max_samples, captured[1].warmup_steps) == (
        2e-5, 20, None, 50,
    )  # fmt: skip
    assert _recover(text, "--warmup-steps", "3") == 0
    assert captured[2].warmup_steps == 3
