"""One table over recovery settings: each `scripts/recovery_answers.py` result folder as a row.

    python3 scripts/recovery_sweep_summary.py --reference "lr 3e-4, 500 steps, r 8=results/recovery-answers" \
        --row "lr 3e-4, 1000 steps=results/recovery-sweep/steps1000" ... --out results/recovery-sweep/README.md

Every folder must hold the same draws of the same artifacts (its `summary.json`); the table gives each
setting's teacher-answered LPD (and, where a folder has it, plain LoRA at the same setting), and
the paired ordering of each row against the reference, draw by draw. Settings are chosen on the
world's train split and val questions only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ukmp.atomic import write_text_atomic
from ukmp.seed_stats import paired_ordering, spread

LABELS = {"teacher": "LPD", "teacher-lora": "plain LoRA (task loss)", "labels": "LPD, labels answer"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="NAME=FOLDER of the setting the others are paired with")
    parser.add_argument("--row", action="append", default=[], help="NAME=FOLDER, one per setting")
    parser.add_argument("--title", default="Recovery settings at 50% (shipped model, three draws)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    entries = [tuple(e.split("=", 1)) for e in [args.reference, *args.row]]
    summaries = {name: json.loads((Path(folder) / "summary.json").read_text()) for name, folder in entries}
    ref_name = entries[0][0]
    reference = summaries[ref_name]
    dense = reference["dense"]
    lines = [
        f"# {args.title}",
        "",
        f"Dense: VQA {dense['vqa_accuracy']:.2f}, CIDEr {dense['CIDEr']:.3f} (val: first 1,000 questions, 200 images). "
        f"Paired by draw against **{ref_name}**, LPD (95% t-interval of the mean difference).",
        "",
        "| setting | recovery | VQA % | of dense | CIDEr | of dense | minutes per run | VQA vs reference "
        "| CIDEr vs reference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    none = reference["figures"]["none"]
    vqa, cider = (spread([r[m] for r in none]) for m in ("vqa_accuracy", "CIDEr"))
    lines.append(
        f"| - | no recovery | {vqa.text(1)} | {vqa.mean / dense['vqa_accuracy']:.1%} | {cider.text(3)} "
        f"| {cider.mean / dense['CIDEr']:.1%} | - | | |"
    )
    for name, _ in entries:
        summary = summaries[name]
        for variant in ("teacher", "teacher-lora", "labels"):
            rows = summary["figures"].get(variant)
            if not rows:
                continue
            vqa, cider = (spread([r[m] for r in rows]) for m in ("vqa_accuracy", "CIDEr"))
            mins = summary["minutes"].get(variant, [])
            versus = []
            for metric in ("vqa_accuracy", "CIDEr"):
                base = [r[metric] for r in reference["figures"]["teacher"]]
                mine = [r[metric] for r in rows]
                if name == ref_name and variant == "teacher":
                    versus.append("-")
                    continue
                n = min(len(base), len(mine))
                verdict, diff = paired_ordering(mine[:n], base[:n])
                versus.append(f"{verdict} ({diff.mean:+.2f} ±{diff.ci95:.2f}, n={n})")
            lines.append(
                f"| {name} | {LABELS[variant]} | {vqa.text(1)} | {vqa.mean / dense['vqa_accuracy']:.1%} | "
                f"{cider.text(3)} | {cider.mean / dense['CIDEr']:.1%} | {spread(mins).text(1) if mins else '-'} | "
                f"{versus[0]} | {versus[1]} |"
            )
    lines += ["", "Folders (each with its commands and wall times):", ""]
    lines += [f"- {name}: `{folder}/README.md`" for name, folder in entries]
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
