"""Where each method spends a ratio's budget, and which question types pay: a diagnosis of one compare run.

    python3 scripts/diagnose_ratio.py runs/sel-train --ratio 0.5 --out results/diagnosis/train

Reads a `ukmp compare --seeds N` folder (or a single-seed one) and writes, averaged over its seeds:
the fraction of units each method keeps per component and layer, VQA accuracy per question type,
and for UKMP methods the fraction of target tokens the gradient pass backpropagated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

from ukmp.compare.layout import artifact_name
from ukmp.method_scores import MethodScores


def seed_folders(run: Path) -> list[Path]:
    folders = sorted(run.glob("seed-*"), key=lambda p: int(p.name.split("-")[1]))
    return folders or [run]


def kept_fractions(manifest: dict) -> dict[str, float]:
    """group name -> kept / original units."""
    return {name: len(g["kept"]) / g["num_units"] for name, g in manifest["groups"].items()}


def token_fraction(scores_file: Path) -> tuple[int, int] | None:
    """(backpropagated, target) tokens of a UKMP gradient pass, from the scores file's stats."""
    grad = MethodScores.load(scores_file).stats.get("gradient_pass")
    return (grad["backpropagated_tokens"], grad["target_tokens"]) if grad else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `ukmp compare` output folder")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    folders = seed_folders(args.run)
    methods = json.loads((folders[0] / "results.json").read_text())["settings"]["methods"]
    kept: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    types: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tokens: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for folder in folders:
        for method in methods:
            name = artifact_name(method, args.ratio)
            manifest_file = folder / "artifacts" / name / "pruning.json"
            eval_file = folder / "evals" / f"{name}.json"
            if not manifest_file.is_file() or not eval_file.is_file():
                continue  # a seed still running
            for group, fraction in kept_fractions(json.loads(manifest_file.read_text())).items():
                kept[method][group].append(fraction)
            evaluation = json.loads(eval_file.read_text())
            for qtype, acc in evaluation["tasks"]["vqa"]["per_question_type"].items():
                types[method][qtype].append(acc)
            scores = folder / "scores" / f"{method}.safetensors"
            if scores.is_file() and (pair := token_fraction(scores)) is not None:
                tokens[method].append(pair)
    dense = json.loads((folders[0] / "evals" / "dense.json").read_text())["tasks"]["vqa"]["per_question_type"]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    lines = [
        f"# Where the budget goes at {args.ratio:g}: `{args.run.name}`",
        "",
        f"Command: `python3 scripts/diagnose_ratio.py {' '.join(sys.argv[1:])}`; means over {len(folders)} seed(s).",
        "",
        "## Kept fraction of units per group (mean over seeds)",
        "",
    ]
    groups = sorted({g for m in kept for g in kept[m]})
    lines += ["| group | " + " | ".join(kept) + " |", "|---|" + "---|" * len(kept)]
    for group in groups:
        lines.append(f"| {group} | " + " | ".join(f"{mean(kept[m][group]):.2f}" for m in kept) + " |")
    components = sorted({g.split(".layers.")[0] + "." + g.rsplit(".", 1)[-1] for g in groups})
    lines += ["", "## Kept fraction per component (mean over its layers and the seeds)", ""]
    lines += ["| component | " + " | ".join(kept) + " |", "|---|" + "---|" * len(kept)]
    for comp in components:
        prefix, kind = comp.rsplit(".", 1)
        members = [g for g in groups if g.startswith(prefix + ".layers.") and g.endswith("." + kind)]
        cells = [mean([mean(kept[m][g]) for g in members]) for m in kept]
        lines.append(f"| {comp} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    qtypes = sorted(dense)
    lines += ["", "## VQA accuracy per question type (mean over seeds)", ""]
    lines += ["| method | " + " | ".join(qtypes) + " |", "|---|" + "---|" * len(qtypes)]
    lines.append("| dense | " + " | ".join(f"{dense[t]:.1f}" for t in qtypes) + " |")
    for method in types:
        lines.append(f"| {method} | " + " | ".join(f"{mean(types[method][t]):.1f}" for t in qtypes) + " |")
    if tokens:
        lines += ["", "## Tokens the UKMP gradient pass backpropagated", ""]
        lines += ["| method | backpropagated / target tokens (per seed) | fraction |", "|---|---|---|"]
        for method, pairs in tokens.items():
            frac = sum(a for a, _ in pairs) / sum(b for _, b in pairs)
            lines.append(f"| {method} | {', '.join(f'{a}/{b}' for a, b in pairs)} | {frac:.1%} |")
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / ".README.md.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, args.out / "README.md")
    print(f"wrote {args.out / 'README.md'}")


if __name__ == "__main__":
    main()
