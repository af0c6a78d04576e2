"""`ukmp demo` end to end on a tiny saved model (the shipped one takes minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import ukmp
from eval_tiny_model import tiny_model_dir
from ukmp.cli import main


def test_demo_writes_report_results_and_a_reloadable_artifact(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("UKMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    argv = ["demo", "--model", str(tiny_model_dir()), "--out", str(out), "--limit", "2", "--num-samples", "2"]
    assert main(argv) == 0
    names = sorted(p.name for p in out.iterdir())
    artifact = [n for n in names if n.endswith("-ukmp-50")]
    assert {"report.md", "dense_results.json", "pruned_results.json"} <= set(names) and len(artifact) == 1
    manifest = json.loads((out / artifact[0] / "pruning.json").read_text())
    assert manifest["method"]["name"] == "ukmp" and manifest["achieved_ratio"] >= 0.5
    report = (out / "report.md").read_text()
    assert "VQA accuracy %" in report and "CIDEr" in report
    ukmp.load_pruned(out / artifact[0])
    # a second run replaces the previous output instead of failing on it
    assert main(argv) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".demo-")]


def test_demo_with_a_missing_model_is_one_sentence(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert "weights are missing" in err and "\n" not in err
