"""`ukmp report` renders from a small run: two methods, results files, a bench file; and a demo-like folder."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from eval_tiny_model import build_tiny_blip2
from ukmp.cli import main
from ukmp.errors import UserError
from ukmp.reporting import headline_metrics, scan_run


def results(model: str, vqa: float, cider: float) -> dict:
    """A results file in the `ukmp evaluate` format (only the fields the report reads, plus context)."""
    return {
        "format": "ukmp-eval/1",
        "model": model,
        "split": "val",
        "limit": 8,
        "tasks": {
            "vqa": {"accuracy": vqa, "per_question_type": {}},
            "caption": {"metrics": {"CIDEr": cider, "BLEU-4": cider / 4}},
        },
    }


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    dense = build_tiny_blip2(root / "dense")
    run = root / "run"
    for method, ratio, name in (
        ("magnitude", "0.3", "mag-30"),
        ("magnitude", "0.5", "mag-50"),
        ("random", "0.5", "rnd-50"),
    ):
        assert main(["prune", str(dense), "--method", method, "--ratio", ratio, "--out", str(run / name)]) == 0
    files = {
        "dense": (f"tiny ({dense})", 60.0, 1.2),  # `ukmp evaluate`'s "NAME (PATH)" form
        "mag30": ("mag-30", 55.0, 1.0),
        "mag50": (str(run / "mag-50"), 40.0, 0.7),
        "rnd50": ("rnd-50", 20.0, 0.2),
        "stray": ("some-other-model", 1.0, 0.1),
    }
    for stem, (model, vqa, cider) in files.items():
        (run / f"{stem}_results.json").write_text(json.dumps(results(model, vqa, cider)))
    argv = ["bench", dense, run / "mag-50", "--batch-sizes", "1", "--repeats", "1", "--warmup", "0",
            "--caption-tokens", "2", "--no-memory", "--no-masked", "--threads", "1",
            "--out", run / "bench.json"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    (run / "notes.json").write_text("[1, 2]")  # unrelated JSON is ignored
    return run


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 200


def test_report_renders_figures_and_tables(capsys, run_dir):
    code, out, err = cli(capsys, "report", run_dir)
    assert code == 0, err
    report = run_dir / "report"
    assert f"wrote {report.resolve()}" in out
    text = (report / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    names = {Path(link).name for link in links}
    assert {"kept-vision.png", "kept-lm_encoder.png", "kept-lm_decoder.png", "quality-vs-ratio.png"} <= names
    assert "bench-speedup-0.png" in names
    for link in links:
        assert_png(report / link)
    for name in ("mag-30", "mag-50", "rnd-50"):
        assert f"| {name} |" in text
    assert "| dense_results.json | tiny (" in text and "| dense | 0.0% |" in text
    assert "? (no artifact of that name)" in text  # the stray result is listed, not plotted
    assert "## Speed and memory (`bench.json`)" in text and "| mag-50 | pruned |" in text
    assert "notes.json" not in text


def test_scan_matches_results_to_artifacts_and_dense(run_dir):
    run = scan_run(run_dir)
    assert [a.name for a in run.artifacts] == ["mag-30", "mag-50", "rnd-50"]
    matched = {r.file.stem: (r.artifact.name if r.artifact else ("dense" if r.dense else None)) for r in run.results}
    assert matched == {"dense_results": "dense", "mag30_results": "mag-30", "mag50_results": "mag-50",
                       "rnd50_results": "rnd-50", "stray_results": None}  # fmt: skip
    assert len(run.benches) == 1
    kept = run.artifacts[1].kept()
    assert ("vision", "mlp") in kept and ("lm_decoder", "cross_attn") in kept
    for layers in kept.values():
        assert all(1 <= k <= n for k, n in layers.values())


def test_report_of_a_demo_like_folder_and_rerun(capsys, run_dir, tmp_path):
    """`ukmp demo` writes dense_results.json, pruned_results.json and one artifact folder (no bench)."""
    demo = tmp_path / "ukmp-demo"
    demo.mkdir()
    shutil.copytree(run_dir / "mag-50", demo / "tiny-ukmp-50")
    (demo / "dense_results.json").write_text(json.dumps(results("dense", 60.0, 1.2)))  # base dir name is "dense"
    (demo / "pruned_results.json").write_text(json.dumps(results("tiny-ukmp-50", 30.0, 0.5)))
    (demo / "report.md").write_text("# the demo's own report\n")
    out = tmp_path / "elsewhere"
    for _ in range(2):  # a second run replaces the first report
        code, _, err = cli(capsys, "report", demo, "--out", out)
        assert code == 0, err
    text = (out / "report.md").read_text()
    assert "| dense_results.json | dense | dense |" in text and "Speed and memory" not in text
    assert_png(out / "figures" / "quality-vs-ratio.png")
    assert (demo / "report.md").read_text() == "# the demo's own report\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_report_of_a_compare_folder(capsys, run_dir, tmp_path):
    """`ukmp compare` keeps artifacts in artifacts/ and evaluations in evals/."""
    cmp = tmp_path / "cmp"
    for name in ("mag-30", "mag-50"):
        shutil.copytree(run_dir / name, cmp / "artifacts" / name)
    (cmp / "evals").mkdir()
    (cmp / "evals" / "mag-30.json").write_text(json.dumps(results("mag-30", 50.0, 1.0)))
    (cmp / "evals" / "mag-50.json").write_text(json.dumps(results("mag-50", 30.0, 0.5)))
    (cmp / "results.json").write_text(json.dumps({"rows": []}))  # compare's own summary is not an evaluation
    code, _, err = cli(capsys, "report", cmp)
    assert code == 0, err
    text = (cmp / "report" / "report.md").read_text()
    assert "| mag-30.json | mag-30 | magnitude |" in text and "| mag-50.json | mag-50 | magnitude |" in text
    assert_png(cmp / "report" / "figures" / "kept-vision.png")


def test_report_errors_are_one_sentence(capsys, run_dir, tmp_path):
    code, _, err = cli(capsys, "report", tmp_path / "missing")
    assert code == 2 and "is not a folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "report", tmp_path / "empty")
    assert code == 2 and "holds no pruned models" in err
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    code, _, err = cli(capsys, "report", run_dir, "--out", taken)
    assert code == 2 and "is not a ukmp report folder" in err and (taken / "keep.txt").read_text() == "mine"
    with pytest.raises(UserError):
        scan_run(tmp_path / "empty")


def test_headline_metrics_reads_every_task():
    data = {
        "tasks": {
            "vqa": {"accuracy": 50.0},
            "gqa": {"accuracy": 40.0},
            "caption": {"metrics": {"CIDEr": 1.1, "BLEU-4": 0.3, "SPICE": None}},
            "retrieval": {"TR@1": 70.0, "IR@1": 60.0},
        }
    }
    assert headline_metrics(data) == {
        "VQA accuracy (%)": 50.0,
        "GQA accuracy (%)": 40.0,
        "CIDEr": 1.1,
        "BLEU-4": 0.3,
        "TR@1 (%)": 70.0,
        "IR@1 (%)": 60.0,
    }
