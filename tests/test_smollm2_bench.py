"""`bench/smollm2.py` is data preparation around `ukmp compare`: the commands it builds run, on a tiny LM.

The real run needs Debian text packages and a GGUF; here the same two commands the bench builds (every
method at every ratio, then the recovery in the same folder) run on a tiny language model and a
corpus written in the three files the bench's corpora step writes.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tiny_lm import CORPUS
from ukmp.cli import main
from ukmp.method_scores import MethodScores

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("smollm2_bench", BENCH / "smollm2.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def _data(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, lines in (("fortunes-calib", CORPUS * 4), ("fortunes-eval", CORPUS[::-1] * 3), ("wordnet-eval", CORPUS)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    return folder


def test_an_earlier_command_line_maps_to_compare_with_ablations_as_variants(bench) -> None:
    args = bench.parse_args(
        ["--methods", "ukmp,ukmp-paper,ukmp-no-entropy,llm-pruner-global", "--ratios", "0.2", "--recover-methods", ""]
        + ["--calib-samples", "16", "--eval-windows", "10", "--seed", "3", "--norm-scope", "modality"]
    )
    argv = bench.compare_argv(args, Path("m.gguf"), Path("data"), Path("work/compare"))
    assert argv[:3] == ["ukmp", "compare", "m.gguf"]
    assert argv[argv.index("--methods") + 1] == "ukmp,ukmp:paper,ukmp:no-entropy,llm-pruner-global"
    assert argv[argv.index("--num-samples") + 1] == "16" and argv[argv.index("--eval-windows") + 1] == "10"
    assert argv[argv.index("--seed") + 1] == "3" and argv[argv.index("--norm-scope") + 1] == "modality"
    assert argv[argv.index("--eval-text") + 1] == "data/fortunes-eval.jsonl,data/wordnet-eval.jsonl"
    assert args.recover_methods == [] and "--recover" not in argv


@pytest.mark.slow
def test_the_two_comparisons_run_and_the_recovery_reuses_the_scores(bench, lm_dir: Path, tmp_path: Path) -> None:
    data = _data(tmp_path / "data")
    out = tmp_path / "compare"
    args = bench.parse_args(
        ["--methods", "ukmp,ukmp-no-entropy,llm-pruner-global", "--ratios", "0.2,0.4", "--calib-samples", "4"]
        + ["--seq-len", "16", "--eval-seq-len", "16", "--eval-windows", "2", "--recover-ratio", "0.4"]
        + ["--recover-methods", "ukmp,llm-pruner-global", "--recover-samples", "8"]
    )
    first = bench.compare_argv(args, lm_dir, data, out)
    assert main(first[1:]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    names = ("ukmp", "ukmp-no-entropy", "llm-pruner-global")
    assert {r["name"] for r in rows} == {f"{m}-{p}" for m in names for p in (20, 40)}
    no_entropy = MethodScores.load(out / "scores" / "ukmp:no-entropy.safetensors")
    with_entropy = MethodScores.load(out / "scores" / "ukmp.safetensors")
    assert any(not (no_entropy.scores[g] == with_entropy.scores[g]).all() for g in with_entropy.scores)
    stamp = (out / "scores" / "ukmp.safetensors").stat().st_mtime_ns

    second = bench.recovery_argv(args, lm_dir, data, out)
    assert main(second[1:]) == 0
    assert (out / "scores" / "ukmp.safetensors").stat().st_mtime_ns == stamp  # scored once, by the first
    recovered = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert set(recovered) == {"ukmp", "llm-pruner-global"}
    assert recovered["ukmp"]["recovery"] == "lpd" and recovered["llm-pruner-global"]["recovery"] == "lora"
    for method in recovered:
        manifest = json.loads((out / "recovered" / f"{method}-40" / "merged" / "pruning.json").read_text())
        assert (manifest["recovery"]["lr"], manifest["recovery"]["warmup_steps"]) == (1e-4, 2)
