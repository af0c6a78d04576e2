"""A compare run's saved scores re-planned with other `ukmp prune` flags, over calibration draws.

    python3 scripts/replan_study.py --from runs/compare-5 --method ukmp --name kind \
        --flags=--norm-scope=kind --ratios 0.2,0.35,0.5 --against upop,flap --results results/norm-scope/shipped

Starts from a `ukmp compare --seeds N` run (`FROM/seed-<s>/scores/<method>.safetensors` and its
evaluations), so a draw's plain and re-planned models share one calibration pass and differ only in
how they were planned. Per draw and ratio the variant is an ordinary command, run as a subprocess
and recorded with its wall time (skipped when its output exists):

    ukmp prune MODEL --method M --ratio R --scores SCORES --seed S FLAGS --out OUT

then `ukmp evaluate` on the same val questions and images as the compare run. Orderings are paired
over the draws (`ukmp.seed_stats`): the variant against the method's own plan and against every
`--against` method of the run. The figures land in `RESULTS/README.md` and `summary.json`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from recovery_study import evaluate, run

from ukmp.atomic import write_json_atomic, write_text_atomic
from ukmp.compare.layout import artifact_name
from ukmp.methods.registry import base_method
from ukmp.seed_stats import paired_ordering, spread

SHOWN = (("vqa_accuracy", "VQA %", 1), ("CIDEr", "CIDEr", 2))


def compare_eval(run_dir: Path, method: str, ratio: float) -> dict[str, float]:
    """The compare run's own evaluation of `method` at `ratio` in one draw."""
    file = run_dir / "evals" / f"{artifact_name(method, ratio)}.json"
    if not file.is_file():
        sys.exit(f"{file} is missing: run the compare with {method} at {ratio:g} first.")
    tasks = json.loads(file.read_text())["tasks"]
    return {"vqa_accuracy": tasks["vqa"]["accuracy"], "CIDEr": tasks["caption"]["metrics"]["CIDEr"]}


def kept_fractions(artifact: Path) -> dict[str, float]:
    """Fraction of units a plan keeps per component and kind (group names read `<component>.layers.<i>.<kind>`)."""
    kept: dict[str, list[int]] = {}
    for name, group in json.loads((artifact / "pruning.json").read_text())["groups"].items():
        component, _, rest = name.partition(".layers.")
        counts = kept.setdefault(f"{component} {rest.rsplit('.', 1)[-1]}", [0, 0])
        counts[0] += len(group["kept"])
        counts[1] += group["num_units"]
    return {key: k / n for key, (k, n) in sorted(kept.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a `ukmp compare --seeds` run")
    parser.add_argument("--model", default="shapes-blip2-t5")
    parser.add_argument("--method", default="ukmp", help="the compare method whose scores are re-planned")
    parser.add_argument("--name", required=True, help="a short name for the variant (its rows and folders)")
    parser.add_argument("--flags", required=True, help="the `ukmp prune` flags of the variant, one string")
    parser.add_argument("--ratios", default="0.2,0.35,0.5")
    parser.add_argument("--against", default="", help="other methods of the run to pair the variant with")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--vqa-limit", type=int, default=1000)
    parser.add_argument("--caption-limit", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=Path("runs/replan"))
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    ratios = [float(r) for r in args.ratios.split(",")]
    against = [m for m in args.against.split(",") if m]
    variant = f"{args.method}+{args.name}"
    args.results.mkdir(parents=True, exist_ok=True)
    previous = args.results / "summary.json"  # a rerun skips finished commands: keep their record
    log: list[dict] = json.loads(previous.read_text())["log"] if previous.is_file() else []
    cells: dict[str, dict[str, list[dict]]] = {}
    shapes: dict[str, dict[str, list[dict]]] = {}
    for ratio in ratios:
        rows = cells.setdefault(f"{ratio:g}", {m: [] for m in (args.method, variant, *against)})
        kept = shapes.setdefault(f"{ratio:g}", {m: [] for m in rows})
        for seed in seeds:
            run_dir = args.source / f"seed-{seed}"
            scores = run_dir / "scores" / f"{args.method}.safetensors"
            if not scores.is_file():
                sys.exit(f"{scores} is missing: run `ukmp compare` with {args.method} first.")
            for method in (args.method, *against):
                rows[method].append(compare_eval(run_dir, method, ratio))
                kept[method].append(kept_fractions(run_dir / "artifacts" / artifact_name(method, ratio)))
            out = args.runs / f"seed-{seed}" / f"{artifact_name(args.method, ratio)}-{args.name}"
            if not (out / "pruning.json").is_file():
                cmd = ["ukmp", "prune", args.model, "--method", base_method(args.method), "--ratio", f"{ratio:g}"]
                cmd += ["--scores", str(scores), "--seed", str(seed), *shlex.split(args.flags)]
                run([*cmd, "--out", str(out), "--overwrite", "--no-progress"], log)
            rows[variant].append(evaluate(out, out.parent / f"{out.name}.json", args, log))
            kept[variant].append(kept_fractions(out))
    settings = {k: str(v) for k, v in vars(args).items()}
    summary = {"settings": settings, "seeds": seeds, "cells": cells, "kept": shapes, "log": log}
    write_json_atomic(args.results / "summary.json", summary)
    text = render(summary, args, variant, against)
    write_text_atomic(args.results / "README.md", text)
    print(text)
    return 0


def render(summary: dict, args: argparse.Namespace, variant: str, against: list[str]) -> str:
    seeds = summary["seeds"]
    command = (
        f"python3 scripts/replan_study.py --from {args.source} --model {args.model} --method {args.method} "
        f"--name {args.name} --flags={shlex.quote(args.flags)} --ratios {args.ratios} --seeds {args.seeds}"
        + (f" --against {args.against}" if against else "")
        + f" --results {args.results}"
    )
    lines = [
        f"# {args.method} re-planned with `{args.flags}` ({args.name}), over {len(seeds)} calibration draws",
        "",
        f"`{command}`",
        "",
        f"Scores, plain plans and the other methods' rows come from `ukmp compare` in `{args.source}` (draws "
        f"{', '.join(map(str, seeds))}); `{variant}` re-plans the same scores. VQA on the first {args.vqa_limit} "
        f"val questions, captions on the first {args.caption_limit} val images. Mean [min–max] over the draws.",
        "",
        "| ratio | "
        + " | ".join(f"{m}, {label}" for m in (args.method, variant, *against) for _, label, _ in SHOWN)
        + " |",
        "|---|" + "---|" * (len(SHOWN) * (2 + len(against))),
    ]
    for ratio, rows in summary["cells"].items():
        cells = [spread([r[key] for r in rows[m]]).text(digits) for m in rows for key, _, digits in SHOWN]
        lines.append(f"| {float(ratio):.0%} | " + " | ".join(cells) + " |")
    lines += ["", "Paired by draw (difference = first − second; 95% t-interval):", ""]
    lines += ["| ratio | ordering | " + " | ".join(label for _, label, _ in SHOWN) + " |", "|---|---|---|---|"]
    for ratio, rows in summary["cells"].items():
        for other in (args.method, *against):
            cells = []
            for key, _, digits in SHOWN:
                verdict, diff = paired_ordering([r[key] for r in rows[variant]], [r[key] for r in rows[other]])
                cells.append(f"{verdict}: {diff.mean:+.{digits}f} [{diff.min:+.{digits}f}–{diff.max:+.{digits}f}]")
            lines.append(f"| {float(ratio):.0%} | {variant} > {other} | " + " | ".join(cells) + " |")
    lines += ["", "Units kept per component and kind (mean over the draws):", ""]
    for ratio, per_method in summary["kept"].items():
        parts = list(next(iter(per_method.values()))[0])
        lines += [f"| {float(ratio):.0%} | " + " | ".join(parts) + " |", "|---|" + "---|" * len(parts)]
        for method, draws in per_method.items():
            means = [sum(d[part] for d in draws) / len(draws) for part in parts]
            lines.append(f"| {method} | " + " | ".join(f"{m:.0%}" for m in means) + " |")
        lines.append("")
    if summary["log"]:
        minutes = sum(c["seconds"] for c in summary["log"]) / 60
        lines += ["", f"The re-planning and evaluation commands of this run took {minutes:.1f} min (`summary.json`)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
