"""`ukmp compare` end to end on a tiny model: every method, table, plot, resume, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_tiny_model import tiny_model_dir
from script_loader import load_script
from ukmp.cli import main
from ukmp.compare.config import DEFAULT_METHODS
from ukmp.data.index import load_task
from ukmp.data.world_writer import write_split


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    calib = write_split("train", 8, tmp_path_factory.mktemp("calib"))
    val = write_split("val", 4, tmp_path_factory.mktemp("val"))
    return calib, val


def _compare(out: Path, data: tuple[Path, Path], *extra: str) -> int:
    calib, val = data
    argv = ["compare", str(tiny_model_dir()), "--calib", str(calib), "--eval", str(val), "--out", str(out)]
    argv += ["--ratios", "0.2,0.4", "--num-samples", "3", "--tasks", "vqa", "--limit", "4", "--no-progress"]
    return main([*argv, *extra])


@pytest.mark.slow
def test_compare_runs_every_method_writes_table_plot_artifacts_and_resumes(data, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    assert _compare(out, data) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert [(r["method"], r["target_ratio"]) for r in rows] == [(m, r) for m in DEFAULT_METHODS for r in (0.2, 0.4)]
    for r in rows:
        assert r["achieved_ratio"] >= r["target_ratio"]
        assert r["scoring"]["seconds"] >= 0 and r["scoring"]["peak_memory_mb"] > 0
        assert "VQA accuracy (%)" in r["metrics"]
        assert (out / r["artifact"] / "pruning.json").is_file()
    upop = next(r for r in rows if r["method"] == "upop")
    assert "one-shot" in upop["approximation"]
    # the baselines read one shared pass: activations and gradients together
    shared = {json.dumps(r["shared_calibration_seconds"]) for r in rows if r["method"] in ("flap", "upop")}
    assert len(shared) == 1
    text = (out / "results.md").read_text()
    assert "| ukmp | 0.2 |" in text and "Best method per ratio" in text and "one-shot" in text
    assert (out / "quality_vs_ratio.png").stat().st_size > 1000
    # a second run reuses every score, artifact and evaluation
    kept = [*out.glob("scores/*"), *out.glob("evals/*"), *out.glob("artifacts/*/model.safetensors")]
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    assert len(stamps) == 9 + 19 + 18
    assert _compare(out, data) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--methods", "ukmp,obs"], "unknown method 'obs'"),
        (["--methods", "flap,flap"], "names a method twice"),
        (["--ratios", "0.2,1.5"], "between 0 and 1"),
        (["--ratios", "0.2,half"], "is not a number"),
        (["--ratios", ","], "--ratios is empty"),
        (["--recover", "lora", "--recover-ratios", "0.3"], "not one of --ratios"),
        (["--num-samples", "0"], "--num-samples must be at least 1"),
        (["--methods", "ukmp:q2"], "must be in (0, 1]"),
        (["--methods", "flap:q0.3"], "flap takes no variant"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--limit", "0"], "must be at least 1 (or 'all')"),
        (["--limit", "some"], "takes a number of records or 'all'"),
    ],
)
def test_compare_rejects_bad_input_with_one_sentence(extra, message, data, tmp_path: Path, capsys) -> None:
    assert _compare(tmp_path / "bad", data, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err and err.startswith("ukmp compare: error:")


def test_compare_refuses_a_file_as_out_and_a_missing_model(data, tmp_path: Path, capsys) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    assert _compare(file, data) == 2
    assert "is a file" in capsys.readouterr().err
    calib, val = data
    argv = ["compare", str(tmp_path / "nope"), "--calib", str(calib), "--eval", str(val), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err


def test_prune_baseline_without_calibration_data_is_one_sentence(tmp_path: Path, capsys) -> None:
    argv = ["prune", str(tiny_model_dir()), "--method", "wanda-sp", "--ratio", "0.3", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "--method wanda-sp needs calibration data" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_recovers_ukmp_with_lpd_and_baselines_with_plain_lora(data, tmp_path: Path) -> None:
    calib, _ = data
    out = tmp_path / "rec"
    extra = ["--methods", "ukmp,flap", "--recover", "lpd", "--recover-ratios", "0.4"]
    assert _compare(out, data, *extra, "--recover-samples", "8", "--recover-batch-size", "4") == 0
    rows = {(r["method"], r["target_ratio"]): r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows[("ukmp", 0.4)]["recovery"] == "lpd" and rows[("flap", 0.4)]["recovery"] == "lora"
    assert "recovery" not in rows[("ukmp", 0.2)]
    assert "VQA accuracy (%)" in rows[("flap", 0.4)]["recovered_metrics"]
    merged = json.loads((out / "recovered" / "flap-40" / "merged" / "pruning.json").read_text())
    assert merged["added_biases"] and merged["recovery"]["plain_lora"] is True
    assert "## After recovery" in (out / "results.md").read_text()


def test_compare_over_seeds_reports_spreads_and_paired_orderings(data, tmp_path: Path, capsys) -> None:
    out = tmp_path / "seeds"
    assert _compare(out, data, "--methods", "ukmp,ukmp:q0.5,random", "--ratios", "0.3", "--seeds", "2") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1]
    # each seed is a complete run of its own, with its own calibration draw
    for seed in (0, 1):
        per_seed = json.loads((out / f"seed-{seed}" / "results.json").read_text())
        assert per_seed["settings"]["seed"] == seed
        assert {r["method"] for r in per_seed["rows"]} == {"ukmp", "ukmp:q0.5", "random"}
        variant = json.loads((out / f"seed-{seed}" / "artifacts" / "ukmp-q0.5-30" / "pruning.json").read_text())
        assert variant["method"]["name"] == "ukmp"
    cells = {c["method"]: c for c in results["cells"]}
    vqa = "VQA accuracy (%)"
    for cell in cells.values():
        values = cell["metrics"][vqa]
        assert len(values) == 2
        s = cell["metrics_spread"][vqa]
        assert s["mean"] == sum(values) / 2 and s["min"] == min(values) and s["max"] == max(values)
    pairs = {(o["better"], o["worse"]) for o in results["orderings"]["metrics"] if o["metric"] == vqa}
    assert pairs == {("ukmp", "ukmp:q0.5"), ("ukmp", "random"), ("ukmp:q0.5", "random")}
    text = (out / "results.md").read_text()
    assert "over 2 seeds" in text and "paired by seed" in text and "±" in text
    assert (out / "quality_vs_ratio.png").stat().st_size > 1000
    # the dense model was evaluated once and shared
    dense = [json.loads((out / f"seed-{s}" / "evals" / "dense.json").read_text()) for s in (0, 1)]
    assert dense[0] == dense[1]
    # every answer is kept beside the evaluation (not in the tables), and scoring them again gives
    # the accuracies the table reports
    assert len(json.loads((out / "seed-0" / "evals" / "ukmp-30.json").read_text())["tasks"]["vqa"]["predictions"]) == 4
    assert "predictions" not in (out / "results.json").read_text()
    capsys.readouterr()
    argv = [str(out), "--methods", "ukmp", "--ratios", "0.3", "--eval", str(data[1])]
    assert load_script("question_noise").main(argv) == 0
    table_row = capsys.readouterr().out.splitlines()[2]
    per_draw = ", ".join(f"{v:.1f}" for v in cells["ukmp"]["metrics"][vqa])
    assert table_row.startswith(f"| ukmp | 0.3 | 4 | {per_draw} |")


def test_cached_ukmp_scores_made_with_another_threshold_are_refused(data, tmp_path: Path, capsys) -> None:
    out = tmp_path / "stale"
    assert _compare(out, data, "--methods", "ukmp:0.3", "--ratios", "0.3") == 0
    # pretend an older ukmp wrote these scores as plain "ukmp" while the default threshold differs
    (out / "scores" / "ukmp:0.3.safetensors").rename(out / "scores" / "ukmp.safetensors")
    assert _compare(out, data, "--methods", "ukmp", "--ratios", "0.3") == 2
    err = capsys.readouterr().err
    assert "made with --threshold 0.3" in err and "--overwrite" in err


def _pruned_groups(groups: dict) -> list[str]:
    return [n for n, g in groups.items() if len(g["kept"]) < g["num_units"]]


def _end_layer(name: str) -> bool:
    """A language-model layer LLM-Pruner's rule leaves dense in a 16-layer stack (0, 1 and 15)."""
    return name.startswith("lm_") and any(f".layers.{i}." in name for i in (0, 1, 15))


@pytest.mark.slow
def test_compare_keeps_end_layers_dense_for_every_method_and_refuses_mixed_reuse(data, tmp_path: Path, capsys) -> None:
    from eval_tiny_model import build_tiny_blip2

    model = build_tiny_blip2(tmp_path / "deep", lm_layers=16)
    calib, val = data

    def compare(out: Path, methods: str, *extra: str) -> int:
        argv = ["compare", str(model), "--calib", str(calib), "--eval", str(val), "--out", str(out)]
        argv += ["--methods", methods, "--ratios", "0.3", "--num-samples", "3", "--tasks", "vqa", "--limit", "4"]
        return main([*argv, "--no-progress", *extra])

    # without the flag the planner prunes the end layers too
    assert compare(tmp_path / "plain", "magnitude") == 0
    plain = json.loads((tmp_path / "plain" / "artifacts" / "magnitude-30" / "pruning.json").read_text())
    assert [n for n in _pruned_groups(plain["groups"]) if _end_layer(n)]

    out = tmp_path / "ends"
    assert compare(out, "magnitude,ukmp", "--keep-end-layers", "llm-pruner") == 0
    results = json.loads((out / "results.json").read_text())
    assert "--keep-end-layers llm-pruner" in results["command"]
    for row in results["rows"]:
        manifest = json.loads((out / row["artifact"] / "pruning.json").read_text())
        assert manifest["method"]["options"]["keep_end_layers"] == "llm-pruner"
        assert manifest["achieved_ratio"] >= 0.3
        assert not [n for n in _pruned_groups(manifest["groups"]) if _end_layer(n)]
    capsys.readouterr()
    assert compare(out, "magnitude,ukmp") == 2  # the same --out without the flag would mix two plannings
    err = capsys.readouterr().err
    assert "--keep-end-layers llm-pruner" in err and "another --out" in err and "Traceback" not in err


def test_a_reused_artifact_planned_with_another_plan_search_is_refused(tmp_path: Path) -> None:
    from ukmp.errors import UserError
    from ukmp.methods.registry import get_scorer
    from ukmp.provenance import COMPARE_FIX, check_reusable
    from ukmp.pruning import recorded_artifact_settings

    artifact = tmp_path / "ukmp-50"
    artifact.mkdir()
    options = {"plan_search": {"candidates": 8, "losses": [1.0] * 8}}
    # a manifest from before artifacts recorded their settings: read from its options
    (artifact / "pruning.json").write_text(json.dumps({"method": {"options": options}}))
    recorded = recorded_artifact_settings(artifact, get_scorer("ukmp"))
    with pytest.raises(UserError, match="--plan-search 8, but this run asks for --plan-search 1"):
        check_reusable(artifact, recorded, {"--plan-search": 1, "--keep-end-layers": "none"}, COMPARE_FIX)
    check_reusable(artifact, recorded, {"--plan-search": 8, "--keep-end-layers": "none"}, COMPARE_FIX)  # reused


def test_limit_all_evaluates_every_record_and_says_so(data, tmp_path: Path) -> None:
    out = tmp_path / "all"
    assert _compare(out, data, "--methods", "random", "--ratios", "0.3", "--limit", "all") == 0
    questions = len(load_task(data[1], "val", "vqa"))
    assert questions > 4  # more than the fixture's usual --limit 4
    dense = json.loads((out / "evals" / "dense.json").read_text())
    assert dense["tasks"]["vqa"]["num_questions"] == questions
    assert "all records" in (out / "results.md").read_text()
    assert "--limit all" in json.loads((out / "results.json").read_text())["command"]
