"""`ukmp compare` on a standalone language model calibrated on text: perplexity per held-out text.

Every figure of the table is what `ukmp evaluate --task perplexity` gives on the same artifact; the
best method and the paired orderings take perplexity as lower-is-better; a rerun recomputes nothing;
recovery trains on windows of the calibration text; a flag of the other kind of comparison is one
sentence, before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiny_lm import CORPUS
from ukmp.cli import main
from ukmp.compare.seeds import orderings

METHODS = ("ukmp", "llm-pruner-global")
RATIOS = (0.2, 0.4)
EVAL_SEQ_LEN = 16


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("held-out")
    plain = folder / "reversed.txt"
    plain.write_text("\n\n".join(CORPUS[::-1] * 3) + "\n")
    jsonl = folder / "tail.jsonl"
    jsonl.write_text("".join(json.dumps({"text": line}) + "\n" for line in CORPUS[1:] * 3))
    return plain, jsonl


def _compare(lm_dir: Path, corpus: Path, held_out: tuple[Path, Path], out: Path, *extra: str) -> int:
    argv = ["compare", str(lm_dir), "--calib", str(corpus), "--seq-len", "16", "--num-samples", "4"]
    argv += ["--eval-text", ",".join(map(str, held_out)), "--eval-seq-len", str(EVAL_SEQ_LEN)]
    argv += ["--methods", ",".join(METHODS), "--ratios", ",".join(map(str, RATIOS)), "--out", str(out)]
    return main([*argv, "--no-progress", *extra])


def _evaluate(model: Path, text: Path, out: Path) -> float:
    argv = ["evaluate", str(model), "--task", "perplexity", "--data", str(text), "--seq-len", str(EVAL_SEQ_LEN)]
    assert main([*argv, "--batch-size", "4", "--no-progress", "--out", str(out)]) == 0
    return json.loads(out.read_text())["tasks"]["perplexity"]["perplexity"]


def _stamps(out: Path) -> dict[Path, int]:
    kept = [*out.glob("scores/*"), *out.glob("evals/*"), *out.glob("artifacts/*/model.safetensors")]
    return {p: p.stat().st_mtime_ns for p in kept}


@pytest.mark.slow
def test_the_table_is_the_perplexity_evaluate_gives_and_a_rerun_reuses_everything(
    lm_dir: Path, corpus: Path, held_out: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cmp"
    assert _compare(lm_dir, corpus, held_out, out) == 0
    results = json.loads((out / "results.json").read_text())
    columns = [f"perplexity ({f.stem})" for f in held_out]
    assert list(results["dense"]["metrics"]) == columns
    assert [(r["method"], r["target_ratio"]) for r in results["rows"]] == [(m, r) for m in METHODS for r in RATIOS]
    for text, column in zip(held_out, columns):
        dense = _evaluate(lm_dir, text, tmp_path / f"dense-{text.stem}.json")
        assert results["dense"]["metrics"][column] == dense
        for row in results["rows"]:
            measured = _evaluate(out / row["artifact"], text, tmp_path / f"{row['name']}-{text.stem}.json")
            assert row["metrics"][column] == measured
    table = (out / "results.md").read_text()
    assert "| perplexity (reversed) | perplexity (tail) |" in table and "lower is better" in table
    for ratio in RATIOS:  # the best method is the one of lowest perplexity
        for column in columns:
            at = {r["method"]: r["metrics"][column] for r in results["rows"] if r["target_ratio"] == ratio}
            best = min(at, key=at.get)
            assert f"ratio {ratio:g}, {column}: best {best} " in table
    assert not (out / "examples.html").exists()
    stamps = _stamps(out)
    assert len(stamps) == len(METHODS) + 2 * (1 + len(METHODS) * len(RATIOS)) + len(METHODS) * len(RATIOS)
    assert _compare(lm_dir, corpus, held_out, out) == 0
    assert _stamps(out) == stamps


@pytest.mark.slow
def test_seeds_pair_perplexities_by_draw(lm_dir: Path, corpus: Path, held_out: tuple[Path, Path], tmp_path: Path):
    out = tmp_path / "seeds"
    assert _compare(lm_dir, corpus, held_out, out, "--seeds", "2") == 0
    data = json.loads((out / "results.json").read_text())
    assert data["seeds"] == [0, 1]
    assert data["orderings"]["metrics"]
    for o in data["orderings"]["metrics"]:
        per_draw = []
        for draw in data["per_seed"]:
            at = {r["method"]: r["metrics"][o["metric"]] for r in draw["rows"] if r["target_ratio"] == o["ratio"]}
            per_draw.append(at[o["worse"]] - at[o["better"]])  # lower is better: the other's minus UKMP's
        assert o["difference"]["mean"] == pytest.approx(sum(per_draw) / 2)
    table = (out / "results.md").read_text()
    assert "| ukmp < llm-pruner-global | perplexity (reversed) |" in table
    dense = {p.name for p in (out / "seed-1" / "evals").glob("dense--*.json")}
    assert dense == {"dense--reversed.json", "dense--tail.json"}  # one dense evaluation, shared by the draws


@pytest.mark.slow
def test_recovery_on_the_calibration_text_is_measured_like_any_artifact(
    lm_dir: Path, corpus: Path, held_out: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "rec"
    extra = ["--ratios", "0.4", "--recover", "lpd", "--recover-samples", "8", "--recover-batch-size", "4"]
    extra += ["--recover-lr", "3e-4", "--recover-warmup-steps", "1"]
    argv = ["compare", str(lm_dir), "--calib", str(corpus), "--seq-len", "16", "--num-samples", "4"]
    argv += ["--eval-text", str(held_out[0]), "--eval-seq-len", str(EVAL_SEQ_LEN), "--methods", ",".join(METHODS)]
    assert main([*argv, "--out", str(out), "--no-progress", *extra]) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows["ukmp"]["recovery"] == "lpd" and rows["llm-pruner-global"]["recovery"] == "lora"
    for method, row in rows.items():
        merged = out / "recovered" / f"{method}-40" / "merged"
        recovery = json.loads((merged / "pruning.json").read_text())["recovery"]
        assert recovery["data"].endswith("corpus.txt") and recovery["samples"] == 8
        assert recovery["plain_lora"] is (method != "ukmp")
        assert (recovery["lr"], recovery["warmup_steps"]) == (3e-4, 1)
        measured = _evaluate(merged, held_out[0], tmp_path / f"{method}.json")
        assert row["recovered_metrics"]["perplexity (reversed)"] == measured
        assert measured != row["metrics"]["perplexity (reversed)"]  # the recovery changed the weights
    assert "## After recovery" in (out / "results.md").read_text()
    command = json.loads((out / "results.json").read_text())["command"]
    assert "--recover lpd" in command and "--recover-lr 0.0003 --recover-warmup-steps 1" in command
    # another learning rate into the same folder: one sentence, nothing of the earlier run replaced
    before = (out / "results.json").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--out", str(out), "--no-progress", *extra[:-4], "--recover-lr", "1e-4"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]  # beside loading bars
    assert len(errors) == 1 and "--recover-lr 0.0003, but this run asks for --recover-lr 0.0001" in errors[0]
    assert (out / "results.json").read_bytes() == before


def test_a_perplexity_ordering_holds_when_ukmp_is_lower() -> None:
    cells = [
        {"method": m, "target_ratio": 0.2, "seeds": [0, 1, 2], "metrics": {"perplexity (a)": values},
         "metrics_seeds": {"perplexity (a)": [0, 1, 2]}}
        for m, values in (("ukmp", [10.0, 11.0, 12.0]), ("random", [20.0, 21.5, 22.0]))
    ]  # fmt: skip
    (ordering,) = orderings(cells)
    assert ordering["verdict"] == "holds" and ordering["difference"]["mean"] == pytest.approx(10.1666, abs=1e-3)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tasks", "vqa"], "--tasks is for image-text calibration"),
        (["--limit", "10"], "--limit is for image-text calibration"),
        (["--eval", "shapes"], "--eval is for image-text calibration"),
        (["--recover", "lora", "--gguf-file", "m.gguf"], "give the GGUF file itself as MODEL"),
        (["--eval-windows", "0"], "--eval-windows must be at least 1"),
        (["--methods", "ukmp,nope"], "unknown method 'nope'"),
    ],
)
def test_image_text_flags_with_text_calibration_are_one_sentence(
    extra, message, lm_dir: Path, corpus: Path, held_out: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "bad"
    assert _compare(lm_dir, corpus, held_out, out, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ukmp compare: error:") and message in err[0]
    assert not out.exists()


def test_text_flags_without_text_calibration_and_a_missing_held_out_set_are_one_sentence(
    lm_dir: Path, corpus: Path, held_out: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "bad"
    argv = ["compare", str(lm_dir), "--calib", "shapes", "--out", str(out)]
    assert main([*argv, "--eval-text", str(held_out[0])]) == 2
    assert "is a language model without images; calibrate it on text" in capsys.readouterr().err
    assert main(["compare", str(lm_dir), "--calib", str(corpus), "--out", str(out)]) == 2
    assert "pass --eval-text" in capsys.readouterr().err
    missing = tmp_path / "missing.txt"
    assert (
        main(["compare", str(lm_dir), "--calib", str(missing), "--eval-text", str(held_out[0]), "--out", str(out)]) == 2
    )
    assert f"--calib {missing} does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_norm_scope_sets_the_iterative_plan_and_its_absence_keeps_the_preset() -> None:
    from ukmp.compare.config import CompareConfig

    assert CompareConfig(model="m", out="o").iterative("ukmp") is None  # the preset's: image-text keys unchanged
    chosen = CompareConfig(model="m", out="o", norm_scope="modality").iterative("ukmp")
    assert chosen is not None and chosen.scope == "modality"
