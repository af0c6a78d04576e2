"""bfloat16 scoring against float32: the same draws scored in both precisions, side by side.

    ukmp compare shapes-blip2-t5 --methods ukmp,flap --ratios 0.5 --seeds 3 --tasks vqa \
        --score-dtype float32 --out runs/fp32
    ukmp compare shapes-blip2-t5 --methods ukmp,flap --ratios 0.5 --seeds 3 --tasks vqa \
        --score-dtype bfloat16 --out runs/bf16
    python3 scripts/score_precision.py runs/bf16 runs/fp32 --out results/bf16-scoring/README.md

Per method and draw: the Spearman rank correlation of every group's unit scores (the smallest over
the groups, and how many reach 0.99), how many kept units the two plans share at each ratio, and
the VQA accuracy of both pruned models; per method and ratio, the paired ordering of bf16 against
float32 over the draws (`ukmp.seed_stats`: holds / does not hold / within noise).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import spearmanr

from ukmp.atomic import write_text_atomic
from ukmp.compare.layout import artifact_name
from ukmp.errors import UserError
from ukmp.method_scores import MethodScores
from ukmp.seed_stats import paired_ordering, spread


def draws(run: Path) -> list[Path]:
    folders = sorted(run.glob("seed-*"), key=lambda p: int(p.name.split("-", 1)[1]))
    return folders or [run]


def group_spearman(low: Path, full: Path) -> tuple[dict[str, float], str]:
    """Spearman's rho of each group's unit scores, bf16 against float32; and what the groups below 0.99 are.

    A group below 0.99 is described by its size and by how close its two nearest float32 scores are
    (relative gap): ranks of units that close are what a bf16 forward can swap.
    """
    a, b = MethodScores.load(low).scores, MethodScores.load(full).scores
    rho = {g: float(spearmanr(a[g].double().numpy(), b[g].double().numpy()).statistic) for g in sorted(b)}
    below = []
    for g, value in rho.items():
        if value < 0.99:
            ranked = b[g].double().sort().values
            gap = float(((ranked[1:] - ranked[:-1]) / ranked[1:].abs()).min())
            below.append(f"{b[g].numel()} units, nearest {gap:.1%}")
    return rho, "; ".join(below) or "none"


def kept_overlap(low: Path, full: Path) -> float:
    """Kept units both plans keep, as a fraction of the units the float32 plan keeps."""
    a = json.loads((low / "pruning.json").read_text())["groups"]
    b = json.loads((full / "pruning.json").read_text())["groups"]
    shared = sum(len(set(a[g]["kept"]) & set(entry["kept"])) for g, entry in b.items())
    return shared / max(sum(len(entry["kept"]) for entry in b.values()), 1)


def vqa(folder: Path, name: str) -> float:
    return float(json.loads((folder / "evals" / f"{name}.json").read_text())["tasks"]["vqa"]["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bf16", type=Path, help="compare run scored with --score-dtype bfloat16")
    parser.add_argument("fp32", type=Path, help="the same compare scored with --score-dtype float32")
    parser.add_argument("--methods", default="ukmp,flap")
    parser.add_argument("--ratios", default="0.5")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    low, full = draws(args.bf16), draws(args.fp32)
    if [f.name for f in low] != [f.name for f in full]:
        raise UserError(f"{args.bf16} and {args.fp32} hold other draws; run both with the same --seed and --seeds.")
    methods = args.methods.split(",")
    ratios = [float(r) for r in args.ratios.split(",")]
    lines = [
        "| method | draw | groups | smallest Spearman | groups ≥ 0.99 | the groups below 0.99 | ratio "
        "| kept units shared | VQA bf16 | VQA fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    orderings = []
    for method in methods:
        accuracy: dict[float, tuple[list[float], list[float]]] = {r: ([], []) for r in ratios}
        for a, b in zip(low, full):
            rho, below = group_spearman(a / "scores" / f"{method}.safetensors", b / "scores" / f"{method}.safetensors")
            for ratio in ratios:
                name = artifact_name(method, ratio)
                overlap = kept_overlap(a / "artifacts" / name, b / "artifacts" / name)
                va, vb = vqa(a, name), vqa(b, name)
                accuracy[ratio][0].append(va)
                accuracy[ratio][1].append(vb)
                lines.append(
                    f"| {method} | {a.name} | {len(rho)} | {min(rho.values()):.4f} "
                    f"| {sum(v >= 0.99 for v in rho.values())} | {below} | {ratio:g} | {overlap:.1%} "
                    f"| {va:.2f} | {vb:.2f} |"
                )
        for ratio, (va, vb) in accuracy.items():
            verdict, diff = paired_ordering(va, vb)
            orderings.append(
                f"| {method} | {ratio:g} | {spread(va).text(2)} | {spread(vb).text(2)} "
                f"| {diff.mean:+.2f} ± {diff.ci95:.2f} | {verdict} |"
            )
    lines += [
        "",
        "| method | ratio | VQA bf16 | VQA fp32 | bf16 − fp32 (95% interval) | bf16 > fp32 |",
        "|---|---|---|---|---|---|",
        *orderings,
        "",
    ]
    write_text_atomic(args.out, "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
