"""Allocation or ranking: which half of a method's plan makes the difference between two methods.

    python3 scripts/allocation_swap.py --from runs/compare-5seeds --ratio 0.35 --methods ukmp,flap

A plan has two halves: how many units each group keeps (the allocation) and which units those are
(the ranking inside the group). For every calibration draw of a `ukmp compare --seeds N` run this
builds the two crossed plans from the methods' saved scores and artifacts:

- A's ranking with B's allocation: in every group, the units A scores highest, as many as B kept;
- B's ranking with A's allocation, and each method's own plan without any `finalize` step (FLAP's
  bias compensation), so that every row is a pure choice of units.

Crossed plans keep exactly the same number of units per group as the plan they take the allocation
from, so they have exactly its parameter count. Each is sliced from the dense model and evaluated
like the compare run (val split, first N questions, first M images captioned); the own plans with
their finalize step are the compare run's rows. Output: RESULTS/README.md and summary.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from ukmp.adapters import find_adapter
from ukmp.compare.layout import artifact_name
from ukmp.data.index import resolve_data_dir
from ukmp.evaluation.harness import evaluate
from ukmp.groups import PruningPlan
from ukmp.loading import load_model, resolve_model_ref
from ukmp.method_scores import MethodScores
from ukmp.processors import load_processor
from ukmp.seed_stats import paired_ordering, spread
from ukmp.surgery import apply_plan_physically


def crossed_plan(ranking: dict[str, torch.Tensor], allocation: PruningPlan) -> PruningPlan:
    """In every group of ``allocation``, its number of kept units, chosen as the top of ``ranking``."""
    plan = PruningPlan()
    for name, kept in allocation.kept.items():
        order = torch.argsort(ranking[name].double().reshape(-1), descending=True, stable=True)
        plan.kept[name] = sorted(int(u) for u in order[: len(kept)])
        plan.num_units[name] = allocation.num_units[name]
    return plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a `ukmp compare --seeds` run")
    parser.add_argument("--ratio", type=float, default=0.35)
    parser.add_argument("--methods", default="ukmp,flap", help="the two methods A,B")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--vqa-limit", type=int, default=1000)
    parser.add_argument("--caption-limit", type=int, default=200)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    first, second = args.methods.split(",")
    started = time.time()
    torch.set_grad_enabled(False)
    model_name = json.loads((args.source / "results.json").read_text())["model"]
    ref = resolve_model_ref(model_name)
    dense = load_model(ref).float().eval()
    adapter = find_adapter(dense)
    processor = load_processor(ref)
    val = resolve_data_dir("shapes", "val")

    def measure(plan: PruningPlan, name: str) -> dict[str, float]:
        pruned = apply_plan_physically(copy.deepcopy(dense), plan, adapter)
        vqa = evaluate(pruned, processor, val, "val", ("vqa",), args.vqa_limit, 64, model_name=name, progress=False)
        cap = evaluate(
            pruned, processor, val, "val", ("caption",), args.caption_limit, 64, model_name=name, progress=False
        )
        return {
            "vqa": vqa["tasks"]["vqa"]["accuracy"],
            "cider": cap["tasks"]["caption"]["metrics"]["CIDEr"],
            "per_type": vqa["tasks"]["vqa"]["per_question_type"],
            "params": sum(p.numel() for p in pruned.parameters()),
        }

    rows: dict[str, dict[int, dict]] = {}
    for seed in range(args.seeds):
        folder = args.source / f"seed-{seed}"
        plans, scores = {}, {}
        for method in (first, second):
            manifest = json.loads(
                (folder / "artifacts" / artifact_name(method, args.ratio) / "pruning.json").read_text()
            )
            plans[method] = PruningPlan.from_dict(manifest["groups"])
            scores[method] = MethodScores.load(folder / "scores" / f"{method}.safetensors").scores
        candidates = {
            f"{first} own plan": plans[first],
            f"{second} own plan, no finalize": plans[second],
            f"{first} ranking, {second} allocation": crossed_plan(scores[first], plans[second]),
            f"{second} ranking, {first} allocation": crossed_plan(scores[second], plans[first]),
        }
        for name, plan in candidates.items():
            rows.setdefault(name, {})[seed] = measure(plan, name)
            print(f"seed {seed} {name:40s} VQA {rows[name][seed]['vqa']:6.2f}  CIDEr {rows[name][seed]['cider']:.3f}")
    summary = {
        "command": "python3 scripts/allocation_swap.py "
        + f"--from {args.source} --ratio {args.ratio:g} --methods {args.methods} --seeds {args.seeds} "
        + f"--vqa-limit {args.vqa_limit} --caption-limit {args.caption_limit} --results {args.results}",
        "model": model_name,
        "rows": {name: {str(s): v for s, v in per.items()} for name, per in rows.items()},
        "minutes": round((time.time() - started) / 60, 1),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.results / "README.md").write_text(render(summary, first, second, args.ratio))
    print(f"wrote {args.results / 'README.md'}")
    return 0


def render(summary: dict, first: str, second: str, ratio: float) -> str:
    rows = summary["rows"]
    seeds = sorted(next(iter(rows.values())), key=int)
    lines = [
        f"# Allocation or ranking at {ratio:g}: {first} against {second} on `{summary['model']}`",
        "",
        f"Command (`{summary['minutes']}` min): `{summary['command']}`",
        "",
        f"Draws {', '.join(seeds)}; cells: mean [min–max] over the draws. Every plan here is a pure choice of units"
        " (no bias compensation).",
        "",
        "| plan | parameters | VQA % | CIDEr |",
        "|---|---|---|---|",
    ]
    for name, per in rows.items():
        params = spread([per[s]["params"] for s in seeds]).mean
        vqa = spread([per[s]["vqa"] for s in seeds]).text(1)
        cider = spread([per[s]["cider"] for s in seeds]).text(3)
        lines.append(f"| {name} | {params:,.0f} | {vqa} | {cider} |")
    types = list(next(iter(rows.values()))[seeds[0]]["per_type"])
    lines += ["", "VQA accuracy per question type (mean over draws):", ""]
    lines += ["| plan | " + " | ".join(types) + " |", "|---|" + "---|" * len(types)]
    for name, per in rows.items():
        cells = [sum(per[s]["per_type"][t] for s in seeds) / len(seeds) for t in types]
        lines.append(f"| {name} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    lines += ["", "Paired by draw (95% t-interval of the mean difference):", ""]
    pairs = [
        (f"{first} ranking, {second} allocation", f"{first} own plan", "same ranking, other allocation"),
        (f"{second} own plan, no finalize", f"{second} ranking, {first} allocation", "same ranking, other allocation"),
        (f"{second} own plan, no finalize", f"{first} ranking, {second} allocation", "same allocation, other ranking"),
        (f"{second} ranking, {first} allocation", f"{first} own plan", "same allocation, other ranking"),
    ]
    for better, worse, what in pairs:
        for key, digits in (("vqa", 1), ("cider", 3)):
            verdict, diff = paired_ordering([rows[better][s][key] for s in seeds], [rows[worse][s][key] for s in seeds])
            lines.append(
                f"- {better} > {worse} ({what}), {key.upper() if key == 'vqa' else 'CIDEr'}: **{verdict}** "
                f"({diff.mean:+.{digits}f} [{diff.min:+.{digits}f}–{diff.max:+.{digits}f}])"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
