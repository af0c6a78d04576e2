"""How far two calibration draws agree on unit ranks: the noise floor any scoring precision works within.

    python3 scripts/score_draw_agreement.py runs/fp32-saved32 --methods ukmp,flap \
        --out results/bf16-scoring/draws.md

For each method and each pair of draws of a `ukmp compare --seeds N` run (the same settings, other
calibration samples), the Spearman rank correlation of every group's unit scores, summarised apart
for head groups (a few units each) and channel groups (hundreds): smallest, median, and how many
reach 0.99. Set beside `score_precision.py`'s bf16-against-float32 table of the same draws, it says
whether a precision's rank swaps are large or small next to what a new calibration draw changes.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

from scipy.stats import spearmanr
from score_precision import draws

from ukmp.atomic import write_text_atomic
from ukmp.errors import UserError
from ukmp.method_scores import MethodScores

#: groups with at most this many units are head groups (8 heads here; channel groups have hundreds)
HEAD_GROUP_UNITS = 64


def agreement(a: Path, b: Path) -> dict[str, list[float]]:
    """Spearman's rho per group of two score files, split into 'heads' and 'channels'."""
    x, y = MethodScores.load(a).scores, MethodScores.load(b).scores
    out: dict[str, list[float]] = {"heads": [], "channels": []}
    for group in sorted(y):
        rho = float(spearmanr(x[group].double().numpy(), y[group].double().numpy()).statistic)
        out["heads" if y[group].numel() <= HEAD_GROUP_UNITS else "channels"].append(rho)
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "–"
    reached = sum(v >= 0.99 for v in values)
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {reached} of {len(values)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `ukmp compare --seeds N` run (N ≥ 2)")
    parser.add_argument("--methods", default="ukmp,flap")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    folders = draws(args.run)
    if len(folders) < 2:
        raise UserError(f"{args.run} holds one draw; compare two or more (`ukmp compare --seeds N`).")
    lines = [
        "| method | draws | head groups: smallest / median / ≥ 0.99 | channel groups: smallest / median / ≥ 0.99 |",
        "|---|---|---|---|",
    ]
    for method in args.methods.split(","):
        for a, b in itertools.combinations(folders, 2):
            rho = agreement(a / "scores" / f"{method}.safetensors", b / "scores" / f"{method}.safetensors")
            lines.append(f"| {method} | {a.name} vs {b.name} | {summary(rho['heads'])} | {summary(rho['channels'])} |")
    lines.append("")
    write_text_atomic(args.out, "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
