"""`ukmp demo` end to end on a tiny saved model (the shipped one takes minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ukmp
from eval_tiny_model import tiny_model_dir
from ukmp.cli import main


@pytest.mark.slow
def test_demo_writes_report_results_and_a_reloadable_artifact(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("UKMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    argv = ["demo", "--model", str(tiny_model_dir()), "--out", str(out), "--limit", "2", "--caption-limit", "2"]
    argv += ["--num-samples", "2", "--recovery-steps", "2"]
    assert main(argv) == 0
    names = sorted(p.name for p in out.iterdir())
    artifact = [n for n in names if n.endswith("-ukmp-50")]
    expected = {"report.md", "dense_results.json", "pruned_results.json", "recovered_results.json", "loss_curve.png"}
    assert expected <= set(names) and len(artifact) == 1
    manifest = json.loads((out / artifact[0] / "pruning.json").read_text())
    assert manifest["method"]["name"] == "ukmp" and manifest["achieved_ratio"] >= 0.5
    report = (out / "report.md").read_text()
    assert "VQA accuracy %" in report and "CIDEr" in report
    assert "| metric (shapes val) | dense | pruned | recovered (LPD) |" in report
    recovered = json.loads((out / "recovered_results.json").read_text())
    assert recovered["limits"] == {"vqa": 2, "caption": 2} and recovered["tasks"]["vqa"]["num_questions"] == 2
    ukmp.load_pruned(out / artifact[0])
    merged = ukmp.load_pruned(out / f"{artifact[0]}-recovered" / "merged")
    assert merged.ukmp_manifest["recovery"]["steps"] == 7  # 16 samples in 8s: one step in each of 7 sub-phases
    assert "7 steps of 8" in report
    # a second run replaces the previous output instead of failing on it
    assert main(argv) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".demo-")]


def test_demo_with_a_missing_model_is_one_sentence(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert "weights are missing" in err and "\n" not in err
