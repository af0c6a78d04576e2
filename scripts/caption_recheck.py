"""Captions of recovered models on more val images, paired by draw: is LPD's caption lead over plain LoRA real?

    python3 scripts/caption_recheck.py --from runs/fp32-saved32 --recovered runs/recovery-answers \
        --images 500 --runs runs/caption500 --out results/recovery-answers/captions-500.md

The recovery tables score captions on the first 200 val images, where one draw's CIDEr moves by 0.6
between draws. This scores every draw's no-recovery, teacher-answered LPD and plain-LoRA models (the
`scripts/recovery_answers.py` runs) on the first `--images` val images with `ukmp evaluate`, and gives
each metric per draw with the paired orderings. A finished evaluation is skipped.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from recovery_study import command_lines, run

from ukmp.atomic import write_text_atomic
from ukmp.seed_stats import paired_ordering, spread

VARIANTS = {"none": "no recovery", "teacher": "LPD (teacher answers)", "teacher-lora": "plain LoRA (teacher answers)"}
METRICS = ("CIDEr", "BLEU-4", "METEOR")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="the compare run of the artifacts")
    parser.add_argument("--recovered", type=Path, required=True, help="the recovery_answers.py runs folder")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--ratio", type=int, default=50)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    log: list[dict] = []
    scores: dict[str, list[dict]] = {}
    for seed in seeds:
        for variant in VARIANTS:
            model = (
                args.source / f"seed-{seed}" / "artifacts" / f"ukmp-{args.ratio}"
                if variant == "none"
                else args.recovered / f"seed-{seed}" / variant / "merged"
            )
            file = args.runs / f"seed-{seed}-{variant}.caption.json"
            cmd = ["ukmp", "evaluate", str(model), "--data", "shapes", "--split", "val", "--task", "caption"]
            cmd += ["--limit", str(args.images), "--out", str(file), "--no-progress", "--threads", str(args.threads)]
            if file.is_file():
                log.append({"command": shlex.join(cmd), "seconds": None, "took": "reused from an earlier run"})
            else:
                run(cmd, log)
            scores.setdefault(variant, []).append(json.loads(file.read_text())["tasks"]["caption"]["metrics"])
    lines = [
        f"# Captions of the recovered models on the first {args.images} val images, {len(seeds)} draws",
        "",
        f"Models: `{args.source.name}` UKMP artifacts at {args.ratio}% and their recoveries in "
        f"`{args.recovered.name}` (500 steps of 8 at lr 3e-4, half the samples teacher-answered questions).",
        "",
        "| model | " + " | ".join(f"{m} per draw | {m} mean [min–max]" for m in METRICS) + " |",
        "|---|" + "---|---|" * len(METRICS),
    ]
    for variant, label in VARIANTS.items():
        cells = []
        for metric in METRICS:
            values = [row[metric] for row in scores[variant]]
            cells += [", ".join(f"{v:.3f}" for v in values), spread(values).text(3)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Paired by draw (95% t-interval of the mean difference):", ""]
    for first, second in (("teacher", "teacher-lora"), ("teacher", "none"), ("teacher-lora", "none")):
        for metric in METRICS:
            a = [row[metric] for row in scores[first]]
            b = [row[metric] for row in scores[second]]
            verdict, diff = paired_ordering(a, b)
            wins = sum(x > y for x, y in zip(a, b, strict=True))
            lines.append(
                f"- {VARIANTS[first]} > {VARIANTS[second]} on {metric}: **{verdict}** ({diff.mean:+.3f} "
                f"±{diff.ci95:.3f}; ahead on {wins} of {len(a)} draws)"
            )
    lines += command_lines(log, "scripts/caption_recheck.py")
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
