"""Recovery (at 50% by default) with question prompts answered by the dense teacher (no labels) against labels and none.

    python3 scripts/recovery_answers.py --from runs/fp32-saved32 --runs runs/recovery-answers \
        --results results/recovery-answers

Starts from the UKMP artifacts of a `ukmp compare --seeds N` run (`FROM/seed-<s>/artifacts/ukmp-50`;
`--method upop` takes a baseline's, `upop-50`),
recovers each with every variant at the same budget (`--steps` optimizer steps of `--batch-size`) on
the world's train split, and evaluates on val (never test): the first 1,000 questions and 200
images, as the compare tables. Variants:

- ``teacher``: LPD on captions with half the samples replaced by the split's questions, answered by
  the dense teacher (`ukmp recover --vqa-fraction 0.5 --answers teacher`): no label is read;
- ``labels``: the same prompts answered by the split's human labels (`--answers labels`);
- ``teacher-lora``: plain LoRA on the task loss with the teacher's answers (LPD's ablation at equal
  budget and data);
- ``teacher-kl-task`` / ``teacher-no-progressive``: Table B's other LPD rows on the same data
  (`--schedule kl-task`: the KL and task terms only; `--schedule no-progressive`: every term from the
  first step).

Every step is an ordinary `ukmp recover` / `ukmp evaluate` command recorded with its wall time (the
helpers of `recovery_study.py`); a finished step is skipped, so an interrupted study continues.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from recovery_study import command_lines, evaluate, load_log, recover, save_log

from ukmp.atomic import write_text_atomic
from ukmp.seed_stats import paired_ordering, spread

COMMON = ["--vqa-fraction", "0.5", "--answers"]
VARIANTS = {
    "teacher": ("LPD, questions answered by the teacher (no labels)", [*COMMON, "teacher"]),
    "labels": ("LPD, questions answered by the labels", [*COMMON, "labels"]),
    "teacher-lora": (
        "plain LoRA (task loss), questions answered by the teacher",
        [*COMMON, "teacher", "--plain-lora", "--schedule", "task"],
    ),
    "teacher-kl-task": (
        "weight-recalling LoRA, KL + task loss (no feature terms), questions answered by the teacher",
        [*COMMON, "teacher", "--schedule", "kl-task"],
    ),
    "teacher-no-progressive": (
        "LPD without progressive phases (every loss from the start), questions answered by the teacher",
        [*COMMON, "teacher", "--schedule", "no-progressive"],
    ),
}
METRICS = ("vqa_accuracy", "CIDEr", "BLEU-4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a `ukmp compare --seeds` run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--ratio", type=int, default=50, help="the artifacts' ratio in percent (FROM/.../ukmp-<ratio>)")
    parser.add_argument("--method", default="ukmp", help="whose artifacts are recovered (FROM/.../<method>-<ratio>)")
    parser.add_argument("--variants", default="teacher,labels,teacher-lora")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", default="3e-4")
    parser.add_argument("--split", default="train", help="recovery data split of the shapes world")
    parser.add_argument("--vqa-limit", type=int, default=1000)
    parser.add_argument("--caption-limit", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--extra", default="", help="further `ukmp recover` flags for every variant, e.g. '--rank 32' (one string)"
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
    variants = args.variants.split(",")
    log = load_log(args.results)
    args.runs.mkdir(parents=True, exist_ok=True)
    dense = evaluate(args.dense, args.runs / "evals" / "dense", args, log)
    figures: dict[str, list[dict]] = {"none": []}
    minutes: dict[str, list[float]] = {}
    for seed in seeds:
        artifact = args.source / f"seed-{seed}" / "artifacts" / f"{args.method}-{args.ratio}"
        figures["none"].append(evaluate(artifact, args.runs / "evals" / f"seed-{seed}-none", args, log))
        for name in variants:
            out = args.runs / f"seed-{seed}" / name
            extra = [*VARIANTS[name][1], "--lr", args.lr, *shlex.split(args.extra)]
            record = recover(artifact, out, args.steps, seed, extra, args, log)
            minutes.setdefault(name, []).append((record.get("seconds") or 0.0) / 60)
            result = evaluate(out / "merged", args.runs / "evals" / f"seed-{seed}-{name}", args, log)
            figures.setdefault(name, []).append(result)
        write_report(args, dense, figures, minutes, log, seeds)


def write_report(args, dense: dict, figures: dict, minutes: dict, log: list[dict], seeds: list[int]) -> None:
    n = min(len(v) for v in figures.values())
    labels = {"none": "no recovery", **{k: v[0] for k, v in VARIANTS.items()}}
    whose = "UKMP" if args.method == "ukmp" else args.method
    lines = [
        f"# Recovery at {args.ratio}% from question prompts the teacher answers (`{args.dense.name}`)",
        "",
        f"{whose} artifacts of `{args.source.name}` (seeds {', '.join(map(str, seeds[:n]))}), recovered for "
        f"{args.steps} steps of batch {args.batch_size} at lr {args.lr} on the world's `{args.split}` split, half of "
        f"the samples question prompts{f' (further flags: `{args.extra}`)' if args.extra else ''}. Val: first "
        f"{args.vqa_limit} questions, {args.caption_limit} images. Dense: VQA "
        f"{dense['vqa_accuracy']:.2f}, CIDEr {dense['CIDEr']:.3f}.",
        "",
        "| recovery | VQA % | of dense | CIDEr | of dense | BLEU-4 | minutes per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in figures.items():
        rows = rows[:n]
        vqa, cider, bleu = (spread([r[m] for r in rows]) for m in METRICS)
        mins = minutes.get(name, [])[:n]
        lines.append(
            f"| {labels[name]} | {vqa.text(1)} | {vqa.mean / dense['vqa_accuracy']:.1%} | {cider.text(3)} "
            f"| {cider.mean / dense['CIDEr']:.1%} | {bleu.text(3)} | {spread(mins).text(1) if mins else '-'} |"
        )
    lines += ["", "Orderings, paired by seed (95% t-interval of the mean difference):", ""]
    names = list(figures)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for metric in ("vqa_accuracy", "CIDEr"):
                first, second = ([r[metric] for r in figures[k][:n]] for k in (b, a))
                verdict, diff = paired_ordering(first, second)
                lines.append(
                    f"- {labels[b]} > {labels[a]} on {metric}: **{verdict}** ({diff.mean:+.2f} ±{diff.ci95:.2f})"
                )
    lines += command_lines(log, "scripts/recovery_answers.py")
    save_log(args.results, log)
    write_text_atomic(args.results / "README.md", "\n".join(lines) + "\n")
    summary = {"dense": dense, "figures": figures, "minutes": minutes, "seeds": seeds[:n]}
    write_text_atomic(args.results / "summary.json", json.dumps(summary, indent=1))
    print(f"wrote {args.results / 'README.md'}")


if __name__ == "__main__":
    main()
