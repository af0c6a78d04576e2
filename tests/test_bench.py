"""`ukmp bench` on tiny models: the keys, the FLOPs/parameter bookkeeping and round-to; never timing.

Latencies are only checked to exist and be positive: a benchmark is evidence for people to read,
not a pass/fail criterion (the machine may be busy).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tiny_models import tiny_blip2
from ukmp.adapters import find_adapter
from ukmp.benchmark.options import OPERATIONS
from ukmp.benchmark.variants import round_plan, rounded_count
from ukmp.cli import main
from ukmp.groups import PruningPlan
from ukmp.pruning import PruneConfig, prune


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    tiny_blip2("t5").save_pretrained(root / "dense")
    prune(PruneConfig(str(root / "dense"), root / "p30", "magnitude", 0.3), verbose=False)
    return root


@pytest.fixture(scope="module")
def bench(run):
    out = run / "bench.json"
    argv = ["bench", run / "dense", run / "p30", "--batch-sizes", "1,2", "--repeats", "1", "--warmup", "0",
            "--caption-tokens", "3", "--round-to", "8", "--no-memory", "--threads", "1", "--out", out]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    return json.loads(out.read_text())


def by_kind(bench, kind):
    return [m for m in bench["models"] if m["kind"] == kind]


def test_results_have_every_model_operation_and_batch(bench, run):
    assert bench["format"] == "ukmp-bench/1" and bench["reference"] == "dense"
    assert [m["kind"] for m in bench["models"]] == ["dense", "pruned", "masked", "rounded"]
    assert (run / "bench.md").read_text().startswith("## Benchmark")
    for model in bench["models"]:
        assert set(model["flops_per_image"]) == set(OPERATIONS)
        for component in ("vision", "qformer", "lm_encoder", "lm_decoder", "total"):
            assert component in model["flops_per_image"]["forward"]
        for component in ("vision", "qformer", "lm_encoder", "lm_decoder", "total"):
            assert component in model["parameters"]
        assert set(model["batches"]) == {"1", "2"}
        for batch, result in model["batches"].items():
            for op in OPERATIONS:
                stats = result[op]
                assert stats["min_s"] <= stats["median_s"] <= stats["max_s"] and stats["min_s"] > 0
                assert len(stats["runs_s"]) == 1
                assert result["throughput_images_per_s"][op] == pytest.approx(int(batch) / stats["median_s"])
                assert result["speedup"][op] > 0
            assert result["peak_memory_mib"] is None  # --no-memory
        assert model["generated_tokens"] == {"1": 3, "2": 3}  # fixed length, whatever the weights say


def test_flops_and_parameters_move_together(bench):
    (dense,), (pruned,), (masked,) = by_kind(bench, "dense"), by_kind(bench, "pruned"), by_kind(bench, "masked")
    for op in OPERATIONS:
        assert masked["flops_per_image"][op] == dense["flops_per_image"][op]  # zeros cost as much as weights
        assert pruned["flops_per_image"][op]["total"] < dense["flops_per_image"][op]["total"]
        assert pruned["ideal_speedup"][op] > 1.0 and masked["ideal_speedup"][op] == 1.0
    assert masked["parameters"] == dense["parameters"]
    assert pruned["parameters"]["total"] < dense["parameters"]["total"]
    assert pruned["parameter_ratio"] == pytest.approx(1 - pruned["achieved_ratio_of_all"])
    # the masked model computes with exactly the pruned model's non-zero weights
    assert masked["nonzero_parameters"] == pruned["nonzero_parameters"]
    # per component: fewer parameters never comes with more FLOPs
    for component in ("vision", "lm_encoder", "lm_decoder"):
        fewer = pruned["parameters"][component] < dense["parameters"][component]
        assert fewer == (
            pruned["flops_per_image"]["forward"][component] < dense["flops_per_image"]["forward"][component]
        )
    assert pruned["flops_per_image"]["forward"]["qformer"] == dense["flops_per_image"]["forward"]["qformer"]


def test_round_to_keeps_multiples_and_reports_the_cost(bench, run):
    (pruned,), (rounded,) = by_kind(bench, "pruned"), by_kind(bench, "rounded")
    info = rounded["round_to"]
    assert info["multiple"] == 8 and info["unit_choice"] == "saved scores"
    assert info["extra_parameters"] == info["extra_parameters_measured"] > 0
    assert rounded["parameters"]["total"] == pruned["parameters"]["total"] + info["extra_parameters"]
    assert info["achieved_ratio_of_all"] < pruned["achieved_ratio_of_all"]
    assert set(rounded["batches"]["1"]["speedup_vs_unrounded"]) == set(OPERATIONS)


def test_round_plan_rounds_widths_up_and_prefers_high_scores():
    model = tiny_blip2("t5")
    groups = find_adapter(model).groups(model)
    plan = PruningPlan()
    for g in groups:
        plan.keep(g, list(range(0, g.num_units, 5)))  # 10 of 48 channels: not a multiple of 8
    scores = {g.name: torch.arange(g.num_units, dtype=torch.float64) for g in groups}  # last units best
    rounded, info = round_plan(plan, groups, 8, scores)
    assert info["unit_choice"] == "saved scores" and info["groups_changed"] > 0
    for g in groups:
        before, after = plan.kept[g.name], rounded.kept[g.name]
        assert set(before) <= set(after) and after == sorted(after)
        assert (len(after) * g.unit_size) % 8 == 0 or len(after) == g.num_units
        added = sorted(set(after) - set(before))
        removed = sorted(set(range(g.num_units)) - set(before))
        assert added == removed[len(removed) - len(added) :]  # the highest scores among the removed units
    lowest, info = round_plan(plan, groups, 8, None)
    assert info["unit_choice"] == "lowest index"
    for g in groups:
        added = sorted(set(lowest.kept[g.name]) - set(plan.kept[g.name]))
        removed = sorted(set(range(g.num_units)) - set(plan.kept[g.name]))
        assert added == removed[: len(added)]
    assert round_plan(plan, groups, 1, scores)[0].kept == plan.kept


@pytest.mark.parametrize(
    ("kept", "units", "size", "multiple", "expected"),
    [(13, 48, 1, 8, 16), (16, 48, 1, 8, 16), (45, 48, 1, 64, 48), (3, 16, 64, 64, 3), (3, 16, 88, 64, 8)],
)
def test_rounded_count(kept, units, size, multiple, expected):
    assert rounded_count(kept, units, size, multiple) == expected


@pytest.mark.slow
def test_memory_probe_measures_a_forward_in_a_fresh_process(run, tmp_path):
    spec = {
        "recipe": {"load": str(run / "p30")},
        "dtype": "float32",
        "batch_sizes": [2, 1],
        "text_len": 4,
        "threads": 1,
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run(
        [sys.executable, "-m", "ukmp.memory_probe", str(tmp_path / "spec.json")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result["batches"]) == {"1", "2"} and "RSS" in result["method"]
    for entry in result["batches"].values():
        assert entry["peak_mib"] >= entry["activations_mib"] >= 0


def errors(capsys, *argv):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_user_errors_are_one_sentence(capsys, run, tmp_path):
    code, err = errors(capsys, "bench", run / "p30", "--no-memory")
    assert code == 2 and "is a pruned artifact; give the dense model first" in err and "Traceback" not in err
    code, err = errors(capsys, "bench", run / "dense", run / "dense", "--no-memory")
    assert code == 2 and "is not a ukmp pruned artifact" in err
    code, err = errors(capsys, "bench", run / "dense", "--repeats", "0")
    assert code == 2 and "--repeats must be at least 1" in err
    other = tmp_path / "other"
    tiny_blip2("t5", seed=5).save_pretrained(other)
    code, err = errors(capsys, "bench", other, run / "p30", "--no-memory")
    assert code == 2 and "was not pruned from" in err
    with pytest.raises(SystemExit):
        main(["bench", str(run / "dense"), "--batch-sizes", "1,x"])
