"""Each method's VQA spread over the draws of a compare run, split into plans and question noise.

    python3 scripts/question_noise.py runs/allval --ratios 0.35,0.5 --first 1000 \
        --out results/question-noise/README.md

Reads RUN/seed-<s>/evals/<method>-<ratio>.json, which `ukmp compare` writes with every answer,
scores each answer against the split's human answers, and tables per method and ratio: the draws'
accuracies, their span, and what `ukmp.question_noise` makes of it: the standard deviation the
question sample alone puts into the draws, the plans' own standard deviation, and the span five
such plans would be expected to show on an unlimited question set. `--first N` repeats the table
on the first N questions (what the compare tables report), to show how the span moves with n.
`--against OTHER` adds each method's paired ordering "RUN > OTHER" over the same draws (e.g. plans
searched against the plain plans of another run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ukmp.atomic import write_text_atomic
from ukmp.compare.layout import artifact_name
from ukmp.data.index import load_task, resolve_data_dir
from ukmp.errors import UserError
from ukmp.evaluation.vqa_metric import vqa_accuracy
from ukmp.question_noise import draw_spread
from ukmp.seed_stats import paired_ordering


def draw_folders(run: Path) -> list[Path]:
    """RUN/seed-<s> folders in seed order."""
    folders = sorted(run.glob("seed-*"), key=lambda p: int(p.name.split("-", 1)[1]))
    if len(folders) < 2:
        raise UserError(f"{run} has {len(folders)} seed-* folders; the spread needs a run with --seeds 2 or more.")
    return folders


def per_question(eval_file: Path, records: list) -> list[float]:
    """VQA accuracy in [0, 1] of every recorded answer, in the records' order."""
    if not eval_file.is_file():
        raise UserError(f"{eval_file} is missing; finish the compare run first.")
    vqa = json.loads(eval_file.read_text())["tasks"].get("vqa", {})
    answers = vqa.get("predictions")
    if answers is None:
        raise UserError(f"{eval_file} has no per-question answers; re-run the compare with this version of ukmp.")
    used = records[: len(answers)]
    return [vqa_accuracy(answers[str(r.question_id)], r.answers) for r in used]


def draw_scores(run: Path, methods: list[str], ratios: list[float], records: list) -> dict[str, list[list[float]]]:
    """Per-question scores of every draw, by artifact name: each evaluation file read and scored once."""
    folders = draw_folders(run)
    names = [artifact_name(method, ratio) for method in methods for ratio in ratios]
    return {name: [per_question(f / "evals" / f"{name}.json", records) for f in folders] for name in names}


def check_same_draws(run: Path, other: Path) -> None:
    """Two runs are paired draw by draw, so they must hold the same seed-* folders."""
    draws, other_draws = ([f.name for f in draw_folders(r)] for r in (run, other))
    if draws != other_draws:
        theirs, mine = ", ".join(other_draws), ", ".join(draws)
        raise UserError(f"{other} has draws {theirs} and {run} {mine}; pair runs of one draw set.")


def rows(scores: dict[str, list[list[float]]], methods: list[str], ratios: list[float], first: int | None) -> list[str]:
    out = []
    for method in methods:
        for ratio in ratios:
            draws = scores[artifact_name(method, ratio)]
            n = min(len(d) for d in draws)
            if first is not None:
                n = min(n, first)
            s = draw_spread([d[:n] for d in draws])
            per_draw = ", ".join(f"{a:.1f}" for a in s.accuracies)
            mean = sum(s.accuracies) / len(s.accuracies)
            out.append(
                f"| {method} | {ratio:g} | {n} | {per_draw} | {mean:.1f} | {s.span:.1f} | {s.std:.2f} | "
                f"{s.question_noise_std:.2f} | {s.plan_std:.2f} | {s.expected_plan_span:.1f} |"
            )
    return out


def against(
    mine: dict[str, list[list[float]]],
    theirs: dict[str, list[list[float]]],
    label: str,
    methods: list[str],
    ratios: list[float],
) -> list[str]:
    """Paired orderings (``label``, e.g. "searched > plain") per method and ratio, draw by draw."""
    out = ["| method | ratio | ordering | verdict | mean difference [min–max] ±95% |", "|---|---|---|---|---|"]
    for method in methods:
        for ratio in ratios:
            name = artifact_name(method, ratio)
            a_means, b_means = [], []
            for a, b in zip(mine[name], theirs[name], strict=True):
                n = min(len(a), len(b))
                a_means.append(100.0 * sum(a[:n]) / n)
                b_means.append(100.0 * sum(b[:n]) / n)
            verdict, diff = paired_ordering(a_means, b_means)
            out.append(
                f"| {method} | {ratio:g} | {label} | {verdict} | "
                f"{diff.mean:+.1f} [{diff.min:+.1f}–{diff.max:+.1f}] ±{diff.ci95:.1f} |"
            )
    return out


HEADER = [
    "| method | ratio | questions | VQA % per draw | mean | span | sd over draws | sd from the questions "
    "| sd of the plans | expected span without question noise |",
    "|---|---|---|---|---|---|---|---|---|---|",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a `ukmp compare --seeds N` run folder")
    parser.add_argument("--methods", default="ukmp,upop,flap")
    parser.add_argument("--ratios", default="0.5")
    parser.add_argument("--first", type=int, default=None, help="also table the first N questions")
    parser.add_argument("--against", type=Path, default=None, help="another run of the same draws to pair with")
    parser.add_argument("--eval", default="shapes", help="the evaluation data the run used")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path, default=None, help="write the tables here (Markdown)")
    args = parser.parse_args(argv)
    try:
        records = list(load_task(resolve_data_dir(args.eval, args.split), args.split, "vqa"))
        methods = [m for m in args.methods.split(",") if m]
        ratios = [float(r) for r in args.ratios.split(",") if r]
        if args.against is not None:
            check_same_draws(args.run, args.against)
        scores = draw_scores(args.run, methods, ratios, records)
        lines = HEADER + rows(scores, methods, ratios, None)
        if args.first is not None:
            lines += [""] + HEADER + rows(scores, methods, ratios, args.first)
        if args.against is not None:
            other = draw_scores(args.against, methods, ratios, records)
            label = f"{args.run.name} > {args.against.name}"
            lines += [""] + against(scores, other, label, methods, ratios)
    except UserError as err:
        print(f"question_noise: {err}", file=sys.stderr)
        return 2
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        write_text_atomic(args.out, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
