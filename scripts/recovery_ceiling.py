"""Recovery's ceiling: every weight of the pruned model fine-tuned on the shipped model's stage-3 mix.

    python3 scripts/recovery_ceiling.py --from runs/fp32-saved32 --seeds 0 --budgets 1500,3000 \
        --runs runs/recovery-ceiling --results results/recovery-ceiling

Starts from the UKMP artifacts of a `ukmp compare --seeds N` run (`FROM/seed-<s>/artifacts/ukmp-<ratio>`),
fine-tunes all weights with labels and the scene annotations (`ukmp.zoo.fine_tune`) for each budget
(its own cosine schedule, batch 48 as the recipe; the shipped model's stage 3 is 3,000 steps), and
evaluates on val (first 1,000 questions, 200 images, as the recovery tables). Where
`--recovered RUNS` names `scripts/recovery_answers.py` runs of the same artifacts, the table gives
each of their recoveries as the fraction of the way from no recovery to the best budget.
A finished budget is skipped, so an interrupted study continues.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from recovery_study import command_lines, evaluate, load_log, save_log

from ukmp.atomic import write_text_atomic
from ukmp.seed_stats import spread
from ukmp.zoo.fine_tune import fine_tune_pruned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a `ukmp compare --seeds` run")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--ratio", type=int, default=50)
    parser.add_argument("--budgets", default="1500,3000", help="optimizer steps of batch 48, one run each")
    parser.add_argument("--vqa-limit", type=int, default=1000)
    parser.add_argument("--caption-limit", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--recovered",
        action="append",
        default=[],
        help="NAME=RUNS: a recovery_answers.py runs folder whose teacher-LPD evaluations to place against the ceiling",
    )
    parser.add_argument(
        "--dense",
        type=Path,
        default=Path("src/ukmp/zoo/models/shapes-blip2-t5"),
        help="the dense model evaluated beside",
    )
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets = [int(b) for b in args.budgets.split(",")]
    log = load_log(args.results)
    evals = args.runs / "evals"
    dense = evaluate(args.dense, evals / "dense", args, log)
    rows: dict[str, list[dict]] = {"none": []}
    minutes: dict[str, list[float]] = {}
    for seed in seeds:
        artifact = args.source / f"seed-{seed}" / "artifacts" / f"ukmp-{args.ratio}"
        rows["none"].append(evaluate(artifact, evals / f"seed-{seed}-none", args, log))
        for steps in budgets:
            out = args.runs / f"seed-{seed}" / f"full-{steps}"
            if not (out / "pruning.json").is_file():
                started = time.time()
                fine_tune_pruned(artifact, out, steps=steps, seed=seed, threads=args.threads, overwrite=True)
                log.append(
                    {
                        "command": f"fine_tune_pruned({artifact}, steps={steps}, seed={seed})",
                        "seconds": round(time.time() - started, 1),
                    }
                )
            info = json.loads((out / "pruning.json").read_text())["recovery"]
            minutes.setdefault(f"full-{steps}", []).append(info["seconds"] / 60)
            rows.setdefault(f"full-{steps}", []).append(evaluate(out, evals / f"seed-{seed}-full-{steps}", args, log))
            write_report(args, dense, rows, minutes, seeds, log)
    for entry in args.recovered:
        name, folder = entry.split("=", 1)
        rows[name] = [
            evaluate(
                Path(folder) / f"seed-{s}" / "teacher" / "merged",
                Path(folder) / "evals" / f"seed-{s}-teacher",
                args,
                log,
            )
            for s in seeds
        ]
    write_report(args, dense, rows, minutes, seeds, log)


def write_report(args, dense: dict, rows: dict, minutes: dict, seeds: list[int], log: list[dict]) -> None:
    """The table: each row's mean [min-max], its share of dense, and of the way from none to the ceiling."""
    n = min(len(v) for v in rows.values())
    full = [k for k in rows if k.startswith("full-")]
    ceiling = {
        m: max(spread([r[m] for r in rows[k][:n]]).mean for k in full) if full else None
        for m in ("vqa_accuracy", "CIDEr")
    }
    none = {m: spread([r[m] for r in rows["none"][:n]]).mean for m in ("vqa_accuracy", "CIDEr")}
    lines = [
        f"# Recovery's ceiling at {args.ratio}% (`{args.dense.name}`): all weights fine-tuned on the stage-3 mix",
        "",
        f"UKMP artifacts of `{args.source.name}` (seeds {', '.join(map(str, seeds[:n]))}). Full fine-tuning reads "
        "labels and the scene annotations (captions, VQA, grounding losses), batch 48, the stage's lr 3e-4 "
        "with its own cosine per budget. Val: first "
        f"{args.vqa_limit} questions, {args.caption_limit} images. Dense: VQA {dense['vqa_accuracy']:.2f}, "
        f"CIDEr {dense['CIDEr']:.3f}. 'of the way' = (row - no recovery) / (best full budget - no recovery).",
        "",
        "| recovery | VQA % | of dense | of the way | CIDEr | of dense | of the way | minutes per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, values in rows.items():
        vqa, cider = (spread([r[m] for r in values[:n]]) for m in ("vqa_accuracy", "CIDEr"))
        way = []
        for metric, s in (("vqa_accuracy", vqa), ("CIDEr", cider)):
            gap = None if ceiling[metric] is None else ceiling[metric] - none[metric]
            if gap is None:
                way.append("-")
            elif gap <= 0:  # full fine-tuning did not beat no recovery on this metric: no way to measure
                way.append("n/a (ceiling ≤ none)")
            else:
                way.append(f"{(s.mean - none[metric]) / gap:.0%}")
        mins = minutes.get(name, [])[:n]
        label = "no recovery" if name == "none" else name
        lines.append(
            f"| {label} | {vqa.text(1)} | {vqa.mean / dense['vqa_accuracy']:.1%} | {way[0]} | {cider.text(3)} "
            f"| {cider.mean / dense['CIDEr']:.1%} | {way[1]} | {spread(mins).text(1) if mins else '-'} |"
        )
    lines += command_lines(log, "scripts/recovery_ceiling.py")
    save_log(args.results, log)
    write_text_atomic(args.results / "README.md", "\n".join(lines) + "\n")
    summary = {"dense": dense, "rows": rows, "minutes": minutes, "seeds": seeds[:n]}
    write_text_atomic(args.results / "summary.json", json.dumps(summary, indent=1))
    print(f"wrote {args.results / 'README.md'}")


if __name__ == "__main__":
    main()
