"""Plan search at 50% over calibration draws: each method's own plan against the searched one, paired.

    python3 scripts/plan_search_study.py --from runs/sel-alttext --methods ukmp:1.0,upop --candidates 8

Starts from the scores of a `ukmp compare --seeds N` run (`FROM/seed-<s>/scores/<method>.safetensors`),
so the plain plans are exactly the ones the compare tables report, and their evaluations are read
from the run (`FROM/seed-<s>/evals/`). For every draw and method the searched plan is an ordinary
command, run as a subprocess and recorded with its wall time:

    ukmp prune shapes-blip2-t5 --method M --ratio 0.5 --scores SCORES --calib shapes \
        --plan-search K --seed S --out OUT

(its selection pairs are `--plan-search-samples` of the world's *train* question-answer pairs,
shuffled with the draw's seed), then `ukmp evaluate` on the first 1,000 val questions and 200 val
images, as the compare run. A step whose output exists is skipped. Orderings are paired over the
draws (`ukmp.seed_stats`). The figures land in `RESULTS/README.md` and `summary.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recovery_study import METRICS, evaluate, run

from ukmp.compare.layout import artifact_name
from ukmp.methods.registry import base_method
from ukmp.seed_stats import paired_ordering, spread

RATIO = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a `ukmp compare --seeds` run")
    parser.add_argument("--model", default="shapes-blip2-t5")
    parser.add_argument("--methods", default="ukmp:1.0,upop", help="compare method names whose scores to search")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--samples", type=int, default=256, help="selection question-answer pairs")
    parser.add_argument("--vqa-limit", type=int, default=1000)
    parser.add_argument("--caption-limit", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=Path("runs/plan-search"))
    parser.add_argument("--results", type=Path, default=Path("results/evidence-50/plan-search"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    args.results.mkdir(parents=True, exist_ok=True)
    log_file = args.results / "commands.json"
    log: list[dict] = json.loads(log_file.read_text()) if log_file.is_file() else []

    cells: dict[str, dict[str, list]] = {}
    for method in methods:
        plain, searched, chosen = [], [], []
        for seed in seeds:
            run_dir = args.source / f"seed-{seed}"
            scores = run_dir / "scores" / f"{method}.safetensors"
            own_eval = run_dir / "evals" / f"{artifact_name(method, RATIO)}.json"
            if not scores.is_file() or not own_eval.is_file():
                sys.exit(f"{run_dir} has no {method} scores or evaluation at {RATIO:g}; run the compare first.")
            tasks = json.loads(own_eval.read_text())["tasks"]
            metrics = tasks["caption"]["metrics"]
            plain.append(
                {"vqa_accuracy": tasks["vqa"]["accuracy"], "CIDEr": metrics["CIDEr"], "BLEU-4": metrics["BLEU-4"]}
            )
            out = args.runs / f"seed-{seed}" / f"{artifact_name(method, RATIO)}-search{args.candidates}"
            if not (out / "pruning.json").is_file():
                cmd = ["ukmp", "prune", args.model, "--method", base_method(method), "--ratio", str(RATIO)]
                cmd += ["--scores", str(scores), "--calib", "shapes", "--plan-search", str(args.candidates)]
                cmd += [
                    "--plan-search-samples",
                    str(args.samples),
                    "--seed",
                    str(seed),
                    "--out",
                    str(out),
                    "--overwrite",
                ]
                run(cmd, log)
                log_file.write_text(json.dumps(log, indent=1) + "\n")
            search = json.loads((out / "pruning.json").read_text())["method"]["options"]["plan_search"]
            chosen.append(search["chosen"])
            searched.append(evaluate(out, out.parent / f"{out.name}.json", args, log))
            log_file.write_text(json.dumps(log, indent=1) + "\n")
        cells[method] = {"plain": plain, "searched": searched, "chosen": chosen}

    summary = {"settings": {k: str(v) for k, v in vars(args).items()}, "seeds": seeds, "cells": cells}
    (args.results / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.results / "README.md").write_text(render(summary, methods, args))
    print(f"wrote {args.results / 'README.md'}")
    return 0


def _cell(values: list[float], digits: int) -> str:
    s = spread(values)
    return f"{s.mean:.{digits}f} [{s.min:.{digits}f}–{s.max:.{digits}f}]"


def render(summary: dict, methods: list[str], args: argparse.Namespace) -> str:
    cells, n = summary["cells"], len(summary["seeds"])
    lines = [
        "# Plan search at 50% over calibration draws",
        "",
        f"Command: `python3 scripts/plan_search_study.py --from {args.source} --methods {args.methods} "
        f"--candidates {args.candidates} --samples {args.samples} --results {args.results}` "
        "(every step in `commands.json` with its wall time).",
        "",
        f"{n} calibration draws; per draw and method the plan of the compare run (plain) against the best of "
        f"{args.candidates} plans by the answer loss on {args.samples} of the world's train question-answer "
        "pairs (searched; beyond the paper). VQA on the first "
        f"{args.vqa_limit} val questions, captions on the first {args.caption_limit} val images. "
        "Mean [min–max]; orderings paired over the draws (95% t-interval).",
        "",
        "| method | plain VQA % | searched VQA % | searched > plain (VQA) | plain CIDEr | searched CIDEr | "
        "searched > plain (CIDEr) | chosen candidate per draw |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in methods:
        c = cells[method]
        row = [method]
        for metric, digits in (("vqa_accuracy", 1), ("CIDEr", 2)):
            p = [x[metric] for x in c["plain"]]
            s = [x[metric] for x in c["searched"]]
            verdict, diff = paired_ordering(s, p)
            row += [_cell(p, digits), _cell(s, digits), f"{verdict} ({diff.mean:+.{digits}f})"]
        row.append(", ".join(str(k) for k in c["chosen"]))
        lines.append("| " + " | ".join(row) + " |")
    if len(methods) > 1:
        lines += ["", "Searched against searched (paired over the draws):", ""]
        first = methods[0]
        for other in methods[1:]:
            for metric in METRICS:
                a = [x[metric] for x in cells[first]["searched"]]
                b = [x[metric] for x in cells[other]["searched"]]
                verdict, diff = paired_ordering(a, b)
                lines.append(
                    f"- {first} > {other}, {metric}: {verdict} ({diff.mean:+.3g} [{diff.min:+.3g}, {diff.max:+.3g}])"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
